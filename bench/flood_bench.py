"""Benchmark: flood one real node process for 30 s and watch it (issues 17, 16, 15.3).

Starts four ``peer run`` processes on 127.0.0.1 in a line s - a - b - c; the
victim ``a`` also pins a fifth key ``m`` (a neighbour that only dials in) which
the bench owns.  After a quiet baseline, one attacker process floods ``a`` for
``--seconds`` with, at once:

* junk connections at full rate (connect, then send garbage, nothing, or half
  an upgrade request, and hang up) plus idle ones that never upgrade (slow loris);
* websocket connections that send garbage frames instead of a handshake;
* as the pinned neighbour ``m``: authenticated links carrying validly signed
  frames with junk in them (bids for auctions that do not exist, 60 KiB
  envelopes with forged origin signatures), redialled at once whenever closed.

A few seconds into the flood the seller ``s`` is told (SIGUSR1) to start an
honest auction.  The victim invites ``m`` too (it is a configured neighbour)
and ``m`` never answers, so that auction takes at least one reply timeout
(``--reply-timeout``, 5 s by default for every node).  Once a second the bench samples the victim's RSS, open fds
and sockets, and CPU; it prints a table, whether every node finished the
auction with the same outcome, and whether RSS came back to within 1.5x of the
baseline after the flood.

    python bench/flood_bench.py [--seconds 30] [--after 25] [--attacks junk,idle,garbage,signed]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER = str(Path(sys.executable).with_name("peer"))
TICK = os.sysconf("SC_CLK_TCK")
LINE = ["s", "a", "b", "c"]
VALUES = {"s": "0", "a": "3", "b": "5", "c": "4"}


# --- the attacker (runs in its own process: `flood_bench.py --attack ...`) -------------


ATTACKS = ("junk", "idle", "garbage", "signed")


async def attack(port: int, victim_hex: str, key_path: str, seconds: float, kinds: str) -> dict[str, object]:
    import trio
    from trio_websocket import ConnectionClosed, HandshakeError, wrap_client_stream

    from peer.net.codec import GossipEnvelope
    from peer.net.frames import FrameSealer
    from peer.net.handshake import DialerHandshake
    from peer.net.handshake import HandshakeError as PeerHandshakeError
    from peer.net.identity import Identity
    from peer.net.link import run_handshake
    from peer.sra.messages import Bid

    me = Identity.load(key_path)
    victim = bytes.fromhex(victim_hex)
    counts: dict[str, object] = {"junk_conns": 0, "idle_conns": 0, "garbage_ws": 0, "signed_links": 0, "signed_frames": 0,
              "refused_dials": 0, "garbage_frames": 0, "garbage_ws_failed": 0, "connect_errors": 0}
    errors = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, ConnectionClosed, HandshakeError,
              PeerHandshakeError, trio.TooSlowError)  # what one plain junk connection can raise
    end = trio.current_time() + seconds

    def junk_connections() -> None:
        # Blocking sockets in threads: several times the rate of trio's connect path.
        # A third send garbage, a third hang up at once, a third send half an upgrade
        # request and hang up: the last two used to be held for the handshake timeout.
        payloads = [b"\x16\x03\x01 definitely not HTTP\r\n\r\n", b"",
                    b"GET /peer/v1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"]
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                    n += 1
                    if payloads[n % 3]:
                        sock.sendall(payloads[n % 3])
                counts["junk_conns"] += 1
            except OSError:
                counts["connect_errors"] += 1
                time.sleep(0.001)

    async def idle_connections() -> None:
        held: list[trio.SocketStream] = []
        try:
            while trio.current_time() < end:
                try:
                    held.append(await trio.open_tcp_stream("127.0.0.1", port))
                    counts["idle_conns"] += 1
                except errors:
                    counts["connect_errors"] += 1
                if len(held) > 200:
                    await held.pop(0).aclose()
                await trio.sleep(0.005)
        finally:
            for stream in held:
                await trio.aclose_forcefully(stream)

    async def garbage_websockets() -> None:
        while trio.current_time() < end:
            try:
                with trio.fail_after(2):
                    async with trio.open_nursery() as nursery:
                        try:
                            stream = await trio.open_tcp_stream("127.0.0.1", port)
                            ws = await wrap_client_stream(nursery, stream, "peer", "/peer/v1")
                            await ws.send_message(b"\x93garbage instead of a Hello")
                            counts["garbage_ws"] += 1
                        finally:
                            nursery.cancel_scope.cancel()
            except Exception as exc:  # noqa: BLE001 - any failure of one junk connection (groups included)
                counts.setdefault("first_errors", {}).setdefault("garbage_ws", repr(_leaves(exc))[:300])  # type: ignore[union-attr]
                counts["garbage_ws_failed"] += 1  # mostly: evicted before the upgrade by the victim's cap
                await trio.sleep(0.001)

    junk_rng = random.Random(7)

    async def signed_link(nursery: trio.Nursery) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        ws = await wrap_client_stream(nursery, stream, "peer", "/peer/v1", max_message_size=1 << 20)
        session = await run_handshake(ws, DialerHandshake(me, victim))
        counts["signed_links"] += 1
        sealer = FrameSealer(session, me, max_frame=64 * 1024)
        while trio.current_time() < end:
            roll = junk_rng.random()
            if roll < 0.3:  # a garbage frame: a header whose signature is wrong
                await ws.send_message(junk_rng.randbytes(72 + junk_rng.randrange(2000)))
                counts["garbage_frames"] += 1
                continue
            if roll < 0.65:
                msg = Bid(auction=f"nope-{junk_rng.getrandbits(32)}", amount=1)
            else:
                msg = GossipEnvelope(origin=bytes(32), seq=junk_rng.getrandbits(31), expires_ms=2**40,
                                     topic="ledger", payload=b"j" * 60_000, sig=bytes(64))
            await ws.send_message(sealer.seal(msg))
            counts["signed_frames"] += 1

    async def signed_junk() -> None:
        while trio.current_time() < end:
            try:
                with trio.fail_after(5):
                    async with trio.open_nursery() as nursery:
                        try:
                            await signed_link(nursery)
                        finally:
                            nursery.cancel_scope.cancel()  # also ends trio-websocket's reader task
            except Exception as exc:  # noqa: BLE001 - nurseries wrap what the loop raises in groups
                refused = _leaves(exc) and all(isinstance(e, (ConnectionClosed, PeerHandshakeError)) for e in _leaves(exc))
                counts["refused_dials" if refused else "connect_errors"] += 1
                if not refused:
                    counts.setdefault("first_errors", {}).setdefault("signed", repr(_leaves(exc))[:300])  # type: ignore[union-attr]
                await trio.sleep(0.001)  # redial at once: the victim must throttle us, not we

    async with trio.open_nursery() as nursery:
        for _ in range(3 if "junk" in kinds else 0):  # more threads starve this process's trio tasks (GIL)
            nursery.start_soon(partial(trio.to_thread.run_sync, junk_connections))
        if "idle" in kinds:
            nursery.start_soon(idle_connections)
        for _ in range(4 if "garbage" in kinds else 0):
            nursery.start_soon(garbage_websockets)
        for _ in range(2 if "signed" in kinds else 0):
            nursery.start_soon(signed_junk)
    return counts


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


# --- the bench ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample(pid: int) -> dict[str, float]:
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    fds = os.listdir(f"/proc/{pid}/fd")
    sockets = 0
    for fd in fds:
        try:
            sockets += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    return {"rss": rss, "fds": len(fds), "sockets": sockets, "cpu": cpu}


def events(path: Path) -> list[dict[str, object]]:
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def wait_linked(logs: dict[str, Path], procs: dict[str, subprocess.Popen[bytes]], tmp: Path) -> None:
    """Until every honest link of the line is up (bounded: 60 s)."""
    deadline = time.monotonic() + 60
    want = {name: len([j for j in (i - 1, i + 1) if 0 <= j < len(LINE)]) for i, name in enumerate(LINE)}
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited: {(tmp / f'{name}.err').read_text()[-2000:]}")
        up = {name: {e.get("peer") for e in events(logs[name]) if e.get("kind") == "link" and e.get("up")}
              for name in LINE}
        if all(len(up[n] - {"m"}) >= want[n] for n in LINE):
            time.sleep(1.0)  # let start-up allocations settle before the baseline
            return
        time.sleep(0.2)
    raise SystemExit("the honest links did not come up within 60 s")


def finals(logs: dict[str, Path]) -> dict[str, dict[str, object] | None]:
    out: dict[str, dict[str, object] | None] = {}
    for name, path in logs.items():
        out[name] = next((e for e in events(path) if e.get("kind") == "final"), None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="flood duration")
    parser.add_argument("--before", type=float, default=5.0, help="quiet seconds sampled before the flood")
    parser.add_argument("--after", type=float, default=25.0, help="seconds sampled after the flood")
    parser.add_argument("--reply-timeout", type=float, default=5.0,
                        help="the nodes' reply and context timeouts: the victim invites m too, which never answers")
    parser.add_argument("--workdir", type=Path, help="keep keys, logs and ledgers here (default: a temp dir)")
    parser.add_argument("--attacks", default=",".join(ATTACKS), help=f"which floods to run (of {','.join(ATTACKS)})")
    parser.add_argument("--attack", nargs=4, metavar=("PORT", "VICTIM", "KEY", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack:
        import trio

        port, victim, key, seconds = args.attack
        print(json.dumps(trio.run(attack, int(port), victim, key, float(seconds), args.attacks)), flush=True)
        return

    from peer.net.identity import Identity

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = args.workdir or Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        keys = {}
        for name in [*LINE, "m"]:
            ident = Identity.from_seed(f"flood-bench/{name}".encode().ljust(32, b".")[:32])
            ident.save(tmp / f"{name}.key")
            keys[name] = ident.public_hex
        ports = {name: free_port() for name in LINE}
        procs: dict[str, subprocess.Popen[bytes]] = {}
        logs = {name: tmp / f"{name}.ndjson" for name in LINE}
        try:
            for i, name in enumerate(LINE):
                nbrs = [LINE[j] for j in (i - 1, i + 1) if 0 <= j < len(LINE)]
                spec = [f"{n}=ws://127.0.0.1:{ports[n]}#{keys[n]}" for n in nbrs]
                if name == "a":
                    spec.append(f"m=#{keys['m']}")
                argv = [PEER, "run", "--port", str(ports[name]), "--key", str(tmp / f"{name}.key"), "--name", name,
                        "--value", VALUES[name], "--neighbours", ",".join(spec), "--data-dir", str(tmp / name),
                        "--log-json", str(logs[name]), "--no-tui", "--seed", "1",
                        "--reply-timeout", str(args.reply_timeout), "--context-timeout", str(args.reply_timeout)]
                if name == "s":
                    argv += ["--sell", "lamp", "--start-on-signal"]
                procs[name] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(tmp / f"{name}.err", "w"))
            wait_linked(logs, procs, tmp)
            victim = procs["a"].pid
            rows: list[tuple[str, float, dict[str, float]]] = []
            start = time.monotonic()

            def tick(phase: str, until: float) -> None:
                while time.monotonic() < until:
                    if procs["a"].poll() is not None:
                        raise SystemExit(f"the victim exited with {procs['a'].returncode}: "
                                         f"{(tmp / 'a.err').read_text()[-2000:]}")
                    rows.append((phase, time.monotonic() - start, sample(victim)))
                    time.sleep(1.0)

            tick("before", start + args.before)
            attacker = subprocess.Popen(
                [sys.executable, __file__, "--attack", str(ports["a"]), keys["a"], str(tmp / "m.key"), str(args.seconds),
                 "--attacks", args.attacks],
                stdout=subprocess.PIPE, text=True)
            flood_start = time.monotonic()
            tick("flood", flood_start + 5.0)
            procs["s"].send_signal(signal.SIGUSR1)  # the honest auction starts under the flood
            tick("flood", flood_start + args.seconds)
            out, _ = attacker.communicate(timeout=60)
            counts = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
            tick("after", time.monotonic() + args.after)
            results = finals(logs)
            alive = {name: proc.poll() is None for name, proc in procs.items()}
            victim_log = events(logs["a"])
            counts["victim_links_from_m"] = sum(
                1 for e in victim_log if e.get("kind") == "link" and e.get("peer") == "m" and e.get("up"))
            counts["victim_log_lines"] = len(victim_log)
            counts["victim_stderr_lines"] = len((tmp / "a.err").read_text().splitlines())
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            for proc in procs.values():
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        report(rows, counts, results, alive, args)


def report(rows, counts, results, alive, args) -> None:  # type: ignore[no-untyped-def]
    print(f"{'phase':<7} {'t/s':>5} {'RSS MiB':>8} {'fds':>6} {'sockets':>8} {'CPU %':>6}")
    last_cpu, last_t = None, None
    for phase, t, s in rows:
        cpu = "" if last_cpu is None else f"{100 * (s['cpu'] - last_cpu) / (t - last_t):.0f}"
        print(f"{phase:<7} {t:5.1f} {s['rss']:8.1f} {s['fds']:6d} {s['sockets']:8d} {cpu:>6}")
        last_cpu, last_t = s["cpu"], t
    before = [s["rss"] for p, _, s in rows if p == "before"]
    during = [s for p, _, s in rows if p == "flood"]
    after = [s["rss"] for p, _, s in rows if p == "after"]
    base, peak, end = max(before), max(s["rss"] for s in during), after[-1]
    print()
    print(f"attack sent: {json.dumps(counts)}")
    print(f"victim RSS: before {base:.1f} MiB, peak {peak:.1f} MiB, {args.after:.0f} s after {end:.1f} MiB "
          f"= {end / base:.2f}x before ({'within' if end <= 1.5 * base else 'NOT within'} 1.5x)")
    print(f"victim peak fds {max(s['fds'] for s in during)}, peak sockets {max(s['sockets'] for s in during)}")
    print(f"processes alive at the end: {alive}")
    outcomes = {name: (ev or {}).get("winner") for name, ev in results.items()}
    done = all(ev is not None for ev in results.values())
    same = len({json.dumps(ev.get("winner")) for ev in results.values() if ev}) == 1
    print(f"honest auction during the flood: {'completed on every node' if done else 'NOT completed'}"
          f"{' with one outcome' if done and same else ''}: winners {outcomes}")


if __name__ == "__main__":
    main()
