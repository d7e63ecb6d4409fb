"""Property tests of ``split_payload`` (#15.10) and of gossip's token buckets (#16.1).

split_payload: for any batch of entries, summaries (any bucket claims) or
fraud proofs and any limit, every piece is at most the limit, decodes, the
pieces carry exactly the input in order, and a piece claims a bucket only when
it holds all of that bucket's summaries; or ``PayloadTooLarge`` when one item
cannot fit alone (and only then).

The rate limiter: for any sequence of (link, origin, payload size, time step),
the messages a link or an origin gets relayed in any window never exceed its
burst plus its rate times the window, in messages and in bytes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from peer.ledger.codec import (
    BUCKETS,
    Entries,
    FraudProofs,
    Summaries,
    Summary,
    decode_payload,
    encode_payload,
)
from peer.ledger.entries import Announcement, FraudProof
from peer.ledger.reconcile import bucket_of
from peer.ledger.split import PayloadTooLarge, split_payload
from peer.net.gossip import Deliver, Gossip, GossipLimits, sign_envelope
from peer.net.identity import Identity
from peer.net.seqstore import MemorySeqCounter

from ..ledger._helpers import KEYS, countersign, make_chain
from ._common import fuzz

CHAINS = [make_chain(f"c{i}", hops=i % 3, seller=i % 6) for i in range(12)]
ANNS = [Announcement.create(KEYS[i % 10], auction=f"a{i}", item="x" * (i * 97 % 1025), created_at_ms=i)
        for i in range(12)]
ENTRIES = [e for c in CHAINS for e in c.entries] + ANNS
HOP = CHAINS[1].hops[0]
PROOF = FraudProof(HOP, countersign(dataclasses.replace(HOP.body, price=HOP.body.price + 1)))

limits = st.integers(40, 70_000)


def _check_pieces(pieces: list[bytes], limit: int) -> list[Any]:
    assert pieces and all(len(p) <= limit for p in pieces)
    return [decode_payload(p) for p in pieces]


@fuzz(150)
@given(items=st.lists(st.sampled_from(ENTRIES), max_size=60), limit=limits)
def test_entries_split_exactly(items: list[Any], limit: int) -> None:
    try:
        pieces = split_payload(Entries(tuple(items)), limit=limit)
    except PayloadTooLarge:
        event("too large")
        empty = len(encode_payload(Entries(())))
        assert any(empty + len(encode_payload(Entries((e,)))) - empty + 4 > limit for e in items)
        return
    decoded = _check_pieces(pieces, limit)
    assert [e for p in decoded for e in p.entries] == items
    event(f"pieces={min(len(pieces), 5)}")


@fuzz(100)
@given(proofs=st.integers(0, 40), limit=limits)
def test_fraud_proofs_split_exactly(proofs: int, limit: int) -> None:
    try:
        pieces = split_payload(FraudProofs((PROOF,) * proofs), limit=limit)
    except PayloadTooLarge:
        assert limit < len(encode_payload(FraudProofs((PROOF,)))) + 4
        return
    assert sum(len(p.proofs) for p in _check_pieces(pieces, limit)) == proofs


summaries = st.builds(Summary, st.text(min_size=1, max_size=20).filter(lambda t: len(t.encode()) <= 256),
                      st.integers(1, 2**32), st.sampled_from(["ab" * 32, "0" * 64]))


@fuzz(150)
@given(items=st.lists(summaries, max_size=80, unique_by=lambda s: s.auction),
       claims=st.lists(st.integers(0, BUCKETS - 1), max_size=20, unique=True),
       limit=st.integers(120, 5_000))
def test_summaries_split_by_whole_buckets(items: list[Summary], claims: list[int], limit: int) -> None:
    payload = Summaries(tuple(items), tuple(claims))
    decoded = _check_pieces(split_payload(payload, limit=limit), limit)
    assert sorted(s.auction for p in decoded for s in p.summaries) == sorted(s.auction for s in items)
    claimed = [b for p in decoded for b in p.buckets]
    assert len(claimed) == len(set(claimed)) and set(claimed) <= set(claims)
    for p in decoded:
        for b in p.buckets:  # a claim is only made by a piece holding the whole bucket
            assert {s.auction for s in p.summaries if bucket_of(s.auction) == b} == \
                   {s.auction for s in items if bucket_of(s.auction) == b}
    event("all claims kept" if set(claimed) == set(claims) else "a bucket went unclaimed")


# ------------------------------------------------------------ token buckets

LIMITS = GossipLimits(link_msgs=5, link_msgs_burst=10, link_bytes=5_000, link_bytes_burst=20_000,
                      origin_msgs=2, origin_msgs_burst=4, origin_bytes=3_000, origin_bytes_burst=10_000,
                      max_origins=64, max_links=8)
ME = Identity.from_seed(b"m" * 32)
LINKS = [Identity.from_seed(bytes([i]) * 32) for i in range(1, 4)]
ORIGINS = [Identity.from_seed(bytes([i]) * 32) for i in range(10, 16)]
T0 = 1_700_000_000.0

steps = st.lists(st.tuples(st.integers(0, len(LINKS) - 1), st.integers(0, len(ORIGINS) - 1),
                           st.integers(0, 6_000), st.sampled_from([0.0, 0.0, 0.01, 0.1, 0.5, 1.0, 3.0])),
                 min_size=1, max_size=120)


@fuzz(120)
@given(steps=steps)
def test_relayed_traffic_never_exceeds_rate_times_window_plus_burst(steps: list[tuple[int, int, int, float]]) -> None:
    node = Gossip(ME, MemorySeqCounter(), frozenset(i.public_hex for i in LINKS), limits=LIMITS)
    now = T0
    seqs = dict.fromkeys(range(len(ORIGINS)), 0)
    log: list[tuple[float, int, int, int]] = []  # (time, link, origin, size) of each delivery
    for link, origin, size, dt in steps:
        now += dt
        seqs[origin] += 1
        env = sign_envelope(ORIGINS[origin], seqs[origin], int((now + 60) * 1000), "t", b"x" * size)
        if any(isinstance(e, Deliver) for e in node.receive(LINKS[link].public_hex, env, now)):
            log.append((now, link, origin, size))
    for key, rate, burst, brate, bburst in ((1, LIMITS.link_msgs, LIMITS.link_msgs_burst, LIMITS.link_bytes,
                                            LIMITS.link_bytes_burst),
                                           (2, LIMITS.origin_msgs, LIMITS.origin_msgs_burst, LIMITS.origin_bytes,
                                            LIMITS.origin_bytes_burst)):
        for who in {entry[key] for entry in log}:
            mine = [entry for entry in log if entry[key] == who]
            for i, start in enumerate(mine):
                window = [e for e in mine[i:]]
                for j, end in enumerate(window):
                    span = end[0] - start[0]
                    assert j + 1 <= burst + rate * span + 1e-9
                    assert sum(min(e[3], bburst) for e in window[: j + 1]) <= bburst + brate * span + 1e-6
    event(f"delivered {min(len(log) // 10 * 10, 50)}+")
