"""Benchmark: flood one real node process for 30 s and watch it (issues 17, 16, 15.3).

Starts four long-lived ``peer run`` processes on 127.0.0.1 in a line
s - a - b - c; the victim ``a`` also pins a fifth key ``m`` (a neighbour that
only dials in) which the bench owns.  After a quiet baseline, one attacker
process floods ``a`` for ``--seconds`` with, at once (``--attacks``):

* ``junk``: connections at full rate (connect, then send garbage, nothing, or
  half an upgrade request, and hang up); ``idle``: ones that never upgrade;
* ``garbage``: websocket connections that send garbage frames instead of a handshake;
* ``signed``: as ``m``, authenticated links carrying validly signed frames with
  junk in them (bids for auctions that do not exist, 60 KiB envelopes with
  forged origin signatures), redialled at once whenever closed;
* ``spam`` (#16.1): as ``m``, validly signed ledger spam: chains of throwaway
  keys and auction ids (announcement and two countersigned hops), half
  flooded under throwaway gossip origins, half as ``m``'s own anti-entropy
  answers (``flood_spam.py``).

Honest auctions run during the flood: ``s`` sells a few seconds in, ``c`` (at
the far end of the line) halfway through, both through the control socket
(``peer sell --wait``).  The victim invites ``m`` too and ``m`` never answers,
so each takes at least one reply timeout (``--reply-timeout``, 5 s by
default).  Every ``--interval`` (2 s) the bench samples the victim ``a`` and
``b``, two hops from the attacker: RSS, open fds and sockets, CPU, and disk
(bytes under the data dir and chain files in its ledger).  It prints a table,
and whether every node finished each honest auction with the same outcome.

    python bench/flood_bench.py [--seconds 30] [--after 25] [--attacks junk,idle,garbage,signed,spam]
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
from typing import Any

from flood_spam import disk

ROOT = Path(__file__).resolve().parent.parent
PEER = str(Path(sys.executable).with_name("peer"))
TICK = os.sysconf("SC_CLK_TCK")
LINE = ["s", "a", "b", "c"]
WATCHED = ["a", "b"]  # the victim and a node two hops from the attacker
VALUES = {"s": "0", "a": "3", "b": "5", "c": "4"}


# --- the attacker (runs in its own process: `flood_bench.py --attack ...`) -------------


ATTACKS = ("junk", "idle", "garbage", "signed", "spam")


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
    counts: dict[str, Any] = {"junk_conns": 0, "idle_conns": 0, "garbage_ws": 0, "signed_links": 0, "signed_frames": 0,
              "refused_dials": 0, "garbage_frames": 0, "garbage_ws_failed": 0, "connect_errors": 0,
              "spam_links": 0, "spam_flooded": 0, "spam_vouched": 0, "spam_chains": 0, "spam_refused_dials": 0,
              "m_seq": int(time.time() * 1000) * 1000}  # m's gossip seq: increasing across runs
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

    async def spam() -> None:
        from flood_spam import spam_link

        while trio.current_time() < end:
            try:
                with trio.fail_after(max(1.0, end - trio.current_time() + 1)):
                    await spam_link(port, me, victim, end, counts, f"{os.getpid()}")
            except Exception as exc:  # noqa: BLE001 - closed or refused by the victim: redial at once
                refused = _leaves(exc) and all(isinstance(e, (ConnectionClosed, PeerHandshakeError)) for e in _leaves(exc))
                counts["spam_refused_dials" if refused else "connect_errors"] += 1
                if not refused:
                    counts.setdefault("first_errors", {}).setdefault("spam", repr(_leaves(exc))[:300])
                await trio.sleep(0.001)

    async with trio.open_nursery() as nursery:
        if "spam" in kinds:
            nursery.start_soon(spam)
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


def sample(pid: int, data_dir: Path) -> dict[str, float]:
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
    size, chains = disk(data_dir)
    return {"rss": rss, "fds": len(fds), "sockets": sockets, "cpu": cpu, "disk": size, "chains": chains}


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


def outcomes(logs: dict[str, Path], auctions: list[str]) -> dict[str, dict[str, str]]:
    """auction -> node -> "completed (winner)", "aborted: why" or "none" (from each node's log)."""
    out: dict[str, dict[str, str]] = {a: {} for a in auctions}
    for name, path in logs.items():
        for e in events(path):
            auction = e.get("auction")
            if auction in out and e.get("kind") == "final":
                out[auction][name] = f"completed ({str(e.get('winner'))[:8]})"
            elif auction in out and e.get("kind") == "aborted":
                out[auction][name] = f"aborted: {e.get('reason')}"
    return {a: {n: per.get(n, "none") for n in logs} for a, per in out.items()}


def sell(tmp: Path, seller: str, item: str, timeout: float) -> subprocess.Popen[str]:
    """An honest auction on a running node, through its control socket (``peer sell --wait``)."""
    return subprocess.Popen([PEER, "sell", item, "--data-dir", str(tmp / seller), "--wait", "--json",
                             "--timeout", str(timeout)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="flood duration")
    parser.add_argument("--before", type=float, default=5.0, help="quiet seconds sampled before the flood")
    parser.add_argument("--after", type=float, default=25.0, help="seconds sampled after the flood")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between two samples")
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
        sales: list[subprocess.Popen[str]] = []
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
                procs[name] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(tmp / f"{name}.err", "w"))
            wait_linked(logs, procs, tmp)
            pids = {name: procs[name].pid for name in WATCHED}
            rows: list[tuple[str, float, dict[str, dict[str, float]]]] = []
            start = time.monotonic()

            def tick(phase: str, until: float) -> None:
                while time.monotonic() < until:
                    if procs["a"].poll() is not None:
                        raise SystemExit(f"the victim exited with {procs['a'].returncode}: "
                                         f"{(tmp / 'a.err').read_text()[-2000:]}")
                    rows.append((phase, time.monotonic() - start,
                                 {n: sample(pid, tmp / n) for n, pid in pids.items() if procs[n].poll() is None}))
                    time.sleep(min(args.interval, max(0.0, until - time.monotonic())))

            tick("before", start + args.before)
            attacker = subprocess.Popen(
                [sys.executable, __file__, "--attack", str(ports["a"]), keys["a"], str(tmp / "m.key"), str(args.seconds),
                 "--attacks", args.attacks],
                stdout=subprocess.PIPE, text=True)
            flood_start = time.monotonic()
            limit = args.seconds + args.after + 30
            # Honest auctions under the flood: s sells 5 s in (the victim invites m, which never
            # answers: one reply timeout), c sells from the far end of the line halfway through.
            tick("flood", flood_start + min(5.0, args.seconds / 3))
            sales.append(sell(tmp, "s", "lamp", limit))
            tick("flood", flood_start + args.seconds / 2)
            sales.append(sell(tmp, "c", "book", limit))
            tick("flood", flood_start + args.seconds)
            out, _ = attacker.communicate(timeout=60)
            counts = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
            tick("after", time.monotonic() + args.after)
            auctions = []
            for proc in sales:
                out, err = proc.communicate(timeout=limit)
                try:
                    auctions.append(json.loads(out)["auction"])
                except (ValueError, KeyError, TypeError):
                    auctions.append(f"(sell failed: {(out + err).strip()[-300:]})")
            results = outcomes(logs, auctions)
            alive = {name: proc.poll() is None for name, proc in procs.items()}
            victim_log = events(logs["a"])
            counts["victim_links_from_m"] = sum(
                1 for e in victim_log if e.get("kind") == "link" and e.get("peer") == "m" and e.get("up"))
            counts["victim_log_lines"] = len(victim_log)
            counts["victim_stderr_lines"] = len((tmp / "a.err").read_text().splitlines())
        finally:
            for proc in [*sales, *procs.values()]:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            for proc in [*sales, *procs.values()]:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        report(rows, counts, results, alive, args)


def report(rows, counts, results, alive, args) -> None:  # type: ignore[no-untyped-def]
    print(f"{'':<13}" + "".join(f"{'--- ' + n + (' (victim)' if n == 'a' else ' (two hops)') + ' ---':<44}"
                                 for n in WATCHED))
    print(f"{'phase':<7} {'t/s':>5}" + f" {'RSS MiB':>8} {'fds':>5} {'socks':>5} {'CPU%':>5} {'disk KB':>8} {'chains':>6}"
          * len(WATCHED))
    last: dict[str, tuple[float, float]] = {}
    for phase, t, per in rows:
        line = f"{phase:<7} {t:5.1f}"
        for n in WATCHED:
            s = per.get(n)
            if s is None:
                line += f" {'(exited)':>42}"
                continue
            cpu = "" if n not in last else f"{100 * (s['cpu'] - last[n][0]) / (t - last[n][1]):.0f}"
            last[n] = (s["cpu"], t)
            line += (f" {s['rss']:8.1f} {s['fds']:5d} {s['sockets']:5d} {cpu:>5} {s['disk'] / 1024:8.0f}"
                     f" {s['chains']:6d}")
        print(line)
    print()
    print(f"attack sent: {json.dumps({k: v for k, v in counts.items() if k != 'm_seq'})}")
    for n in WATCHED:
        series = [(p, t, per[n]) for p, t, per in rows if n in per]
        base = max(s["rss"] for p, _, s in series if p == "before")
        peak = max(s["rss"] for p, _, s in series if p == "flood")
        end = series[-1][2]
        flood = [s for p, _, s in series if p == "flood"]
        cpu_flood = flood[-1]["cpu"] - series[0][2]["cpu"] if flood else 0.0
        print(f"{n}: RSS before {base:.1f} MiB, peak {peak:.1f} MiB, at the end {end['rss']:.1f} MiB "
              f"({end['rss'] / base:.2f}x); CPU {cpu_flood:.1f} s up to the flood's end, {end['cpu']:.1f} s in all; "
              f"disk {end['disk'] / 1024:.0f} KB, {end['chains']} chain files at the end")
    print(f"processes alive at the end: {alive}")
    for auction, per in results.items():
        done = all(v.startswith("completed") for v in per.values())
        same = len(set(per.values())) == 1
        print(f"honest auction {auction[:24]}... during the flood: "
              f"{'completed on every node' + (' with one outcome' if same else ', outcomes DIFFER') if done else 'NOT completed'}"
              f": {per}")


if __name__ == "__main__":
    main()
