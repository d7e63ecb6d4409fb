"""Benchmark: what one frame hop costs in CPU, against the Ed25519 floor.

Two processes on 127.0.0.1 run a real link (websocket, handshake, signed
frames).  The sender sends N protocol messages (an SRA Bid) and then N gossip
envelopes; the receiver counts them.  Each side reports its own CPU time
(user + system, ``resource.getrusage``), so waiting costs nothing here, unlike
the launch benchmark's wall-clock "cost/floor".  The floor is one Ed25519
sign plus one verify, measured in the same run: a frame hop needs exactly one
of each (the sender signs the frame, the receiver verifies it); a gossip
relay adds the verification of the origin's envelope signature.

The link batches whatever its outbox holds into one signed frame, so how many
messages the sender queues at once sets the cost.  By default the sender fills
the outbox and sleeps (the most batching: a backlog); ``--burst K`` queues K
messages, then sleeps 1 ms so the writer sends them (``--burst 1``: one message
per frame, the cost before batching).  The ``msgs/frame`` column is measured
from the sender's link counters.

With ``--profile`` each side writes a cProfile of its half, and the top
entries by own time are printed: where the CPU goes besides the crypto.

    python bench/frame_bench.py [--n 20000] [--burst K] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing as mp
import pstats
import resource
import time

import trio
from nacl.signing import SigningKey

from peer.net.codec import GossipEnvelope
from peer.net.gossip import sign_envelope
from peer.net.identity import Identity
from peer.net.linkstate import LinkUp, Received
from peer.net.websocket import LinkManager, Neighbour, TcpTransport
from peer.sra.messages import Bid

SEED_A, SEED_B = b"a" * 32, b"b" * 32


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def floor(samples: int = 3000) -> float:
    """Seconds of CPU for one Ed25519 sign + one verify of a frame-sized message."""
    key = SigningKey(b"f" * 32)
    verify_key = key.verify_key
    body = b"x" * 160
    start = cpu()
    for _ in range(samples):
        verify_key.verify(key.sign(body))
    return (cpu() - start) / samples


def messages(n: int) -> tuple[list[Bid], list[GossipEnvelope]]:
    origin = Identity.from_seed(b"o" * 32)
    bids = [Bid(auction="bench/auction", amount=1000 + i) for i in range(n)]
    envelopes = [sign_envelope(origin, i + 1, 2**40, "ledger", b"p" * 200) for i in range(n)]
    return bids, envelopes


async def side(role: str, port_q: mp.Queue, result_q: mp.Queue, n: int, profile: bool, burst: int) -> None:
    me = Identity.from_seed(SEED_A if role == "sender" else SEED_B)
    other = Identity.from_seed(SEED_B if role == "sender" else SEED_A)
    if role == "receiver":
        manager = LinkManager(me, [Neighbour(other.public_key)], TcpTransport("127.0.0.1", 0))
    else:
        port = port_q.get(timeout=30)
        manager = LinkManager(me, [Neighbour(other.public_key, ("127.0.0.1", port))], TcpTransport("127.0.0.1", 0))
    bids, envelopes = messages(n) if role == "sender" else ([], [])
    profiler = cProfile.Profile() if profile else None
    async with trio.open_nursery() as nursery:
        address = await nursery.start(manager.run)
        if role == "receiver":
            port_q.put(address[1])
        peer = other.public_hex
        with trio.fail_after(60):
            async for event in manager.events:
                if isinstance(event, LinkUp):
                    break
        report = {}
        for kind, batch in (("protocol", bids), ("gossip", envelopes)):
            if profiler:
                profiler.enable()
            start_cpu, start_wall = cpu(), time.perf_counter()
            if role == "sender":
                sent, before = 0, manager.snapshot()[peer]
                while sent < n:
                    stop = n if burst == 0 else min(n, sent + burst)
                    while sent < stop and manager.send_nowait(peer, batch[sent]):
                        sent += 1
                    # Queue full (or one burst queued): sleep rather than spin, so the CPU counted
                    # is the link's work.
                    await trio.sleep(0.002 if burst == 0 else 0.001)
            else:
                got = 0
                with trio.fail_after(120):
                    async for event in manager.events:
                        if isinstance(event, Received) and not _is_heartbeat(event.msg):
                            got += 1
                            if got == n:
                                break
            # Both sides wait for the other's end, outside the measured span.
            report[kind] = {"cpu": cpu() - start_cpu, "wall": time.perf_counter() - start_wall}
            if role == "sender":
                await trio.sleep(0.1)  # the last frames leave (their CPU is counted: the sleep is idle)
                after = manager.snapshot()[peer]
                # (Code from before batching, run with PYTHONPATH at it, sent one frame per message.)
                frames = getattr(after, "wire_frames_out", after.frames_out) - getattr(before, "wire_frames_out", before.frames_out)
                report[kind]["frames"] = frames
                report[kind]["msgs"] = after.frames_out - before.frames_out
            if profiler:
                profiler.disable()
            await trio.sleep(1.0 if role == "sender" else 0)
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
            report["profile"] = out.getvalue()
        result_q.put((role, report))
        nursery.cancel_scope.cancel()


def _is_heartbeat(msg: object) -> bool:
    return type(msg).__name__ == "Heartbeat"


def run_side(role: str, port_q: mp.Queue, result_q: mp.Queue, n: int, profile: bool, burst: int) -> None:
    trio.run(side, role, port_q, result_q, n, profile, burst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="messages of each kind")
    parser.add_argument("--burst", type=int, default=0, help="messages queued per burst (0: fill the outbox)")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    ctx = mp.get_context("fork")
    port_q, result_q = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=run_side, args=(r, port_q, result_q, args.n, args.profile, args.burst))
             for r in ("receiver", "sender")]
    for p in procs:
        p.start()
    reports = dict(result_q.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    f = floor()
    print(f"floor: one Ed25519 sign + verify = {f * 1e6:.1f} us CPU")
    print(f"per message, burst {args.burst or 'fill'}:")
    print(f"{'kind':<9} {'send us':>9} {'recv us':>9} {'hop us':>9} {'hop/floor':>10} {'msgs/s':>9} {'msgs/frame':>11}")
    for kind in ("protocol", "gossip"):
        s, r = reports["sender"][kind], reports["receiver"][kind]
        hop = (s["cpu"] + r["cpu"]) / args.n
        per_frame = s["msgs"] / max(s["frames"], 1)
        print(f"{kind:<9} {s['cpu'] / args.n * 1e6:>9.1f} {r['cpu'] / args.n * 1e6:>9.1f} {hop * 1e6:>9.1f} "
              f"{hop / f:>10.2f} {args.n / max(r['wall'], 1e-9):>9.0f} {per_frame:>11.1f}")
    print("(gossip: the receiver's part here delivers the envelope; relaying it onward costs one more "
          "frame hop, and checking the origin's signature one more verify)")
    if args.profile:
        for role in ("sender", "receiver"):
            print(f"\n--- {role}: top own time ---\n{reports[role]['profile']}")
    print(json.dumps({k: {role: reports[role][k] for role in reports} for k in ("protocol", "gossip")}))


if __name__ == "__main__":
    main()
