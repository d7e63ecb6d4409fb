"""The restricted-dissemination core (peer.ledger.pseudonymous): sealed hops under one-time keys."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from peer.ledger.entries import InvalidEntry, SignedHop, sign_hop
from peer.ledger.pseudonymous import (
    BindingOpening,
    SealedHop,
    hop_salt,
    make_binding,
    one_time_key,
    open_binding,
    open_hop,
    seal,
    seal_chain,
    verify_sealed_chain,
)
from peer.ledger.pseudonymous_wire import (
    decode_sealed,
    encode_sealed,
    find_sealed_fork,
    name_culprit,
    sign_settlement,
    verify_sealed_fork,
    verify_settlement,
)
from peer.net.identity import Identity
from peer.sra.ledger_entry import HopEntry

from ._helpers import KEY_OF, KEYS, PK, countersign, make_chain


def _pub(key: SigningKey) -> str:
    return key.verify_key.encode().hex()


def test_an_honest_chain_seals_verifies_and_opens_hop_by_hop() -> None:
    chain = make_chain("a1", hops=4, prices=[10, 25, 25, 70])
    sc = seal_chain(chain, KEY_OF)
    verify_sealed_chain(sc.announcement, sc.sealed)
    for k, (sealed, hop, salt, binding) in enumerate(
            zip(sc.sealed, chain.hops, sc.salts, sc.bindings, strict=True), start=1):
        # The replicated form names nobody but the hop-1 seller (who announced) and no price.
        if k > 1:
            assert sealed.seller_key not in PK
        assert sealed.buyer_key not in PK
        wire = encode_sealed(sealed)
        assert hop.body.buyer.encode() not in wire and bytes.fromhex(hop.body.buyer) not in wire
        assert decode_sealed(wire) == sealed
        # The counterparty opens both commitments: the entry with its price, and who the buyer is.
        assert open_hop(sealed, hop, salt) == hop
        assert open_binding(sealed.buyer_binding, sealed.buyer_key, "a1", binding) == hop.body.buyer
    # Key chaining: the buyer key of hop k sells hop k + 1.
    assert [s.seller_key for s in sc.sealed[1:]] == [s.buyer_key for s in sc.sealed[:-1]]
    assert sc.sealed[0].seller_key == PK[0]
    head_holder = KEY_OF[chain.hops[-1].body.buyer]
    sig = sign_settlement(head_holder, sc.announcement, sc.sealed)
    assert verify_settlement(sc.announcement, sc.sealed, sig)
    # A previous holder cannot settle the auction at a shorter chain's head's place.
    assert not verify_settlement(sc.announcement, sc.sealed,
                                 sign_settlement(KEY_OF[chain.hops[-2].body.buyer], sc.announcement, sc.sealed))


def test_derivation_is_deterministic_and_works_with_a_node_identity() -> None:
    ident = Identity.from_seed(hashlib.sha256(b"pseudo-node").digest())
    raw = SigningKey(hashlib.sha256(b"pseudo-node").digest())
    assert _pub(one_time_key(ident, "a1")) == _pub(one_time_key(raw, "a1")) == _pub(one_time_key(ident, "a1"))
    assert _pub(one_time_key(ident, "a1")) != _pub(one_time_key(ident, "a2"))
    assert make_binding(ident, "a1") == make_binding(raw, "a1")


@pytest.mark.parametrize("field", ["commitment", "prev", "buyer_binding", "seller_key", "buyer_key"])
def test_a_tampered_field_is_refused(field: str) -> None:
    sc = seal_chain(make_chain("a1", hops=3), KEY_OF)
    bad = dataclasses.replace(sc.sealed[1], **{field: hashlib.sha256(b"x").hexdigest()})
    with pytest.raises(InvalidEntry) as exc:
        verify_sealed_chain(sc.announcement, (sc.sealed[0], bad, sc.sealed[2]))
    assert exc.value.position == 2


@pytest.mark.parametrize("which", ["seller_sig", "buyer_sig"])
def test_a_flipped_signature_bit_is_refused(which: str) -> None:
    sc = seal_chain(make_chain("a1", hops=2), KEY_OF)
    sig = bytearray(getattr(sc.sealed[1], which))
    sig[5] ^= 1
    with pytest.raises(InvalidEntry, match="signature does not verify"):
        verify_sealed_chain(sc.announcement, (sc.sealed[0], dataclasses.replace(sc.sealed[1], **{which: bytes(sig)})))


def test_order_and_links_are_checked() -> None:
    sc = seal_chain(make_chain("a1", hops=3), KEY_OF)
    with pytest.raises(InvalidEntry, match="position 1"):
        verify_sealed_chain(sc.announcement, sc.sealed[1:])
    with pytest.raises(InvalidEntry, match="at position 2"):
        verify_sealed_chain(sc.announcement, (sc.sealed[0], sc.sealed[2], sc.sealed[1]))
    # Hop 2 validly signed by its parties but chained to the genesis instead of hop 1.
    chain = make_chain("a1", hops=3)
    h2 = chain.hops[1]
    skipped = seal(h2, sc.salts[1], prev=sc.announcement.hash, seller=KEY_OF[h2.body.seller],
                   buyer=KEY_OF[h2.body.buyer], buyer_binding=sc.sealed[1].buyer_binding)
    assert skipped.seller_sig_ok() and skipped.buyer_sig_ok()
    with pytest.raises(InvalidEntry, match="prev does not name"):
        verify_sealed_chain(sc.announcement, (sc.sealed[0], skipped))
    other = seal_chain(make_chain("a2", hops=1), KEY_OF)
    with pytest.raises(InvalidEntry, match="auction"):
        verify_sealed_chain(sc.announcement, other.sealed)


def test_a_resigned_link_with_a_stranger_key_is_refused() -> None:
    # Someone re-signs hop 2 under its own key as seller: both signatures verify, the key chain does not.
    chain = make_chain("a1", hops=2)
    sc = seal_chain(chain, KEY_OF)
    stranger = KEYS[9]
    s2 = sc.sealed[1]
    forged_seller = one_time_key(stranger, "a1")
    fields = dict(auction="a1", hop=2, prev=s2.prev, commitment=s2.commitment, seller_key=_pub(forged_seller),
                  buyer_key=s2.buyer_key, buyer_binding=s2.buyer_binding)
    probe = SealedHop(**fields, seller_sig=bytes(64), buyer_sig=bytes(64))
    forged = SealedHop(**fields, seller_sig=bytes(forged_seller.sign(probe.signed_bytes()).signature),
                       buyer_sig=bytes(one_time_key(KEY_OF[chain.hops[1].body.buyer], "a1")
                                       .sign(probe.signed_bytes()).signature))
    assert forged.seller_sig_ok() and forged.buyer_sig_ok()
    with pytest.raises(InvalidEntry, match="seller key is not the buyer key"):
        verify_sealed_chain(sc.announcement, (sc.sealed[0], forged))


def test_a_wrong_entry_or_salt_does_not_open_the_commitment() -> None:
    chain = make_chain("a1", hops=2, prices=[10, 30])
    sc = seal_chain(chain, KEY_OF)
    hop2 = chain.hops[1]
    open_hop(sc.sealed[1], hop2, sc.salts[1])
    cheaper = countersign(dataclasses.replace(hop2.body, price=20))
    with pytest.raises(InvalidEntry, match="do not open"):
        open_hop(sc.sealed[1], cheaper, sc.salts[1])
    with pytest.raises(InvalidEntry, match="do not open"):
        open_hop(sc.sealed[1], hop2, bytes(32))
    # The commitment covers the identity signatures too: a half-signed entry opens nothing.
    with pytest.raises(InvalidEntry, match="do not open"):
        open_hop(sc.sealed[1], dataclasses.replace(hop2, buyer_sig=hop2.seller_sig), sc.salts[1])


def _forked_hop2() -> tuple:
    """Node 1 (holder after hop 1) sells hop 2 twice: to node 2 and to node 5."""
    chain = make_chain("a1", hops=2, prices=[10, 30])
    sc = seal_chain(chain, KEY_OF)
    body = dataclasses.replace(chain.hops[1].body, buyer=PK[5], price=40)
    other = countersign(body)
    seller, buyer = KEY_OF[PK[1]], KEY_OF[PK[5]]
    twin = seal(other, hop_salt(seller, other), prev=sc.sealed[0].hash, seller=seller, buyer=buyer,
                buyer_binding=make_binding(buyer, "a1").commitment)
    verify_sealed_chain(sc.announcement, (sc.sealed[0], twin))  # each branch is valid on its own
    return chain, sc, twin


def test_a_fork_proof_is_checked_by_a_third_party_and_named_by_the_opening_holder() -> None:
    chain, sc, twin = _forked_hop2()
    proof = find_sealed_fork(sc.sealed[1], twin)
    assert proof is not None
    # A third party needs nothing but the two sealed hops: the culprit is hop 2's seller key.
    assert verify_sealed_fork(proof) == {sc.sealed[1].seller_key}
    assert sc.sealed[1].seller_key == sc.sealed[0].buyer_key
    # Node 0 sold hop 1 to the culprit key and holds its binding opening: it names node 1.
    assert name_culprit(proof, sc.announcement, sc.sealed[0], sc.bindings[0]) == PK[1]
    # Another key's opening does not name anyone.
    with pytest.raises(InvalidEntry):
        name_culprit(proof, sc.announcement, sc.sealed[0], sc.bindings[1])


def test_a_hop1_fork_names_the_announcing_seller_and_non_forks_prove_nothing() -> None:
    chain = make_chain("a1", hops=1, prices=[10])
    sc = seal_chain(chain, KEY_OF)
    other = countersign(dataclasses.replace(chain.hops[0].body, buyer=PK[7]))
    twin = seal(other, bytes(32), prev=sc.announcement.hash, seller=KEY_OF[PK[0]], buyer=KEY_OF[PK[7]],
                buyer_binding=make_binding(KEY_OF[PK[7]], "a1").commitment)
    proof = find_sealed_fork(sc.sealed[0], twin)
    assert proof is not None and name_culprit(proof, sc.announcement, None, None) == PK[0]
    assert find_sealed_fork(sc.sealed[0], sc.sealed[0]) is None  # the same hop twice
    longer = seal_chain(make_chain("a1", hops=2), KEY_OF)
    assert find_sealed_fork(longer.sealed[0], longer.sealed[1]) is None  # different positions
    unsigned = dataclasses.replace(twin, seller_sig=bytes(64), buyer_sig=bytes(64))
    with pytest.raises(InvalidEntry, match="not a fork proof"):
        verify_sealed_fork(type(proof)(sc.sealed[0], unsigned))


def test_the_opening_binds_to_exactly_one_identity() -> None:
    sc = seal_chain(make_chain("a1", hops=2), KEY_OF)
    sealed, opening = sc.sealed[0], sc.bindings[0]
    assert open_binding(sealed.buyer_binding, sealed.buyer_key, "a1", opening) == PK[1]
    # Claiming another identity: the commitment no longer matches.
    for i in (0, 2, 3):
        with pytest.raises(InvalidEntry, match="does not match"):
            open_binding(sealed.buyer_binding, sealed.buyer_key, "a1",
                         dataclasses.replace(opening, identity=PK[i]))
    # Framing: a key holder commits to someone else's identity but cannot make that identity's link signature.
    framed = BindingOpening(auction="a1", identity=PK[3], one_time=sealed.buyer_key, salt=bytes(32),
                            link_sig=opening.link_sig)
    with pytest.raises(InvalidEntry, match="did not sign the link"):
        open_binding(framed.commitment, sealed.buyer_key, "a1", framed)
    # The opening is for one key in one auction.
    with pytest.raises(InvalidEntry, match="another key"):
        open_binding(sealed.buyer_binding, sc.sealed[1].buyer_key, "a1", opening)


def test_only_the_hops_parties_can_seal_it() -> None:
    chain = make_chain("a1", hops=1)
    with pytest.raises(InvalidEntry, match="own seller and buyer"):
        seal(chain.hops[0], bytes(32), prev=chain.announcement.hash, seller=KEYS[4], buyer=KEY_OF[PK[1]],
             buyer_binding=bytes(32).hex())
    assert sign_hop(KEYS[0], chain.hops[0].body) == chain.hops[0].seller_sig  # the entry inside is the usual one


@settings(max_examples=40, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32),
       auctions=st.lists(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12),
                         min_size=2, max_size=6, unique=True))
def test_one_identity_in_different_auctions_shares_no_key(seed: bytes, auctions: list[str]) -> None:
    """Unlinkability by key: nothing one identity publishes in two auctions' sealed hops is equal."""
    ident = SigningKey(seed)
    signers = {**KEY_OF, _pub(ident): ident}
    published: list[set[str]] = []
    for auction in auctions:
        # `ident` buys hop 2 from node 1, then resells hop 3 to node 3: it appears as buyer and as seller.
        chain = make_chain(auction, hops=1)
        chain = chain.appended(_countersign(chain.next_body(_pub(ident), 5), signers))
        chain = chain.appended(_countersign(chain.next_body(PK[3], 9), signers))
        sc = seal_chain(chain, signers)
        verify_sealed_chain(sc.announcement, sc.sealed)
        mine = {sc.sealed[1].buyer_key, sc.sealed[1].buyer_binding, sc.sealed[2].seller_key}
        assert _pub(ident) not in mine | {sc.sealed[2].buyer_key}
        published.append(mine)
    for i, a in enumerate(published):
        for b in published[i + 1:]:
            assert not a & b


def _countersign(body: HopEntry, signers: dict[str, SigningKey]) -> SignedHop:
    return SignedHop(body=body, seller_sig=sign_hop(signers[body.seller], body),
                     buyer_sig=sign_hop(signers[body.buyer], body))


def test_an_outside_node_learns_no_identity_beyond_the_seller_from_the_sealed_chains() -> None:
    from peer.experiments.privacy import _Identities, measure, sealed_view
    from peer.scenario.model import explicit_scenario

    # s sells to a; a resells to b; b resells to c: the current ledger publishes 3 edges to everyone.
    edges = [("s", "a"), ("a", "b"), ("a", "x"), ("b", "c"), ("b", "y")]
    values = {"s": 0, "a": 0, "x": 1, "b": 2, "y": 3, "c": 9}
    row = measure(explicit_scenario(edges, values, seller="s", name="chain"), 3, fresh=False)
    assert row.ledger_edges[1] == 3
    assert row.sealed_hops == 9  # three auctions of three hops, all sealed and verified
    assert (row.sealed_identities, row.sealed_edges, row.sealed_linked_keys) == (0, 0, 0)
    # The counting does see an identity when one is published: hop 1's seller key is the seller's.
    ids = _Identities()
    ann, published = sealed_view("t", [("s", "a", 1), ("a", "b", 2)], "s", ids)
    assert published[0] == ann.seller == ids["s"].verify_key.encode().hex()
    assert published[1] == published[2] and ids["a"].verify_key.encode().hex() not in published


def test_the_codec_refuses_what_is_not_a_sealed_hop() -> None:
    wire = encode_sealed(seal_chain(make_chain("a1", hops=1), KEY_OF).sealed[0])
    for bad in (wire[:-1], wire[:40], b"\x93\xa3hop\x01\x02", wire.replace(b"sealed", b"sealeD")):
        with pytest.raises(InvalidEntry):
            decode_sealed(bad)
