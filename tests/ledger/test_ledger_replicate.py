"""Replication: what to send, and the merge (prefix, forks -> fraud proofs, garbage -> rejected)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from peer.ledger.codec import Entries, FraudProofs, Summaries, Summary, decode_payload, encode_payload
from peer.ledger.entries import Announcement, FraudProof
from peer.ledger.replicate import entries_to_send, merge, summarize
from peer.ledger.store import LedgerStore

from ._helpers import KEYS, PK, countersign, make_chain, snapshot

CHAIN = make_chain("a1", hops=4)
OTHER = make_chain("b2", hops=2, seller=5)


def test_entries_to_send() -> None:
    assert entries_to_send(CHAIN, None) == list(CHAIN.entries)
    assert entries_to_send(CHAIN, summarize(make_chain(hops=1))) == list(CHAIN.hops[1:])
    assert entries_to_send(CHAIN, summarize(CHAIN)) == []
    assert entries_to_send(make_chain(hops=1), summarize(CHAIN)) == []  # the peer is ahead
    # Diverged: same length, different head -> everything, so the peer can find the fork.
    fork = make_chain(hops=1).appended(countersign(make_chain(hops=1).next_body(PK[9], 999)))
    assert entries_to_send(CHAIN, summarize(fork)) == list(CHAIN.entries)
    assert entries_to_send(CHAIN, Summary("a1", 3, "00" * 32)) == list(CHAIN.entries)


def test_merge_extends_from_the_common_prefix() -> None:
    mine = {"a1": make_chain(hops=2)}
    result = merge(mine, reversed(CHAIN.entries))  # order does not matter
    assert result.accepted == list(CHAIN.hops[2:])
    assert result.duplicates == 3 and not result.rejected and not result.fraud_proofs
    assert result.chains["a1"] == CHAIN
    assert mine == {"a1": make_chain(hops=2)}  # pure: the input is untouched


def test_merge_new_auction_and_unknown_auction() -> None:
    result = merge({}, [*OTHER.entries, CHAIN.hops[0]])
    assert result.accepted == list(OTHER.entries)
    assert [r.reason for r in result.rejected] == ["unknown auction: no announcement for it"]


def test_divergent_entries_become_fraud_proofs() -> None:
    mine = {"a1": CHAIN}
    twin = countersign(dataclasses.replace(CHAIN.hops[2].body, buyer=PK[9], price=350))
    after_twin = countersign(dataclasses.replace(CHAIN.hops[3].body, seller=PK[9], prev=twin.hash,
                                                 buyer=PK[10]))
    result = merge(mine, [twin, after_twin, twin])
    assert not result.accepted
    # hop 3: node2 sold twice.  hop 4 on the fork shares no signer with ours: rejected.
    assert [(p.position, p.second) for p in result.fraud_proofs] == [(3, twin)]
    assert len(result.rejected) == 1 and "not a fraud proof" in result.rejected[0].reason
    assert result.chains["a1"] == CHAIN


def test_announcement_conflicts() -> None:
    mine = {"a1": CHAIN}
    again = Announcement.create(KEYS[0], auction="a1", item="lamp", created_at_ms=5)
    hijack = Announcement.create(KEYS[7], auction="a1", item="lamp", created_at_ms=5)
    result = merge(mine, [again, hijack])
    assert [p.second for p in result.fraud_proofs] == [again]
    assert [r.reason for r in result.rejected] == ["auction id already announced by another seller"]


def test_garbage_is_rejected_with_a_reason_and_no_state_change(tmp_path: Path) -> None:
    with LedgerStore(tmp_path) as store:
        for entry in make_chain(hops=2).entries:
            store.append(entry)
    before = snapshot(tmp_path)
    nxt = CHAIN.hops[2]
    garbage = [
        dataclasses.replace(nxt, seller_sig=bytes(64)),
        dataclasses.replace(nxt, buyer_sig=nxt.seller_sig),
        countersign(dataclasses.replace(nxt.body, price=1)),  # below the reserve
        countersign(dataclasses.replace(nxt.body, prev="ab" * 32)),
        CHAIN.hops[3],  # a gap
        dataclasses.replace(OTHER.announcement, signature=bytes(64)),
        dataclasses.replace(countersign(dataclasses.replace(CHAIN.hops[1].body, price=201)), buyer_sig=bytes(64),
                            seller_sig=bytes(64)),  # a "conflict" nobody signed
    ]
    with LedgerStore(tmp_path) as store:
        result = store.merge(garbage)
        assert not result.accepted and not result.fraud_proofs
        reasons = [r.reason for r in result.rejected]
        assert len(reasons) == len(garbage) and all(reasons)
        assert any("seller signature" in r for r in reasons) and any("reserve" in r for r in reasons)
        assert store.chains() == [make_chain(hops=2)]
    assert snapshot(tmp_path) == before


def test_two_stores_converge_over_encoded_payloads(tmp_path: Path) -> None:
    twin = countersign(dataclasses.replace(CHAIN.hops[1].body, buyer=PK[11], price=222))
    with LedgerStore(tmp_path / "a") as a, LedgerStore(tmp_path / "b") as b:
        for entry in CHAIN.entries:
            a.append(entry)
        for entry in [*make_chain(hops=1).entries, twin, *OTHER.entries]:
            b.append(entry)

        def wire(payload: object) -> object:
            return decode_payload(encode_payload(payload))  # type: ignore[arg-type]

        for src, dst in ((a, b), (b, a)):
            summaries = wire(Summaries(tuple(dst.summaries())))
            sent = wire(Entries(tuple(src.entries_for(summaries.summaries))))  # type: ignore[attr-defined]
            dst.merge(sent.entries)  # type: ignore[attr-defined]
        # a is ahead, so only b saw both versions of hop 2; new proofs are gossiped on.
        assert len(b.fraud_proofs()) == 1 and a.fraud_proofs() == []
        assert len(a.add_fraud_proofs(wire(FraudProofs(tuple(b.fraud_proofs()))).proofs)) == 1  # type: ignore[attr-defined]
        # b's hop 2 went to node11, a's to node2: node1 signed both.  Each keeps its own chain.
        assert a.chain("b2") == OTHER and b.chain("b2") == OTHER
        assert a.chain("a1") == CHAIN
        assert b.chain("a1").hops[1] == twin  # type: ignore[union-attr]
        assert len(a.fraud_proofs()) == len(b.fraud_proofs()) == 1
        # Relayed proofs are verified, de-duplicated and persisted.
        proofs = wire(FraudProofs(tuple(a.fraud_proofs())))
        assert b.add_fraud_proofs(proofs.proofs) == []  # type: ignore[attr-defined]
        bogus = FraudProof(CHAIN.hops[0], dataclasses.replace(CHAIN.hops[0], seller_sig=bytes(64)))
        assert b.add_fraud_proofs([bogus]) == []
    with LedgerStore(tmp_path / "a") as a:
        assert len(a.fraud_proofs()) == 1 and a.verify_all().ok


@pytest.mark.parametrize("n", [0, 2, 4])
def test_summary_round_trip(n: int) -> None:
    chain = make_chain(hops=n)
    summary = summarize(chain)
    assert summary.length == n + 1 and summary.head == chain.head.digest
