"""Start and stop the node processes.

Two ways to start a node, both a real, separate OS process running ``peer run``
on the node's argv (so a launched node is exactly a node an operator would
start by hand):

* ``fork`` (the default): a fork server (:mod:`peer.launch.zygote`) that has
  imported the node once forks every node.  A node is up in milliseconds and
  shares the interpreter's pages copy-on-write.
* ``exec``: a fresh ``python -m peer run ...`` per node.  Every node pays its
  own interpreter start and imports (~0.4 s of CPU, ~30 MiB), but nothing is
  inherited: the path for checking that the fork server changes nothing.

Both report exit codes as :mod:`multiprocessing` does (``-N``: killed by signal N).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from peer.launch.plan import NodePlan
from peer.launch.lifetime import die_with_parent
from peer.launch.zygote import ForkServer, ForkServerError

SPAWN_MODES = ("fork", "exec")
# Seconds, plus 50 ms per node, for the fork server to fork a batch: a fork costs it ~3 ms of CPU,
# and on a machine loaded by others it may get a hundredth of a core.
FORK_TIMEOUT = 30.0


class SpawnError(OSError):
    """The nodes could not be started (the fork server failed).  An OSError: every launcher
    already turns one into a single error line."""


class Children:
    """The node processes of one launch; stops every one of them on ``stop()``.

    ``tag`` (a work directory) is put on the fork server's command line, which
    every forked node inherits: ``pgrep -f TAG`` finds them (an exec'd node's
    argv names its files already).  By default the plans' common directory.
    """

    def __init__(self, spawn: str = "fork", tag: str | None = None) -> None:
        if spawn not in SPAWN_MODES:
            raise ValueError(f"spawn must be one of {', '.join(SPAWN_MODES)}, not {spawn!r}")
        self.spawn = spawn
        self.tag = tag
        self.procs: dict[str, Any] = {}  # node -> its pid (fork) or Popen (exec)
        self._server: ForkServer | None = None
        self._pending: list[set[str]] = []  # a staged start's waves not started yet, in order
        self._released: list[set[str]] = []  # the waves started so far, in order
        self._wave_of: dict[str, int] = {}

    # ------------------------------------------------------------------ starting

    def start(self, plans: Sequence[NodePlan], *, staged: bool = False) -> None:
        """Start every node of ``plans``.  ``staged`` (fork only): all are forked now, but a
        wave (``NodePlan.wave``) starts only when :meth:`release_waves` says so; wave 0 at once."""
        if not plans:
            return
        if self.spawn == "exec":
            for plan in plans:
                self.procs[plan.name] = _exec(plan)
            return
        if self._server is None:
            self._server = ForkServer(tag=self.tag or _common_dir(plans))
        waves = sorted({p.wave for p in plans}) if staged else []
        self._wave_of.update({p.name: p.wave for p in plans})
        if len(waves) < 2:
            self._fork(plans)
            return
        self._fork(plans, waves=[p.wave for p in plans])
        self._pending = [{p.name for p in plans if p.wave == w} for w in waves]
        self._released = []
        self.release_waves(set(), set())

    def release_waves(self, started: set[str], linked: set[str]) -> None:
        """Start the next wave of a staged start once every node of the last wave started has
        ``started`` (it listens) and every node of the waves before it is ``linked`` (its own
        dials are done).  So at most two waves handshake at a time: on a loaded machine, a
        thousand handshakes at once outlasted their timeout and were all dialled again."""
        while self._pending and (not self._released or (
                self._released[-1] <= started and all(wave <= linked for wave in self._released[:-1]))):
            names = self._pending.pop(0)
            assert self._server is not None
            try:
                self._server.release(self._wave_of[next(iter(names))])
            except ForkServerError as exc:
                raise SpawnError(0, str(exc)) from None
            self._released.append(names)

    def restart(self, plan: NodePlan) -> None:
        """Start ``plan``'s node again with the same argv (after it died; fault injection)."""
        old = self.procs.get(plan.name)
        if isinstance(old, subprocess.Popen):
            old.wait(1.0)  # reap it; it is dead already
        self.start([plan])

    def _fork(self, plans: Sequence[NodePlan], waves: list[int] | None = None) -> None:
        assert self._server is not None
        try:
            pids = self._server.fork([(p.name, list(p.argv), str(p.out_path)) for p in plans],
                                     timeout=FORK_TIMEOUT + 0.05 * len(plans), waves=waves)
        except ForkServerError as exc:
            self.procs.update(self._server.pids)  # those that did start: stop() must stop them too
            raise SpawnError(0, str(exc)) from None
        self.procs.update(pids)

    # ------------------------------------------------------------------ watching

    def dead(self) -> dict[str, int]:
        """Children that have exited, with their exit codes."""
        if self._server is not None:
            self._server.poll()
            return {name: code for name in self.procs if (code := self._server.exit_code(name)) is not None}
        return {name: code for name, p in self.procs.items() if (code := p.poll()) is not None}

    def _pid(self, name: str) -> int | None:
        """The pid of ``name``'s process if it is still running."""
        proc = self.procs[name]
        if isinstance(proc, subprocess.Popen):
            return proc.pid if proc.poll() is None else None
        assert self._server is not None
        self._server.poll()
        return None if self._server.exit_code(name) is not None else int(proc)

    def signal(self, name: str, signum: int) -> None:
        pid = self._pid(name)
        if pid is not None:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def kill(self, name: str) -> None:
        self.signal(name, signal.SIGKILL)

    # ------------------------------------------------------------------ stopping

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM every child, wait up to ``grace`` seconds, then SIGKILL the rest."""
        for name in self.procs:
            self.signal(name, signal.SIGTERM)
        self._wait_all(grace)
        for name in self.procs:
            self.signal(name, signal.SIGKILL)
        self._wait_all(5.0)  # SIGKILL cannot be ignored; this only waits for the kernel to reap
        if self._server is not None:
            self._server.close()

    def _wait_all(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while any(self._pid(name) is not None for name in self.procs):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self._server is not None:
                self._server.poll(min(left, 0.05))
            else:
                time.sleep(min(left, 0.02))

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the live nodes and the fork server have used so far (Linux /proc)."""
        pids = [pid for name in self.procs if (pid := self._pid(name)) is not None]
        if self._server is not None and self._server.alive():
            pids.append(self._server.proc.pid)
        return sum(cpu_seconds(pid) for pid in pids)

    def memory_kib(self) -> dict[str, int]:
        """Proportional set size of each live child (Linux /proc), for the benchmark."""
        out = {}
        for name in self.procs:
            pid = self._pid(name)
            if pid is None:
                continue
            kib = pss_kib(pid)
            if kib is not None:
                out[name] = kib
        return out

    def server_memory_kib(self) -> int | None:
        """The fork server's own PSS (it holds the pages the nodes share), if there is one."""
        if self._server is None or not self._server.alive():
            return None
        return pss_kib(self._server.proc.pid)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` (0 if it is gone or there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def pss_kib(pid: int) -> int | None:
    """PSS: shared copy-on-write pages are split among the processes sharing them."""
    try:
        status = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return None


def _exec(plan: NodePlan) -> subprocess.Popen[bytes]:
    with open(plan.out_path, "ab") as out:  # own output file: the launcher's terminal is its dashboard's
        return subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "peer", *plan.argv], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            close_fds=True, preexec_fn=_node_signals,  # noqa: PLW1509 - no threads in the launcher yet
        )


def _node_signals() -> None:
    # Ctrl-C reaches the whole process group; the launcher stops the nodes itself, in order.
    # An ignored SIGINT survives exec, and peer run keeps it ignored (peer.node.runner).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    # A launcher killed outright (SIGKILL) cannot stop its nodes: the kernel does (PR_SET_PDEATHSIG,
    # kept across exec), as for the fork server's nodes.  Set here, between fork and exec.
    die_with_parent()


def _common_dir(plans: Sequence[NodePlan]) -> str:
    return os.path.commonpath([str(p.data_dir) for p in plans] + [str(p.log_path) for p in plans])
