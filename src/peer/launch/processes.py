"""Start and stop the node processes.

Children are forked from the launcher after it has imported everything, so each
comes up in milliseconds and shares the interpreter's pages copy-on-write
(fresh interpreters took ~24 s and ~33 MB each for 100 nodes here; forks
~1.2 s and ~8 MB).  Each child runs the ``peer run`` command itself, argv and
all, so a launched node is exactly a node an operator would start by hand.
Forking is only safe while the launcher has no other threads: we fork before
trio starts.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

# Imported here, before any fork, so children share these pages and start at once.
import peer.cli.app  # noqa: F401
import peer.node.runner  # noqa: F401


def _preload() -> None:
    """Import what a child would otherwise import lazily on its first steps (typer loads
    pydantic to convert option values, sockets load the idna codec): ~0.1 s of CPU per
    child, which across hundreds of children starting at once is what slowed a launch."""
    import encodings.idna  # noqa: F401
    import secrets  # noqa: F401

    try:
        import typer._adapters  # noqa: F401  (private: its absence only costs time)
        import typer._click.decorators  # noqa: F401
    except ImportError:
        pass


_preload()
from peer.launch.plan import NodePlan


def _child_main(argv: list[str], out_path: str) -> None:
    # Own output file: the launcher's terminal belongs to its dashboard.
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    # Ctrl-C in the terminal reaches the whole process group; the launcher
    # stops the children itself, in order, so they ignore SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by the parent around the fork
    # The launcher turns its own SIGHUP and SIGTERM into an orderly stop (see peer.launch.cli);
    # a node keeps the ordinary meaning of both.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    from peer.cli.app import app  # already imported by the launcher: free

    code = 0
    try:
        app(args=argv, prog_name="peer", standalone_mode=False)
    except SystemExit as exc:  # typer.Exit in standalone_mode=False surfaces as a code
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - report anything, then exit non-zero
        print(f"node crashed: {exc!r}", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _fork(ctx: Any, plan: NodePlan) -> BaseProcess:
    """Fork one node with the stop signals held back: a Ctrl-C (or SIGTERM, SIGHUP) that lands
    inside the fork's own machinery is swallowed there ("Exception ignored in _releaseLock") and
    the launch would run on; held back, it is delivered right after, where it stops the launch."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        proc = ctx.Process(target=_child_main, args=(plan.argv, str(plan.out_path)), name=f"peer-{plan.name}")
        proc.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return proc


class Children:
    """The node processes of one launch; stops every one of them on ``stop()``."""

    def __init__(self) -> None:
        self.procs: dict[str, BaseProcess] = {}
        self._ctx = multiprocessing.get_context("fork")

    def start(self, plans: Sequence[NodePlan]) -> None:
        # Move everything imported so far out of the collector's reach: a child's
        # garbage collection would otherwise touch every object and copy the
        # parent's whole heap (numpy, scipy, ...) page by page, in every child.
        gc.freeze()
        for plan in plans:
            self.procs[plan.name] = _fork(self._ctx, plan)

    def restart(self, plan: NodePlan) -> None:
        """Fork ``plan``'s node again with the same argv (after it died; fault injection).

        Like ``start``, only to be called while no trio run (or other thread) is
        active in the launcher: the launcher leaves its trio loop to do this.
        """
        old = self.procs.get(plan.name)
        if old is not None:
            old.join(1.0)  # reap it; it is dead already
        self.procs[plan.name] = _fork(self._ctx, plan)

    def dead(self) -> dict[str, int]:
        """Children that have exited, with their exit codes."""
        return {name: p.exitcode for name, p in self.procs.items() if p.exitcode is not None}

    def signal(self, name: str, signum: int) -> None:
        proc = self.procs[name]
        if proc.pid is not None and proc.exitcode is None:
            os.kill(proc.pid, signum)

    def kill(self, name: str) -> None:
        self.signal(name, signal.SIGKILL)

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM every child, wait up to ``grace`` seconds, then SIGKILL the rest."""
        for proc in self.procs.values():
            if proc.exitcode is None and proc.pid is not None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            proc.join(max(0.0, deadline - time.monotonic()))
        for proc in self.procs.values():
            if proc.exitcode is None:
                proc.kill()
                proc.join(5.0)  # SIGKILL cannot be ignored; this only waits for the kernel to reap

    def memory_kib(self) -> dict[str, int]:
        """Resident set size of each live child (Linux /proc), for the benchmark."""
        out = {}
        for name, proc in self.procs.items():
            try:  # PSS: shared copy-on-write pages are split among the processes sharing them
                status = Path(f"/proc/{proc.pid}/smaps_rollup").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("Pss:"):
                    out[name] = int(line.split()[1])
                    break
        return out
