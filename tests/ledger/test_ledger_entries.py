"""Signatures, chain rules and the participant's reserve check."""

from __future__ import annotations

import dataclasses

import pytest
from nacl.signing import SigningKey

from peer.ledger import keys
from peer.ledger.entries import (
    Announcement,
    Chain,
    FraudProof,
    InvalidEntry,
    ReserveError,
    SignedHop,
    check_reserve,
    find_culprits,
    hop_signed_bytes,
    sign_hop,
    verify_announcement,
    verify_chain,
    verify_fraud_proof,
    verify_hop,
)
from peer.sra.ledger_entry import HopEntry, genesis_hash

from ._helpers import KEY_OF, KEYS, PK, announce, countersign, make_chain

ZERO_SIG = bytes(64)


def _with(hop: SignedHop, **changes: object) -> SignedHop:
    return dataclasses.replace(hop, **changes)


def test_honest_chain_verifies_and_matches_the_machine_hashes() -> None:
    chain = make_chain(hops=4)
    verify_chain(chain)
    ann = chain.announcement
    # The chain root is the machine's genesis; hop 1 chains to it, hop k to hop k-1.
    assert ann.hash == genesis_hash("a1", "lamp", PK[0])
    assert chain.hops[0].body.prev == ann.hash
    assert chain.hops[2].body.prev == chain.hops[1].body.hash


@pytest.mark.parametrize("which", ["seller_sig", "buyer_sig"])
def test_missing_signature_is_rejected(which: str) -> None:
    chain = make_chain(hops=1)
    hop = chain.hops[0]
    with pytest.raises(InvalidEntry, match="must be 64 bytes"):
        _with(hop, **{which: b""})
    blank = _with(hop, **{which: ZERO_SIG})
    with pytest.raises(InvalidEntry, match=f"{which.split('_')[0]} signature does not verify"):
        verify_hop(chain.announcement, blank)


@pytest.mark.parametrize("which", ["seller", "buyer"])
def test_forged_signature_is_rejected(which: str) -> None:
    chain = make_chain(hops=1)
    hop = chain.hops[0]
    body = hop.body
    stranger = keys.sign(KEYS[9], hop_signed_bytes(body))  # right bytes, wrong key
    with pytest.raises(InvalidEntry, match=f"{which} signature does not verify"):
        verify_hop(chain.announcement, _with(hop, **{f"{which}_sig": stranger}))
    # The right key over a different deal (the price was raised after signing).
    other = dataclasses.replace(body, price=body.price + 1)
    stale = sign_hop(KEY_OF[getattr(body, which)], other)
    with pytest.raises(InvalidEntry, match=f"{which} signature does not verify"):
        verify_hop(chain.announcement, _with(hop, **{f"{which}_sig": stale}))


def test_a_signature_cannot_be_reflected_into_the_other_role() -> None:
    chain = make_chain(hops=1)
    hop = chain.hops[0]
    with pytest.raises(InvalidEntry, match="buyer signature"):
        verify_hop(chain.announcement, _with(hop, buyer_sig=hop.seller_sig))


def test_announcement_signature_and_domain_separation() -> None:
    ann = announce()
    verify_announcement(ann)
    forged = dataclasses.replace(ann, item="a better lamp")
    with pytest.raises(InvalidEntry, match="not signed by its seller"):
        verify_announcement(forged)
    # An announcement signature is useless as a hop signature and vice versa.
    hop = make_chain(hops=1).hops[0]
    assert not keys.verify(PK[0], hop.signed_bytes(), ann.signature)
    assert not keys.verify(PK[0], ann.signed_bytes(), hop.seller_sig)


def test_only_the_parties_may_sign_a_hop() -> None:
    body = make_chain(hops=1).hops[0].body
    with pytest.raises(InvalidEntry, match="only the hop's seller or buyer"):
        sign_hop(KEYS[7], body)


def _next(chain: Chain, **changes: object) -> SignedHop:
    body = dataclasses.replace(chain.next_body(PK[chain.length], 1000), **changes)
    return SignedHop(body=body, seller_sig=keys.sign(KEY_OF.get(body.seller, KEYS[9]), hop_signed_bytes(body)),
                     buyer_sig=keys.sign(KEY_OF.get(body.buyer, KEYS[9]), hop_signed_bytes(body)))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"hop": 5}, "cannot follow position 2"),
        ({"prev": "ab" * 32}, "prev does not name the entry before it"),
        ({"seller": PK[0]}, "seller is not the buyer of the previous hop"),
        ({"price": 199}, "below the reserve 0.0002"),
        ({"auction": "other"}, "belongs to auction 'other'"),
    ],
)
def test_chain_rules(changes: dict[str, object], reason: str) -> None:
    chain = make_chain(hops=2)  # node2 bought at 200
    verify_hop(chain.head, _next(chain))
    with pytest.raises(InvalidEntry, match=reason):
        verify_hop(chain.head, _next(chain, **changes))


def test_first_hop_is_sold_by_the_announcer_and_price_equal_to_reserve_is_fine() -> None:
    chain = make_chain(hops=0)
    with pytest.raises(InvalidEntry, match="seller is not the buyer"):
        verify_hop(chain.announcement, _next(chain, seller=PK[5]))
    verify_hop(chain.announcement, countersign(chain.next_body(PK[1], 0)))
    two = make_chain(hops=1, prices=[300])
    verify_hop(two.head, countersign(two.next_body(PK[2], 300)))


@pytest.mark.parametrize(
    "changes",
    [{"seller": "AB" * 32}, {"buyer": "zz" * 32}, {"prev": "ab" * 31}, {"price": -1}, {"price": 2**63},
     {"hop": 0}, {"hop": True}, {"price": 1.5}, {"auction": ""}, {"auction": "x" * 300}],
)
def test_malformed_bodies_cannot_exist(changes: dict[str, object]) -> None:
    hop = make_chain(hops=1).hops[0]
    with pytest.raises(InvalidEntry):
        _with(hop, body=dataclasses.replace(hop.body, **changes))


def test_seller_cannot_buy_from_itself() -> None:
    hop = make_chain(hops=1).hops[0]
    with pytest.raises(InvalidEntry, match="same key"):
        _with(hop, body=dataclasses.replace(hop.body, buyer=hop.body.seller))


def test_verify_chain_reports_the_position() -> None:
    chain = make_chain(hops=3)
    bad = Chain(chain.announcement, (chain.hops[0], _with(chain.hops[1], buyer_sig=ZERO_SIG), chain.hops[2]))
    with pytest.raises(InvalidEntry) as info:
        verify_chain(bad)
    assert info.value.position == 2


# ------------------------------------------------------------------ reserve


def test_check_reserve_accepts_the_honest_host() -> None:
    chain = make_chain(hops=3)  # node3 bought hop 3 at 300
    check_reserve(chain, PK[0], 1, 0, prev=chain.announcement.hash)
    check_reserve(chain, PK[2], 3, 200, prev=chain.hops[1].hash)
    check_reserve(chain, PK[3], 4, 300)


@pytest.mark.parametrize(
    ("host", "hop", "reserve", "reason"),
    [
        (3, 4, 250, "claims reserve 0.00025 but bought at 0.0003"),  # lies about the reserve
        (2, 4, 300, "did not buy the item in hop 3"),  # not the buyer
        (0, 1, 5, "claims reserve 0.000005 but bought at 0"),  # the seller's reserve is 0
        (4, 5, 300, "no signed entry for hop 4"),  # the entry does not exist
        (3, 0, 0, "does not exist"),
    ],
)
def test_check_reserve_catches_a_lying_host(host: int, hop: int, reserve: int, reason: str) -> None:
    chain = make_chain(hops=3)
    with pytest.raises(ReserveError, match=reason):
        check_reserve(chain, PK[host], hop, reserve)


def test_check_reserve_needs_signed_entries_and_the_right_prev() -> None:
    chain = make_chain(hops=3)
    unsigned = Chain(chain.announcement, (chain.hops[0], _with(chain.hops[1], seller_sig=ZERO_SIG), chain.hops[2]))
    with pytest.raises(ReserveError, match="does not verify"):
        check_reserve(unsigned, PK[3], 4, 300)
    with pytest.raises(ReserveError, match="prev does not name"):
        check_reserve(chain, PK[3], 4, 300, prev=chain.hops[1].hash)


# --------------------------------------------------------- keys and proofs


def test_signer_interface_accepts_seed_key_and_identity_like_objects() -> None:
    seed = b"\x07" * 32
    sk = SigningKey(seed)

    class Identity:
        public_hex = sk.verify_key.encode().hex()

        def sign(self, data: bytes) -> bytes:
            return bytes(sk.sign(data).signature)

    msg = b"hello"
    sigs = {keys.sign(seed, msg), keys.sign(sk, msg), keys.sign(Identity(), msg)}
    assert len(sigs) == 1
    assert {keys.public_hex(seed), keys.public_hex(sk), keys.public_hex(Identity())} == {Identity.public_hex}
    sig = sigs.pop()
    assert keys.verify(Identity.public_hex, msg, sig)
    assert keys.verify(sk.verify_key, msg, sig)
    assert not keys.verify(Identity.public_hex.upper(), msg, sig)
    assert not keys.verify(b"\x00" * 5, msg, sig)
    assert not keys.verify(Identity.public_hex, msg, sig[:63])


def test_fraud_proof_names_the_double_signer() -> None:
    chain = make_chain(hops=2)
    hop2 = chain.hops[1]
    # node1 (seller of hop 2) also signed a sale of the same hop to node7.
    twin = countersign(dataclasses.replace(hop2.body, buyer=PK[7], price=250))
    assert find_culprits(hop2, twin) == {PK[1]}
    assert verify_fraud_proof(FraudProof(hop2, twin)) == {PK[1]}
    # The same buyer signed a lower price with the same seller: both are culprits.
    cheaper = countersign(dataclasses.replace(hop2.body, price=150))
    assert find_culprits(hop2, cheaper) == {PK[1], PK[2]}
    # Unsigned or identical entries prove nothing.
    with pytest.raises(InvalidEntry, match="not a fraud proof"):
        verify_fraud_proof(FraudProof(hop2, _with(twin, seller_sig=ZERO_SIG)))
    with pytest.raises(InvalidEntry, match="not a fraud proof"):
        verify_fraud_proof(FraudProof(hop2, hop2))
    ann = chain.announcement
    ann2 = Announcement.create(KEYS[0], auction="a1", item="lamp", created_at_ms=ann.created_at_ms + 1)
    assert ann2.hash == ann.hash and ann2.digest != ann.digest
    assert verify_fraud_proof(FraudProof(ann, ann2)) == {PK[0]}


def test_next_body_rejects_nonsense() -> None:
    with pytest.raises(InvalidEntry):
        make_chain(hops=1).next_body("not a key", 5)
    assert isinstance(make_chain(hops=1).next_body(PK[4], 5), HopEntry)
