"""Ledger at scale: what a restart and one anti-entropy round cost with N chains, and the decoders' guard.

Run: .venv/bin/python bench/ledger_scale_bench.py [--chains 1500 10000] [--differ 10]

For each N: N chains (one in 50 with two hops, the rest bare announcements),
two nodes that differ in ``--differ`` chains; prints the size of the single
old-style Entries and Summaries payloads (which ``Gossip.publish`` refused past
60 KiB), how many pieces ``split_payload`` makes of them, the Digests payload,
and the bytes and payloads of a full digest -> summaries -> entries exchange.
Then the cost of ``check_shape`` on worst-case 60 KiB inputs (one value per
byte) and on a genuine 60 KiB entries payload, and the time of one durable
``append`` (record + fsync, then the head file + fsync) in a temporary directory.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time

from nacl.signing import SigningKey

from peer.ledger.codec import Digests, Entries, Summaries, decode_payload, encode_payload
from peer.ledger.entries import Announcement, Chain, SignedHop, sign_hop
from peer.ledger.reconcile import answer_digests, answer_summaries, bucket_digests
from peer.ledger.replicate import merge, summarize
from peer.ledger.split import split_payload
from peer.net.codec import MAX_GOSSIP_PAYLOAD
from peer.net.msgpack_limits import check_shape

KEYS = [SigningKey(hashlib.sha256(b"bench-%d" % i).digest()) for i in range(12)]
PK = [k.verify_key.encode().hex() for k in KEYS]
KEY_OF = dict(zip(PK, KEYS, strict=True))


def _chain(i: int) -> Chain:
    chain = Chain(Announcement.create(KEYS[i % 10], auction=f"auction-{i:06d}", item="lamp",
                                      created_at_ms=1_700_000_000_000 + i))
    if i % 50 == 0:
        for hop in range(1, 3):
            body = chain.next_body(PK[(i + hop) % 10 if (i + hop) % 10 != i % 10 else 11], 100 * hop)
            if body.seller == body.buyer:
                break
            chain = chain.appended(SignedHop(body=body, seller_sig=sign_hop(KEY_OF[body.seller], body),
                                             buyer_sig=sign_hop(KEY_OF[body.buyer], body)))
    return chain


def _exchange(a: list[Chain], b: list[Chain]) -> tuple[int, int]:
    state = {"a": {c.auction: c for c in a}, "b": {c.auction: c for c in b}}
    inbox = [("b", p) for p in split_payload(bucket_digests(a))]
    sent = count = 0
    while inbox:
        to, raw = inbox.pop(0)
        sent += len(raw)
        count += 1
        other = "a" if to == "b" else "b"
        payload = decode_payload(raw)
        mine = list(state[to].values())
        if isinstance(payload, Digests):
            answer = answer_digests(mine, payload)
            inbox += [(other, p) for p in split_payload(answer)] if answer else []
        elif isinstance(payload, Summaries):
            ans = answer_summaries(mine, payload)
            if ans.entries:
                inbox += [(other, p) for p in split_payload(Entries(tuple(ans.entries)))]
            if ans.summaries is not None:
                inbox += [(other, p) for p in split_payload(ans.summaries)]
        else:
            state[to] = merge(state[to], payload.entries).chains
    assert state["a"] == state["b"]
    return sent, count


def _timed(fn, repeat: int = 20) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, nargs="+", default=[1500, 10000])
    parser.add_argument("--differ", type=int, default=10)
    parser.add_argument("--tmp", default=None, help="directory for the append timing (default: the system's)")
    args = parser.parse_args()
    print(f"gossip payload limit: {MAX_GOSSIP_PAYLOAD} bytes")
    for n in args.chains:
        chains = [_chain(i) for i in range(n)]
        entries = Entries(tuple(e for c in chains for e in c.entries))
        summaries = Summaries(tuple(summarize(c) for c in chains), tuple(range(256)))
        digests = bucket_digests(chains)
        t = time.perf_counter()
        pieces = split_payload(entries)
        split_s = time.perf_counter() - t
        print(f"\n{n} chains, {len(entries.entries)} entries")
        print(f"  one Entries payload: {len(encode_payload(entries)):,} B -> split_payload: {len(pieces)} pieces, "
              f"largest {max(map(len, pieces)):,} B ({split_s:.2f} s)")
        spieces = split_payload(summaries)
        print(f"  one Summaries payload: {len(encode_payload(summaries)):,} B -> {len(spieces)} pieces")
        print(f"  Digests: {len(encode_payload(digests)):,} B for {len(digests.buckets)} buckets")
        a = chains
        b = chains[args.differ:]  # b lacks `differ` chains
        sent, count = _exchange(a, b)
        print(f"  exchange, {args.differ} chains differ: {count} payloads, {sent:,} B "
              f"(all summaries would be {sum(map(len, spieces)):,} B)")
        same_sent, same_count = _exchange(a, a)
        print(f"  exchange, identical: {same_count} payload, {same_sent:,} B")

    real = max(split_payload(Entries(tuple(e for c in [_chain(i) for i in range(400)] for e in c.entries))),
               key=len)
    worst = {
        "60 KiB of positive fixints in one array": b"\xdd" + (MAX_GOSSIP_PAYLOAD - 5).to_bytes(4, "big")
                                                   + b"\x00" * (MAX_GOSSIP_PAYLOAD - 5),
        "60 KiB of 0x91 (nesting)": b"\x91" * MAX_GOSSIP_PAYLOAD,
        f"a genuine Entries piece ({len(real):,} B)": real,
    }
    print("\ncheck_shape (best of 20):")
    for name, raw in worst.items():
        def run(raw: bytes = raw) -> None:
            try:
                check_shape(raw, max_depth=4, max_items=8192)
            except ValueError:
                pass
        print(f"  {name}: {_timed(run) * 1e3:.2f} ms")

    from peer.ledger.store import LedgerStore
    chains = [_chain(i) for i in range(200)]
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp, LedgerStore(tmp) as store:
        times = []
        for chain in chains:
            for entry in chain.entries:
                t = time.perf_counter()
                store.append(entry)
                times.append(time.perf_counter() - t)
    print(f"\nappend ({len(times)} entries in {args.tmp or tempfile.gettempdir()}): "
          f"median {statistics.median(times) * 1e3:.2f} ms, p90 {sorted(times)[len(times) * 9 // 10] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
