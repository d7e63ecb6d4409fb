"""The sealed chain's proofs and wire form: fork proofs, the settlement, the codec.

Split from :mod:`peer.ledger.pseudonymous` (the keys, bindings and sealed
hops) for length only.  A fork under one-time keys is proved by anyone from
the two sealed hops; naming the person behind the key is a second step that
only the holder of the binding opening can take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
from msgspec import Meta

from peer.ledger import keys as _keys
from peer.ledger.entries import MAX_HOP, MAX_ID_BYTES, Announcement, InvalidEntry
from peer.ledger.keys import SignerLike
from peer.ledger.pseudonymous import (
    DOMAIN_SETTLED,
    BindingOpening,
    SealedHop,
    open_binding,
    seller_signing_key,
)


def _lp(raw: bytes) -> bytes:
    return len(raw).to_bytes(4, "big") + raw


# ----------------------------------------------------------- fork proofs


@dataclass(frozen=True, slots=True)
class SealedForkProof:
    """Two different sealed hops at one position of one auction, both signed by one key.  Self-verifying."""

    first: SealedHop
    second: SealedHop


def sealed_culprits(a: SealedHop, b: SealedHop) -> frozenset[str]:
    """One-time keys that validly signed two different sealed hops at one position (mirrors ``find_culprits``)."""
    if a.auction != b.auction or a.hop != b.hop or a.hash == b.hash:
        return frozenset()
    sa = {k for k, ok in ((a.seller_key, a.seller_sig_ok()), (a.buyer_key, a.buyer_sig_ok())) if ok}
    sb = {k for k, ok in ((b.seller_key, b.seller_sig_ok()), (b.buyer_key, b.buyer_sig_ok())) if ok}
    return frozenset(sa & sb)


def find_sealed_fork(a: SealedHop, b: SealedHop) -> SealedForkProof | None:
    return SealedForkProof(a, b) if sealed_culprits(a, b) else None


def verify_sealed_fork(proof: SealedForkProof) -> frozenset[str]:
    """The culprit keys; ``InvalidEntry`` if the proof proves nothing."""
    culprits = sealed_culprits(proof.first, proof.second)
    if not culprits:
        raise InvalidEntry("not a fork proof: no key signed two different sealed hops here", proof.first.hop)
    return culprits


def name_culprit(proof: SealedForkProof, announcement: Announcement, bought: SealedHop | None,
                 opening: BindingOpening | None) -> str:
    """The identity behind a fork's seller key: the second step, by whoever holds the opening.

    For hop 1 the seller key is the announcement's seller.  Later, the key
    bought the item in ``bought`` (hop k - 1), whose ``buyer_binding`` the
    counterparty of that hop can open.
    """
    culprits = verify_sealed_fork(proof)
    key, auction = proof.first.seller_key, proof.first.auction
    if key not in culprits:
        raise InvalidEntry("the seller did not sign both sides of this fork", proof.first.hop)
    if proof.first.hop == 1:
        if announcement.auction != auction or key != announcement.seller:
            raise InvalidEntry("hop 1's seller is not this announcement's seller", 1)
        return key
    if bought is None or opening is None:
        raise InvalidEntry("naming a later seller needs the hop it bought in and the binding opening")
    if (bought.auction, bought.hop, bought.buyer_key) != (auction, proof.first.hop - 1, key):
        raise InvalidEntry("that hop is not where the culprit key bought the item")
    if not bought.buyer_sig_ok():
        raise InvalidEntry("the culprit key did not sign the hop it bought in")
    return open_binding(bought.buyer_binding, key, auction, opening)


# ------------------------------------------------------------- settlement


def settled_bytes(auction: str, hops: int, head: str) -> bytes:
    return _lp(DOMAIN_SETTLED) + _lp(auction.encode()) + hops.to_bytes(8, "big") + bytes.fromhex(head)


def sign_settlement(winner: SignerLike, announcement: Announcement, sealed: tuple[SealedHop, ...]) -> bytes:
    """The final holder's signature that the auction ended at the sealed head (its one-time key)."""
    key = seller_signing_key(winner, announcement.auction, len(sealed) + 1)
    head = sealed[-1].hash if sealed else announcement.hash
    return _keys.sign(key, settled_bytes(announcement.auction, len(sealed), head))


def verify_settlement(announcement: Announcement, sealed: tuple[SealedHop, ...], sig: bytes) -> bool:
    """True iff ``sig`` is the chain head's holder's (the last buyer key, or the seller with no hop)."""
    holder = sealed[-1].buyer_key if sealed else announcement.seller
    head = sealed[-1].hash if sealed else announcement.hash
    return _keys.verify(holder, settled_bytes(announcement.auction, len(sealed), head), sig)


# ------------------------------------------------------------------ codec

Key = Annotated[bytes, Meta(min_length=32, max_length=32)]
Sig = Annotated[bytes, Meta(min_length=64, max_length=64)]


class SealedHopMsg(msgspec.Struct, tag="sealed", array_like=True, frozen=True, forbid_unknown_fields=True):
    """Same codec conventions as ``peer.ledger.codec`` (so byte counts compare like with like)."""

    auction: Annotated[str, Meta(min_length=1, max_length=MAX_ID_BYTES)]
    hop: Annotated[int, Meta(ge=1, le=MAX_HOP)]
    prev: Key
    commitment: Key
    seller_key: Key
    buyer_key: Key
    buyer_binding: Key
    seller_sig: Sig
    buyer_sig: Sig


_decoder = msgspec.msgpack.Decoder(SealedHopMsg)


def encode_sealed(hop: SealedHop) -> bytes:
    return msgspec.msgpack.encode(SealedHopMsg(
        hop.auction, hop.hop, bytes.fromhex(hop.prev), bytes.fromhex(hop.commitment),
        bytes.fromhex(hop.seller_key), bytes.fromhex(hop.buyer_key), bytes.fromhex(hop.buyer_binding),
        hop.seller_sig, hop.buyer_sig))


def decode_sealed(data: bytes) -> SealedHop:
    try:
        m = _decoder.decode(data)
    except (msgspec.MsgspecError, ValueError) as exc:
        raise InvalidEntry(f"not a sealed hop: {exc}") from None
    return SealedHop(auction=m.auction, hop=m.hop, prev=m.prev.hex(), commitment=m.commitment.hex(),
                     seller_key=m.seller_key.hex(), buyer_key=m.buyer_key.hex(),
                     buyer_binding=m.buyer_binding.hex(), seller_sig=m.seller_sig, buyer_sig=m.buyer_sig)
