"""#15.10: every ledger payload is cut to fit one gossip message, and anti-entropy scales.

A restarted node used to publish its entries 100 per envelope and all its
summaries in one payload; with ~1,000 chains (or 100 announcements of 1 KiB)
that passed the 60 KiB limit and ``Gossip.publish`` raised, so the node could
never restart.  These tests use 1,500 chains.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from peer.ledger.codec import (
    BUCKETS,
    Digests,
    Entries,
    FraudProofs,
    Summaries,
    Summary,
    decode_payload,
    encode_payload,
)
from peer.ledger.entries import Announcement, Chain, FraudProof
from peer.ledger.reconcile import (
    answer_digests,
    answer_summaries,
    bucket_digests,
    bucket_of,
    covering_summaries,
    differing_buckets,
)
from peer.ledger.replicate import merge, summarize
from peer.ledger.split import PAYLOAD_LIMIT, PayloadTooLarge, split_payload
from peer.net.codec import MAX_GOSSIP_PAYLOAD
from peer.net.gossip import Gossip
from peer.net.identity import Identity
from peer.net.seqstore import MemorySeqCounter

from ._helpers import KEYS, announce, countersign, make_chain

N_CHAINS = 1_500


def _many_chains(n: int = N_CHAINS, *, item: str = "lamp") -> list[Chain]:
    """``n`` chains, mostly bare announcements (cheap to sign), some with hops."""
    chains = []
    for i in range(n):
        if i % 50 == 0:
            chains.append(make_chain(f"auction-{i:05d}", hops=2, seller=i % 5))
        else:
            chains.append(Chain(announce(f"auction-{i:05d}", seller=i % 10, item=item)))
    return chains


CHAINS = _many_chains()


def _decoded(pieces: list[bytes]) -> list:
    assert all(len(p) <= PAYLOAD_LIMIT for p in pieces)
    return [decode_payload(p) for p in pieces]


def test_entries_of_1500_chains_split_into_pieces_that_fit_and_lose_nothing() -> None:
    entries = tuple(e for c in CHAINS for e in c.entries)
    assert len(encode_payload(Entries(entries))) > MAX_GOSSIP_PAYLOAD  # the old single payload could not go
    pieces = split_payload(Entries(entries))
    assert len(pieces) > 1
    assert tuple(e for p in _decoded(pieces) for e in p.entries) == entries


def test_big_announcements_fit_too() -> None:
    """100 valid 1 KiB announcements in one batch were enough to poison a restart."""
    anns = tuple(announce(f"spam-{i}", seller=i % 10, item="x" * 1024) for i in range(100))
    assert len(encode_payload(Entries(anns))) > MAX_GOSSIP_PAYLOAD
    assert tuple(e for p in _decoded(split_payload(Entries(anns))) for e in p.entries) == anns


def test_every_piece_is_accepted_by_gossip_publish() -> None:
    node = Gossip(Identity.from_seed(b"g" * 32), MemorySeqCounter())
    for piece in split_payload(Entries(tuple(e for c in CHAINS for e in c.entries))):
        node.publish("ledger", piece, 1_700_000_000.0)


def test_summaries_of_1500_chains_split_by_bucket() -> None:
    summaries = tuple(summarize(c) for c in CHAINS)
    everything = tuple(range(BUCKETS))
    assert len(encode_payload(Summaries(summaries, everything))) > MAX_GOSSIP_PAYLOAD
    pieces = _decoded(split_payload(Summaries(summaries, everything)))
    assert len(pieces) > 1
    assert sorted(s.auction for p in pieces for s in p.summaries) == sorted(s.auction for s in summaries)
    assert {s for p in pieces for s in p.summaries} == set(summaries)
    # Each covered bucket is claimed by exactly one piece, which holds all of that bucket's summaries.
    claims = [b for p in pieces for b in p.buckets]
    assert sorted(claims) == list(everything)
    for p in pieces:
        for b in p.buckets:
            assert {s.auction for s in p.summaries if bucket_of(s.auction) == b} == \
                   {s.auction for s in summaries if bucket_of(s.auction) == b}


def test_a_bucket_too_large_for_one_piece_goes_unclaimed() -> None:
    summaries = tuple(summarize(c) for c in CHAINS)
    pieces = _decoded(split_payload(Summaries(summaries, tuple(range(BUCKETS))), limit=300))
    assert sorted(s.auction for p in pieces for s in p.summaries) == sorted(s.auction for s in summaries)
    assert {s for p in pieces for s in p.summaries} == set(summaries)
    for p in pieces:  # a claim is only ever made by a piece holding the whole bucket
        for b in p.buckets:
            assert {s.auction for s in p.summaries if bucket_of(s.auction) == b} == \
                   {s.auction for s in summaries if bucket_of(s.auction) == b}


def test_fraud_proofs_and_digests_split_too() -> None:
    chain = make_chain("f", hops=1)
    hop = chain.hops[0]
    twin = countersign(dataclasses.replace(hop.body, price=hop.body.price + 1))
    proofs = tuple(FraudProof(hop, twin) for _ in range(300))
    assert len(encode_payload(FraudProofs(proofs))) > MAX_GOSSIP_PAYLOAD
    assert tuple(p for piece in _decoded(split_payload(FraudProofs(proofs))) for p in piece.proofs) == proofs
    digests = bucket_digests(CHAINS)
    (piece,) = _decoded(split_payload(digests))  # 1,500 chains: one payload of digests
    assert piece == digests and len(digests.buckets) <= BUCKETS


def test_an_item_too_large_on_its_own_is_refused_clearly() -> None:
    ann = announce("big", item="x" * 1024)
    with pytest.raises(PayloadTooLarge, match="exceeds the 500-byte payload limit"):
        split_payload(Entries((ann,)), limit=500)


def test_empty_payloads_give_one_empty_piece() -> None:
    assert _decoded(split_payload(Entries(()))) == [Entries(())]
    assert _decoded(split_payload(Summaries(()))) == [Summaries(())]


# ------------------------------------------------------------ reconciliation


def _exchange(a: list[Chain], b: list[Chain]) -> tuple[dict[str, Chain], dict[str, Chain], int]:
    """Run the digest -> summaries -> entries exchange A->B to quiescence; bytes on the wire."""
    state = {"a": {c.auction: c for c in a}, "b": {c.auction: c for c in b}}
    wire = 0
    inbox: list[tuple[str, bytes]] = [("b", p) for p in split_payload(bucket_digests(a))]
    steps = 0
    while inbox:
        steps += 1
        assert steps < 10_000
        to, raw = inbox.pop(0)
        wire += len(raw)
        other = "a" if to == "b" else "b"
        payload = decode_payload(raw)
        mine = list(state[to].values())
        if isinstance(payload, Digests):
            answer = answer_digests(mine, payload)
            if answer is not None:
                inbox += [(other, p) for p in split_payload(answer)]
        elif isinstance(payload, Summaries):
            ans = answer_summaries(mine, payload)
            if ans.entries:
                inbox += [(other, p) for p in split_payload(Entries(tuple(ans.entries)))]
            if ans.summaries is not None:
                inbox += [(other, p) for p in split_payload(ans.summaries)]
        else:
            result = merge(state[to], payload.entries)
            assert not result.rejected and not result.fraud_proofs
            state[to] = result.chains
    return state["a"], state["b"], wire


def test_two_nodes_with_1500_chains_differing_in_a_few_converge_cheaply() -> None:
    rng = random.Random(7)
    a, b = list(CHAINS), list(CHAINS)
    only_a = rng.sample(range(N_CHAINS), 5)
    only_b = rng.sample(sorted(set(range(N_CHAINS)) - set(only_a)), 5)
    a = [c for i, c in enumerate(a) if i not in only_b]
    b = [c for i, c in enumerate(b) if i not in only_a]
    # ... and b is one hop behind on a chain that has hops
    behind = next(i for i in range(0, N_CHAINS, 50) if i not in only_a and i not in only_b)
    b[b.index(CHAINS[behind])] = Chain(CHAINS[behind].announcement, CHAINS[behind].hops[:1])
    after_a, after_b, wire = _exchange(a, b)
    assert after_a == after_b == {c.auction: c for c in CHAINS}
    full = sum(len(p) for p in split_payload(Summaries(tuple(summarize(c) for c in CHAINS))))
    assert wire < full / 3  # far less than everyone's summaries


def test_identical_ledgers_exchange_one_digest_payload_and_stop() -> None:
    assert answer_digests(CHAINS, bucket_digests(CHAINS)) is None
    assert differing_buckets(bucket_digests(CHAINS), bucket_digests(CHAINS[1:])) == [bucket_of(CHAINS[0].auction)]


def test_a_node_that_lost_everything_gets_it_all_back() -> None:
    after_a, after_b, _ = _exchange([], CHAINS[:300])  # the empty node asks
    assert after_a == after_b == {c.auction: c for c in CHAINS[:300]}


def test_covering_summaries_say_what_the_sender_lacks() -> None:
    theirs = covering_summaries([], [bucket_of("auction-00001")])
    ans = answer_summaries(CHAINS, theirs)
    assert {e.auction for e in ans.entries} == {c.auction for c in CHAINS
                                               if bucket_of(c.auction) == bucket_of("auction-00001")}
    assert ans.summaries is None
    assert isinstance(ans.entries[0], Announcement) and KEYS


def test_the_densest_pieces_pass_the_decoders_shape_bound() -> None:
    """Summaries with 2-character ids pack the most values into 60 KiB: every piece still decodes."""
    alphabet = [chr(c) for c in range(33, 127)]
    ids = [a + b for a in alphabet for b in alphabet][:4000]
    summaries = Summaries(tuple(Summary(i, 1, "ab" * 32) for i in ids), tuple(range(BUCKETS)))
    pieces = split_payload(summaries)
    assert max(map(len, pieces)) > MAX_GOSSIP_PAYLOAD - 1000  # full pieces
    assert sum(len(decode_payload(p).summaries) for p in pieces) == len(ids)
