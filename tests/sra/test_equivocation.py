"""Bid equivocation, sans I/O: signed bid commitments, the fraud proof they make, and the machine's rule.

A node that Bids to two inviters signs two different commitments (each binds
its receiver), so the two receipts are a :class:`~peer.ledger.entries.FraudProof`
any third party checks from the two signatures alone.  Nothing else convicts:
not two signatures over one commitment, not a forged signature, not two
bidders, not a receipt against a chain entry.
"""

from __future__ import annotations

import copy
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer.errors import RemoteProtocolError
from peer.ledger import LedgerStore
from peer.ledger.codec import DecodeError, FraudProofs, decode_payload, decode_record, encode_payload, encode_record
from peer.ledger.entries import FraudProof, InvalidEntry, verify_fraud_proof
from peer.net.identity import Identity
from peer.sra.effects import Send
from peer.sra.equivocation import (
    BID_POSITION,
    RECEIPTS_PER_MESSAGE,
    BidReceipt,
    BookFull,
    ReceiptBook,
    ReceiptError,
    bid_commitment,
    chunks,
    receipt_signed_bytes,
    salt_from,
    salt_message,
    unpack_receipts,
)
from peer.sra.machine import NodeStage
from peer.sra.messages import Bid, ContextBid, ContextReply, ContextRequest
from tests.sra.test_machine import AUCTION, GENESIS, assert_rejected, bid, opener, reported, seller_hosting, sends


def ident(name: str) -> Identity:
    return Identity.from_seed(hashlib.sha256(f"equivocation/{name}".encode()).digest())


E, A, B, OTHER = ident("e"), ident("a"), ident("b"), ident("other")


def signed_bid(bidder: Identity, parent: str, amount: int, auction: str = AUCTION) -> BidReceipt:
    """What the bidder's shell signs and its parent keeps (peer.sra.equivocation_shell.BidGuard.sign)."""
    salt = salt_from(bidder.sign(salt_message(auction)))
    commitment = bid_commitment(auction, bidder.public_hex, parent, amount, salt)
    sig = bidder.sign(receipt_signed_bytes(auction, bidder.public_hex, commitment))
    return BidReceipt(auction=auction, bidder=bidder.public_hex, commitment=commitment, sig=sig)


def test_bids_to_two_parents_make_a_proof_a_third_party_checks_from_the_proof_alone() -> None:
    to_a, to_b = signed_bid(E, A.public_hex, 100), signed_bid(E, B.public_hex, 1)
    book = ReceiptBook(AUCTION)  # the seller's: it gets one receipt through a, one through b
    assert book.add(to_a) is None
    pair = book.add(to_b)
    assert pair == (to_a, to_b)
    proof = FraudProof(*pair)
    assert proof.position == BID_POSITION
    # A third party: the bytes of the proof, decoded, and nothing else.
    for copy_ in (decode_payload(encode_payload(FraudProofs((proof,)))).proofs[0], decode_record(encode_record(proof))):
        assert copy_ == proof
        assert verify_fraud_proof(copy_) == {E.public_hex}
    assert book.to_forward() == []  # a proved bidder is not passed up again: its proof floods
    assert book.add(signed_bid(E, OTHER.public_hex, 5)) is None  # a third version adds nothing


def test_the_same_bid_along_two_paths_or_signed_twice_convicts_nobody() -> None:
    one = signed_bid(E, A.public_hex, 7)
    book = ReceiptBook(AUCTION)
    assert book.add(one) is None and book.add(copy.copy(one)) is None
    assert book.to_forward() == [one]
    # Two signatures over one commitment are one bid (Ed25519 is deterministic anyway).
    with pytest.raises(InvalidEntry, match="not a fraud proof"):
        verify_fraud_proof(FraudProof(one, BidReceipt(auction=AUCTION, bidder=one.bidder, commitment=one.commitment,
                                                      sig=E.sign(one.signed_bytes()))))


def test_forged_mixed_and_foreign_pairs_are_refused() -> None:
    to_a = signed_bid(E, A.public_hex, 100)
    to_b = signed_bid(E, B.public_hex, 1)
    forged = BidReceipt(auction=AUCTION, bidder=E.public_hex, commitment=to_b.commitment,
                        sig=OTHER.sign(to_b.signed_bytes()))  # not E's signature
    other_bidder = signed_bid(OTHER, B.public_hex, 1)
    other_auction = signed_bid(E, B.public_hex, 1, auction="another/1")
    for first, second in ((to_a, forged), (to_a, other_bidder), (to_a, other_auction)):
        with pytest.raises(InvalidEntry):
            verify_fraud_proof(FraudProof(first, second))
    # A forged receipt pair on the wire decodes, and is then refused like any false proof.
    store_copy = decode_payload(encode_payload(FraudProofs((FraudProof(to_a, forged),)))).proofs[0]
    with pytest.raises(InvalidEntry):
        verify_fraud_proof(store_copy)


def test_a_receipt_and_a_ledger_entry_are_never_a_proof() -> None:
    from peer.ledger.entries import Announcement

    ann = Announcement.create(E, auction=AUCTION, item="item", created_at_ms=1)
    with pytest.raises(InvalidEntry):
        verify_fraud_proof(FraudProof(signed_bid(E, A.public_hex, 1), ann))


def test_a_store_keeps_a_bid_proof_refuses_a_false_one_and_reports_it(tmp_path) -> None:
    proof = FraudProof(signed_bid(E, A.public_hex, 100), signed_bid(E, B.public_hex, 1))
    false = FraudProof(signed_bid(E, A.public_hex, 100), signed_bid(OTHER, B.public_hex, 1))
    with LedgerStore.open_data_dir(tmp_path) as store:
        assert store.add_fraud_proofs([false, proof, proof]) == [proof]
    with LedgerStore.open_data_dir(tmp_path, read_only=True) as store:
        assert store.fraud_proofs() == [proof]
        report = store.verify_all()
        assert report.ok and report.fraud_proofs == 1


@settings(max_examples=40, deadline=None)
@given(p1=st.sampled_from([A, B, OTHER]), a1=st.integers(0, 10**12),
       p2=st.sampled_from([A, B, OTHER]), a2=st.integers(0, 10**12))
def test_two_bids_of_one_bidder_convict_it_exactly_when_they_differ(p1, a1, p2, a2) -> None:
    first, second = signed_bid(E, p1.public_hex, a1), signed_bid(E, p2.public_hex, a2)
    book = ReceiptBook(AUCTION)
    book.add(first)
    conflict = book.add(second)
    if (p1, a1) == (p2, a2):
        assert conflict is None and first == second
    else:
        assert conflict is not None and verify_fraud_proof(FraudProof(*conflict)) == {E.public_hex}


def test_the_commitment_hides_parent_and_amount_behind_a_secret_salt() -> None:
    # Whoever sees only a receipt cannot try amounts: the salt is the hash of the bidder's
    # deterministic signature over the auction id, which only the bidder can make.
    r = signed_bid(E, A.public_hex, 3)
    guesses = {bid_commitment(AUCTION, E.public_hex, A.public_hex, 3, salt) for salt in (b"", bytes(32))}
    assert r.commitment not in guesses
    assert salt_from(E.sign(salt_message(AUCTION))) == salt_from(E.sign(salt_message(AUCTION)))  # one per auction


def test_receipts_pack_into_flat_frames_and_malformed_batches_are_refused() -> None:
    receipts = [signed_bid(ident(f"n{i}"), A.public_hex, i) for i in range(RECEIPTS_PER_MESSAGE + 3)]
    packed = chunks(receipts)
    assert len(packed) == 2
    assert [r for c in packed for r in unpack_receipts(AUCTION, c)] == receipts
    for bad in (packed[0][:-1], "text", packed[0] + packed[1]):
        with pytest.raises(ReceiptError):
            unpack_receipts(AUCTION, bad)


def test_a_book_is_bounded_and_keeps_to_its_auction() -> None:
    book = ReceiptBook(AUCTION, limit=2)
    book.add(signed_bid(ident("x"), A.public_hex, 1))
    book.add(signed_bid(ident("y"), A.public_hex, 1))
    with pytest.raises(BookFull):
        book.add(signed_bid(ident("z"), A.public_hex, 1))
    with pytest.raises(ReceiptError):
        book.add(signed_bid(ident("x"), A.public_hex, 1, auction="another/1"))


def test_a_receipt_rejects_malformed_fields() -> None:
    good = signed_bid(E, A.public_hex, 1)
    for change in ({"bidder": "XY" * 32}, {"commitment": "ab"}, {"sig": b"s"}, {"auction": ""}):
        with pytest.raises(ReceiptError):
            BidReceipt(**{**{"auction": good.auction, "bidder": good.bidder, "commitment": good.commitment,
                             "sig": good.sig}, **change})
    with pytest.raises(DecodeError):
        decode_payload(b"\x92\xabledger-fraud\x91\x93\xa5fraud\x93\xa3bid\x01\x02\x93\xa3bid\x01\x02")


# ------------------------------------------------------------------ the machine's rule


def test_a_convicted_child_is_dropped_from_the_convergecast_and_its_bids_are_refused() -> None:
    # p reported with children e (bid 9) and c (bid 4); e is then proved to equivocate.
    p = reported("p", ["s", "e", "c"], 1, inviters=["s"], bids={"e": 9, "c": 4})
    assert p.convict("e", 3.0) == [] and p.convicted == {"e"}
    assert "e" not in p.children
    assert_rejected(p, "e", ContextReply(auction=AUCTION, hop=1, amount=9))
    # Hop 1: the seller opens to p; p asks only c.
    effects = p.receive("s", opener(1, 0, GENESIS), 4.0)
    assert {e.to for e in sends(effects)} == {"c"}
    assert all(isinstance(e.msg, ContextRequest) for e in sends(effects))
    effects = p.receive("c", ContextReply(auction=AUCTION, hop=1, amount=4), 4.5)
    assert [(e.to, e.msg) for e in sends(effects)] == [("s", ContextBid(auction=AUCTION, hop=1, amount=4))]


def test_a_convergecast_waiting_only_on_the_culprit_finishes_at_once() -> None:
    p = reported("p", ["s", "e"], 2, inviters=["s"], bids={"e": 9})
    p.receive("s", opener(1, 0, GENESIS), 4.0)
    effects = p.convict("e", 4.5)
    assert [(e.to, e.msg) for e in sends(effects)] == [("s", ContextBid(auction=AUCTION, hop=1, amount=2))]


def test_a_host_drops_a_convicted_participant_and_closes_its_hop_without_it() -> None:
    s = seller_hosting(["a", "e"], 0, {"a": 3, "e": 9})
    s.receive("a", ContextBid(auction=AUCTION, hop=1, amount=3), 3.0)
    effects = s.convict("e", 3.5)  # e's context bid was the last one pending
    awards = [e.msg for e in sends(effects)]
    assert len(awards) == 1 and awards[0].price == 0 and sends(effects)[0].to == "a"
    assert_rejected(s, "e", ContextBid(auction=AUCTION, hop=1, amount=9))


def test_a_culprit_still_pending_in_stage_2_stops_being_waited_for() -> None:
    from tests.sra.test_machine import INVITE, WINDOW, make

    m = make("p", ["s", "e"], 5)
    m.receive("s", INVITE, 1.0)
    m.on_timer(1.0 + WINDOW)
    assert m.awaiting_reply("e")
    effects = m.convict("e", 2.0)
    assert m.stage is NodeStage.REPORTED and not m.awaiting_reply("e")
    assert [(e.to, e.msg) for e in sends(effects)] == [("s", Bid(auction=AUCTION, amount=5))]
    err = assert_rejected(m, "e", bid(9))
    assert "two different stage-2 bids" in err.reason
    assert m.convict("p", 3.0) == []  # a node never convicts itself
    assert isinstance(sends(effects)[0], Send)


def test_a_machine_never_refuses_anything_from_a_node_not_convicted() -> None:
    p = reported("p", ["s", "e", "c"], 1, inviters=["s"], bids={"e": 9, "c": 4})
    p.convict("e", 3.0)
    with pytest.raises(RemoteProtocolError, match="second reply"):
        p.receive("c", bid(4), 3.0)  # c's error is the ordinary one
