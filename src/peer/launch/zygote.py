"""The fork server ("zygote"): one lean process that imports the node once and forks every node.

The launcher starts it as a fresh interpreter (``python -m peer.launch.zygote``)
that loads only what ``peer run`` needs (no simulator, networkx, dashboard) and
parses one node's argv once, so typer's option converters exist before the first
fork.  Every node is then an ``os.fork()`` of it: a real, separate process with
its own trio run, sockets, data directory and log, that runs the ``peer run``
command on its own argv.  Imports are paid once and the interpreter's pages
stay shared copy-on-write (``gc.freeze()`` keeps the collector from writing to
every inherited object).  Forking the launcher itself instead, as before, put
the launcher's whole heap (typer's CLI tree, rich, networkx, the scenario) under
every node, and every node built the whole CLI again before parsing its argv.

Protocol, one JSON object per line:

* launcher -> zygote (its stdin): ``{"op": "fork", "name", "argv", "out"[, "wave"]}``;
  ``{"op": "go"[, "wave"]}``; ``{"op": "quit"}``.  A forked node waits (at most
  ``GO_TIMEOUT``) for the "go" of its wave (none: the unnamed wave) before it
  starts: forking is quick only while the zygote has the CPU, and hundreds of
  starting nodes would take it (100 nodes took over 6 s to fork on a loaded
  machine, 1 ms each otherwise).  Waves let the launcher fork every node at once
  and still start them a group at a time (a staged start, see
  :func:`peer.launch.plan.start_order`).
* zygote -> launcher (its stdout): ``{"ev": "ready"}``; ``{"ev": "forked",
  "name", "pid"}``; ``{"ev": "exit", "name", "pid", "code"}`` with the code as
  :mod:`multiprocessing` gives it (``-N`` for a death by signal N);
  ``{"ev": "error", "message"}``.

The zygote reaps its children and reports their exits; the launcher signals
them by pid.  If the launcher goes away (its end of the pipe closes, even on
SIGKILL), the zygote stops every node (SIGTERM, then SIGKILL after 3 s) and
exits: no node outlives its launch.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

from peer.launch.lifetime import die_with_parent

STOP_GRACE = 3.0  # seconds the nodes get after SIGTERM when the launcher is gone
TICK = 0.05  # the longest the zygote sleeps before reaping and reading again
# A forked node starts anyway after this long without a "go".  Long: in a staged start the last wave
# waits for every earlier one to listen, and the zygote stops every node if the launcher goes away.
GO_TIMEOUT = 600.0


# --------------------------------------------------------------------------- the server


def _child(command: Any, argv: list[str], out_path: str, go: tuple[int, int], inherited: list[int],
           parsed: Any = None) -> None:
    """In the forked node: own files and signals, wait for "go", then ``peer run`` on its argv (``parsed``:
    as the fork server parsed it, see :mod:`peer.launch.preparse`).  Never returns.

    ``inherited``: every other "go" pipe end the zygote holds, closed here at once (a node holding
    another wave's write end would keep that wave from ever seeing its "go")."""
    code = 1
    try:
        die_with_parent()
        for fd in (go[1], *inherited):  # only the zygote may hold a write end: its close is the "go"
            os.close(fd)
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)  # and the zygote's pipes are gone from this process
        os.close(null)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        # Ctrl-C reaches the whole process group; the launcher stops the nodes itself, in order.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)  # a node keeps the ordinary meaning of these
        signal.pthread_sigmask(signal.SIG_SETMASK, set())  # held back by the zygote around the fork
        select.select([go[0]], [], [], GO_TIMEOUT)
        os.close(go[0])
        if parsed is not None:
            from peer.launch.preparse import invoke

            code = invoke(parsed)
        else:
            from peer.cli.node_entry import run_argv

            code = run_argv(command, argv)
    except BaseException as exc:  # noqa: BLE001 - report anything, then exit non-zero
        try:
            print(f"node crashed: {exc!r}", file=sys.stderr)
        except Exception:  # noqa: BLE001
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(code)


class _Server:
    def __init__(self) -> None:
        from peer.cli.node_entry import node_command

        self.command = node_command()
        self.warmed = False
        self.plugs: list[object] = []  # objects filling the allocator's free blocks (plug_pool_holes)
        self.children: dict[int, str] = {}  # pid -> node name
        self.buffer = b""
        self.gone = False  # the launcher's end of our stdout closed
        self.go: dict[Any, tuple[int, int]] = {}  # wave -> the pipe its nodes, forked and not yet started, wait on
        self.parsed: dict[str, Any] = {}  # node -> its argv parsed here (peer.launch.preparse), until forked

    def emit(self, event: dict[str, Any]) -> None:
        if self.gone:
            return
        try:
            os.write(1, (json.dumps(event) + "\n").encode())
        except OSError:
            self.gone = True

    def _warm(self, argv: list[str]) -> None:
        if not self.warmed:
            from peer.cli.node_entry import warm

            warm(self.command, argv)
            self._preload(argv)
            warm_node_code()
            gc.collect()  # the warm-up's garbage: not to be frozen into every node
            self.plugs = plug_pool_holes()  # kept: what fills the holes must outlive every fork
            self.warmed = True

    def prepare(self, forks: list[dict[str, Any]]) -> None:
        """Parse a batch's argvs here before forking any of it (pages touched now stay shared)."""
        from peer.launch.preparse import parse

        for command in forks:
            argv, name = command.get("argv"), command.get("name")
            if isinstance(argv, list) and argv and isinstance(name, str):
                self._warm([str(a) for a in argv])
                self.parsed[name] = parse(self.command, [str(a) for a in argv])

    def fork(self, name: str, argv: list[str], out: str, wave: Any = None) -> None:
        self._warm(argv)
        parsed = self.parsed.pop(name, None)
        # The argv was parsed for the whole batch before its first fork (prepare): parsed one fork at
        # a time, each parse wrote to pages already shared with the node forked before, which the
        # zygote then copied (4 ms a fork), for at most 1 MiB saved per node.
        gc.freeze()  # everything so far is shared: the nodes' collectors must not write to it
        go = self.go.get(wave)
        if go is None:
            go = self.go[wave] = os.pipe()
        others = [fd for w, pipe in self.go.items() if w != wave for fd in pipe]
        # SIGTERM held back across the fork: the child must not die between fork and its own setup.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            pid = os.fork()
            if pid == 0:
                _child(self.command, argv, out, go, others, parsed)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        self.children[pid] = name
        self.emit({"ev": "forked", "name": name, "pid": pid})

    def release(self, wave: Any = None) -> None:
        """ "go": the nodes of ``wave`` forked since its last "go" start now (they read EOF on the pipe)."""
        go = self.go.pop(wave, None)
        if go is not None:
            os.close(go[0])
            os.close(go[1])

    @staticmethod
    def _preload(argv: list[str]) -> None:
        """What a node would import on its first steps: sockets the idna codec, adversaries their code,
        QPQ nodes the QPQ shell and scipy (seconds of CPU per node when each imports it on its own)."""
        import encodings.idna  # noqa: F401
        import secrets  # noqa: F401

        import peer.node.runner  # noqa: F401

        if "--behaviour" in argv:
            import peer.node.adversary  # noqa: F401
        import peer.node.control  # noqa: F401  (every node serves its control socket)

        if "--qpq-plan" in argv:
            # And the stream's setup and KS tables, cached per process (peer.node.qpq_shell.setup_for):
            # computed here once, not in every node inside its first phase.
            from pathlib import Path

            from peer.node.qpq_shell import QpqPlan, setup_for, warm

            try:
                warm(setup_for(QpqPlan.load(Path(argv[argv.index("--qpq-plan") + 1]))))
            except Exception:  # noqa: BLE001 - a warm-up only: the node reports a bad plan itself
                pass

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            name = self.children.pop(pid, None)
            if name is not None:
                code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                self.emit({"ev": "exit", "name": name, "pid": pid, "code": code})

    def commands(self, timeout: float) -> list[dict[str, Any]] | None:
        """The complete command lines that arrived within ``timeout``; None once the launcher is gone."""
        ready, _, _ = select.select([0], [], [], timeout)
        if not ready:
            return []
        chunk = os.read(0, 1 << 20)
        if not chunk:
            return None
        *lines, self.buffer = (self.buffer + chunk).split(b"\n")
        out = []
        for line in lines:
            try:
                command = json.loads(line)
            except ValueError:
                continue
            if isinstance(command, dict):
                out.append(command)
        return out

    def serve(self) -> None:
        self.emit({"ev": "ready"})
        while not self.gone:
            commands = self.commands(TICK)
            if commands is None:
                break
            if any(command.get("op") == "quit" for command in commands):
                return  # forks still queued behind it are dropped: the launcher has given up on them
            self.prepare([c for c in commands if c.get("op") == "fork"])
            for command in commands:
                if command.get("op") == "go":
                    self.release(_wave(command))
                if command.get("op") == "fork":
                    try:
                        self.fork(str(command["name"]), [str(a) for a in command["argv"]], str(command["out"]),
                                  _wave(command))
                    except (KeyError, TypeError, OSError) as exc:
                        self.emit({"ev": "error", "message": f"cannot fork {command.get('name')}: {exc}"})
            self.reap()

    def stop_all(self) -> None:
        """The launcher is gone or done: no node may outlive it."""
        for sig, wait in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 5.0)):
            for pid in list(self.children):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while self.children and time.monotonic() < deadline:
                self.reap()
                time.sleep(0.02)
            if not self.children:
                return


def main() -> int:
    # The launcher decides when nodes stop; a closed terminal or Ctrl-C reaches us too, and must not
    # orphan them: we stop when the launcher's pipe closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # and then stop the nodes (finally, below)
    server = None
    try:
        server = _Server()
        server.serve()
    except SystemExit:
        return 1
    except Exception as exc:  # noqa: BLE001 - one line for the launcher, never a traceback
        try:
            os.write(1, (json.dumps({"ev": "error", "message": f"fork server failed: {exc!r}"}) + "\n").encode())
        except OSError:
            pass
        return 1
    finally:
        if server is not None:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            server.stop_all()
    return 0


def _wave(command: dict[str, Any]) -> int | None:
    wave = command.get("wave")
    return wave if isinstance(wave, int) and not isinstance(wave, bool) else None


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(1)


def warm_node_code(limit: float = 2.0) -> None:
    """Run two linked nodes here, briefly, before the first fork.

    CPython 3.11 writes into a function's code object on its first calls (it
    counts them, then specialises the bytecode in place), so a node running code
    that the zygote never ran copies every page holding such code.  Run here
    once, the start-up, handshake, link and ledger-summary paths are specialised
    in the shared pages.  Throwaway keys, 127.0.0.1, a temporary directory;
    bounded by ``limit`` seconds; any failure only costs the saving.
    """
    import shutil
    import tempfile
    from pathlib import Path

    import trio

    from peer.launch.plan import free_ports
    from peer.net.identity import Identity
    from peer.node.config import NodeConfig, parse_neighbours
    from peer.net.link import LinkConfig
    from peer.node.node import Node

    tmp = Path(tempfile.mkdtemp(prefix="peer-zygote-warm-"))
    try:
        ids = [Identity.from_seed(bytes([i + 1]) * 32) for i in range(2)]
        ports = free_ports(2)
        configs = []
        for i, ident in enumerate(ids):
            key = tmp / f"{i}.key"
            ident.save(key)
            other = f"w{1 - i}=ws://127.0.0.1:{ports[1 - i]}#{ids[1 - i].public_hex}"
            configs.append(NodeConfig(key_path=key, port=ports[i], value=0, neighbours=parse_neighbours(other),
                                      name=f"w{i}", data_dir=tmp / f"d{i}", log_json=tmp / f"{i}.ndjson"))
        # Nodes without the runner's signal handling; links that close at once (two nodes stopping
        # together would each wait the whole close timeout for the other's reply).
        nodes = [Node(config, ident, link_config=LinkConfig(close_timeout=0.05))
                 for config, ident in zip(configs, ids, strict=True)]

        async def pair() -> None:
            with trio.move_on_after(limit):
                async with trio.open_nursery() as nursery:
                    for node in nodes:
                        nursery.start_soon(node.run)
                    while not all(node.all_linked.is_set() for node in nodes):
                        await trio.sleep(0.01)
                    await trio.sleep(0.2)  # the ledger summaries exchanged on linking
                    nursery.cancel_scope.cancel()

        trio.run(pair)
    except Exception:  # noqa: BLE001 - a warm-up only
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def plug_pool_holes() -> list[object]:
    """Fill the free blocks of the allocator's pools here, before forking; return what fills them.

    The warm-up's garbage, collected just before, leaves free blocks scattered through pools whose
    other blocks stay in use.  CPython's allocator serves a request from a partly used pool first,
    so a node's own small objects would land in those holes, each copying a shared page that is
    otherwise never written.  Filled here (with objects no node ever touches), the nodes allocate
    from fresh pools of their own instead, which they pack densely.  Sizes from
    ``sys._debugmallocstats()`` (per size class: the blocks available in allocated pools).
    """
    import tempfile

    try:
        with tempfile.TemporaryFile() as report:
            saved = os.dup(2)
            try:
                os.dup2(report.fileno(), 2)
                sys._debugmallocstats()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            report.seek(0)
            lines = report.read().decode("ascii", "replace").splitlines()
    except OSError:
        return []
    plugs: list[object] = []
    empty = sys.getsizeof(b"")
    for line in lines:
        fields = line.split()
        if len(fields) != 5 or not all(f.isdigit() for f in fields):
            continue
        size, avail = int(fields[1]), int(fields[4])
        if size - 16 >= empty:  # a bytes object of this size class (smaller classes: few, left alone)
            plugs.extend(bytes(size - empty) for _ in range(avail))
    return plugs


# --------------------------------------------------------------------------- the launcher's side


class ForkServerError(Exception):
    """The fork server did not start, answer or fork in time."""


class ForkServer:
    """The launcher's handle on a zygote: ask for forks, learn pids and exits.

    ``tag`` is added to the zygote's command line, and so to every node's (a fork
    keeps it): ``pgrep -f WORKDIR`` finds a launch's nodes, as with exec'd nodes.
    """

    def __init__(self, tag: str | None = None, start_timeout: float = 30.0) -> None:
        argv = [sys.executable, "-m", "peer.launch.zygote"] + ([tag] if tag else [])
        self.proc = subprocess.Popen(  # noqa: S603
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
            preexec_fn=_ignore_interrupts,  # noqa: PLW1509 - the launcher has no threads yet
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self._out = self.proc.stdout.fileno()
        os.set_blocking(self._out, False)
        os.set_blocking(self.proc.stdin.fileno(), False)  # see _write
        self._buffer = b""
        self.pids: dict[str, int] = {}  # node -> pid of its current process
        self.exits: dict[int, int] = {}  # pid -> exit code
        self.errors: list[str] = []
        self._ready = False
        self.start_timeout = start_timeout

    def fork(self, requests: list[tuple[str, list[str], str]], timeout: float,
             waves: list[int] | None = None) -> dict[str, int]:
        """Fork one node per ``(name, argv, out_path)``; wait (bounded) until each has a pid.

        Without ``waves`` they all start at once.  With them (one per request) a node waits
        for its wave's :meth:`release`: all are forked now, while the zygote has the CPU."""
        wanted = {n for n, _, _ in requests}
        before = {n: self.pids.get(n) for n in wanted}
        deadline = time.monotonic() + timeout + (0 if self._ready else self.start_timeout)
        tags = [{} if waves is None else {"wave": w} for w in (waves or [None] * len(requests))]
        self._write("".join(json.dumps({"op": "fork", "name": n, "argv": a, "out": o, **tag}) + "\n"
                            for (n, a, o), tag in zip(requests, tags, strict=True)).encode()
                    + (b'{"op": "go"}\n' if waves is None else b""),
                    timeout=timeout + (0 if self._ready else self.start_timeout))
        got: dict[str, int] = {}
        while True:
            for name in wanted - set(got):
                if self.pids.get(name) not in (None, before[name]):
                    got[name] = self.pids[name]
            if len(got) == len(wanted):
                return got
            if self.errors:
                raise ForkServerError(self.errors[-1])
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise ForkServerError(f"the fork server started {len(got)} of {len(wanted)} nodes "
                                      f"({'it exited' if self.proc.poll() is not None else 'timed out'})")
            self.poll(min(left, 0.5))

    def release(self, wave: int) -> None:
        """Start the nodes of ``wave`` (forked by :meth:`fork` with ``waves``)."""
        self._write(json.dumps({"op": "go", "wave": wave}).encode() + b"\n", timeout=10.0)

    def poll(self, timeout: float = 0.0) -> None:
        """Read what the zygote reported (waiting at most ``timeout`` for something)."""
        if timeout > 0:
            select.select([self._out], [], [], timeout)
        while True:
            try:
                chunk = os.read(self._out, 1 << 20)
            except BlockingIOError:
                return
            except OSError:
                return
            if not chunk:
                return
            *lines, self._buffer = (self._buffer + chunk).split(b"\n")
            for line in lines:
                self._apply(line)

    def _apply(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return
        kind = event.get("ev")
        if kind == "ready":
            self._ready = True
        elif kind == "forked":
            self.pids[str(event["name"])] = int(event["pid"])
        elif kind == "exit":
            self.exits[int(event["pid"])] = int(event["code"])
        elif kind == "error":
            self.errors.append(str(event.get("message")))

    def exit_code(self, name: str) -> int | None:
        pid = self.pids.get(name)
        return None if pid is None else self.exits.get(pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self, timeout: float = 10.0) -> None:
        """Ask the zygote to stop what is left and exit; bounded, then killed."""
        try:
            self._write(b'{"op": "quit"}\n', timeout=2.0)
        except ForkServerError:
            pass
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5.0)
        self.poll()
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def _write(self, data: bytes, timeout: float = 60.0) -> None:
        """Send ``data``, reading the zygote's reports meanwhile.

        Never a blocking write: a pipe may hold as little as one page (Linux gives
        new pipes one page once a user's pipes hold ``pipe-user-pages-soft``, as on
        a machine running thousands of processes), and a zygote blocked on writing
        its reports would then never read the rest of our requests.
        """
        assert self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise ForkServerError("the fork server is gone" if self.proc.poll() is not None
                                      else "the fork server stopped reading")
            readable, writable, _ = select.select([self._out], [fd], [], min(left, 0.5))
            if readable:
                self.poll()
            if writable:
                try:
                    view = view[os.write(fd, view):]
                except BlockingIOError:
                    continue
                except (BrokenPipeError, OSError) as exc:
                    raise ForkServerError("the fork server is gone") from exc


def _ignore_interrupts() -> None:
    # Set before exec, so not even a Ctrl-C during the zygote's first imports can kill it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    raise SystemExit(main())
