"""Restricted dissemination: a replicated chain of salted commitments under one-time keys.

The current ledger replicates every hop entry (seller, buyer, price) to every
node, and each one is a graph edge (docs/privacy.md).  This module is the core
of the mode that docs/privacy.md designs: what is replicated to everyone is a
:class:`SealedHop`, which carries

* ``commitment`` c_k = H(domain ‖ the countersigned entry ‖ r_k): names and the
  price stay inside, and the 32-byte salt r_k keeps a guess of "who sold to
  whom at what price" (a small space) from being checked against it;
* the seller's and the buyer's **one-time keys** for this auction, and both
  their signatures over the sealed form;
* ``buyer_binding``: a hash commitment to the buyer's identity, opened only to
  its counterparty (a neighbour, who knows who it is anyway).

Everyone can check the structure: signatures under the one-time keys, order,
``prev`` links, and that the buyer key of hop k sells hop k + 1.  A fork (a key
that signed two different sealed hops at one position) is a self-contained
proof under one-time keys; naming the person behind the key takes the binding
opening, which the counterparty of the hop where that key bought holds.

One-time keys are derived, not stored: seed = H(domain ‖ sig), where sig is
the identity's Ed25519 signature over (domain, auction).  Ed25519 signatures
are deterministic (RFC 8032), so a node rebuilds its key for an auction from
its identity alone, and nobody without the identity secret can compute it.
The derivation signature is secret material: its domain is used for nothing
else, so no protocol message ever carries it.

Hop 1's seller key is the seller's identity key: the announcement names her
anyway, and it is the only way a third party can tie the sealed chain to the
genesis without an opening.  Not wired into the node (see docs/privacy.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from nacl.signing import SigningKey

from peer.ledger import keys as _keys
from peer.ledger.entries import (
    MAX_HOP,
    Announcement,
    Chain,
    InvalidEntry,
    SignedHop,
    validate_auction,
)
from peer.ledger.keys import SIGNATURE_BYTES, SignerLike, is_public_hex, public_hex

# Each domain is used for exactly one kind of bytes: the derivation signature
# in particular must never be producible by any other signing path of the node.
DOMAIN_DERIVE = b"peer/ledger/pseudo/v1/derive-one-time-key"
DOMAIN_SEED = b"peer/ledger/pseudo/v1/seed"
DOMAIN_BINDING_SALT = b"peer/ledger/pseudo/v1/binding-salt"
DOMAIN_HOP_SALT = b"peer/ledger/pseudo/v1/hop-salt"
DOMAIN_LINK = b"peer/ledger/pseudo/v1/link"
DOMAIN_BINDING = b"peer/ledger/pseudo/v1/binding"
DOMAIN_COMMIT = b"peer/ledger/pseudo/v1/commit"
DOMAIN_SEALED = b"peer/ledger/pseudo/v1/sealed-hop"
DOMAIN_SETTLED = b"peer/ledger/pseudo/v1/settled"

SALT_BYTES = 32


def _lp(raw: bytes) -> bytes:
    return len(raw).to_bytes(4, "big") + raw


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _derivation_sig(identity: SignerLike, auction: str) -> bytes:
    validate_auction(auction)
    return _keys.sign(identity, _lp(DOMAIN_DERIVE) + _lp(auction.encode()))


def one_time_key(identity: SignerLike, auction: str) -> SigningKey:
    """``identity``'s signing key for ``auction``: deterministic, unlinkable without the identity secret."""
    return SigningKey(_sha(_lp(DOMAIN_SEED) + _derivation_sig(identity, auction)))


def binding_salt(identity: SignerLike, auction: str) -> bytes:
    """The salt of ``identity``'s binding in ``auction``, derived so the node stores nothing extra.

    It comes from the same secret signature through a different domain, so it
    is unguessable and independent of the one-time key's seed.
    """
    return _sha(_lp(DOMAIN_BINDING_SALT) + _derivation_sig(identity, auction))


def hop_salt(seller_identity: SignerLike, hop: SignedHop) -> bytes:
    """r_k for ``hop``, derived by its seller (who builds the sealed form) from its identity secret."""
    return _sha(_lp(DOMAIN_HOP_SALT) + _derivation_sig(seller_identity, hop.auction) + _sha(hop.signed_bytes()))


def _check_hex(value: object, name: str) -> None:
    if not is_public_hex(value):
        raise InvalidEntry(f"{name} must be 64 lowercase hex chars")


def _check_sig(value: object, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != SIGNATURE_BYTES:
        raise InvalidEntry(f"{name} must be {SIGNATURE_BYTES} bytes")


def _check_salt(value: object, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != SALT_BYTES:
        raise InvalidEntry(f"{name} must be {SALT_BYTES} bytes")


# ------------------------------------------------------------------ binding


def link_bytes(auction: str, one_time: str) -> bytes:
    """What an identity signs to say "``one_time`` is my key in ``auction``"."""
    return _lp(DOMAIN_LINK) + _lp(auction.encode()) + bytes.fromhex(one_time)


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingOpening:
    """Given only to the counterparty: who is behind ``one_time`` in ``auction``.

    ``link_sig`` is the identity's signature over :func:`link_bytes`: without
    it, a key holder could commit to someone else's identity and frame it.
    The published commitment is what stops the holder from later naming a
    different identity: together they bind the key to exactly one identity.
    """

    auction: str
    identity: str  # public key, hex
    one_time: str  # public key, hex
    salt: bytes
    link_sig: bytes

    def __post_init__(self) -> None:
        validate_auction(self.auction)
        _check_hex(self.identity, "identity")
        _check_hex(self.one_time, "one_time")
        _check_salt(self.salt, "salt")
        _check_sig(self.link_sig, "link_sig")

    @property
    def commitment(self) -> str:
        return _sha(_lp(DOMAIN_BINDING) + _lp(self.auction.encode()) + bytes.fromhex(self.identity)
                    + bytes.fromhex(self.one_time) + self.salt).hex()


def make_binding(identity: SignerLike, auction: str) -> BindingOpening:
    """``identity``'s opening for its one-time key in ``auction`` (publish only ``.commitment``)."""
    one_time = one_time_key(identity, auction).verify_key.encode().hex()
    return BindingOpening(auction=auction, identity=public_hex(identity), one_time=one_time,
                          salt=binding_salt(identity, auction),
                          link_sig=_keys.sign(identity, link_bytes(auction, one_time)))


def open_binding(commitment: str, one_time: str, auction: str, opening: BindingOpening) -> str:
    """The identity behind ``one_time`` in ``auction``; ``InvalidEntry`` unless ``opening`` proves it."""
    if (opening.auction, opening.one_time) != (auction, one_time):
        raise InvalidEntry("the opening is for another key or auction")
    if opening.commitment != commitment:
        raise InvalidEntry("the opening does not match the published binding")
    if not _keys.verify(opening.identity, link_bytes(auction, one_time), opening.link_sig):
        raise InvalidEntry("the identity did not sign the link to this key")
    return opening.identity


# ------------------------------------------------------------- sealed hops


def commit_hop(hop: SignedHop, salt: bytes) -> str:
    """c_k: binds the whole countersigned entry (names, price, prev and both identity signatures)."""
    _check_salt(salt, "salt")
    return _sha(_lp(DOMAIN_COMMIT) + _lp(hop.signed_bytes()) + hop.seller_sig + hop.buyer_sig + salt).hex()


@dataclass(frozen=True, slots=True, kw_only=True)
class SealedHop:
    """The replicated form of hop ``hop``: structure and commitments, no names, no price."""

    auction: str
    hop: int
    prev: str  # hash of the sealed hop before (hop 1: the announcement's chain hash)
    commitment: str  # c_k
    seller_key: str  # one-time key (hop 1: the seller's identity)
    buyer_key: str  # one-time key
    buyer_binding: str  # commitment to the buyer's identity, see BindingOpening
    seller_sig: bytes
    buyer_sig: bytes

    def __post_init__(self) -> None:
        validate_auction(self.auction)
        if not isinstance(self.hop, int) or isinstance(self.hop, bool) or not 1 <= self.hop <= MAX_HOP:
            raise InvalidEntry(f"hop must be an integer in 1..{MAX_HOP}")
        for name in ("prev", "commitment", "seller_key", "buyer_key", "buyer_binding"):
            _check_hex(getattr(self, name), name)
        if self.seller_key == self.buyer_key:
            raise InvalidEntry("seller and buyer keys are the same", self.hop)
        _check_sig(self.seller_sig, "seller_sig")
        _check_sig(self.buyer_sig, "buyer_sig")

    @property
    def position(self) -> int:
        return self.hop

    def signed_bytes(self) -> bytes:
        return sealed_signed_bytes(self.auction, self.hop, self.prev, self.commitment, self.seller_key,
                                   self.buyer_key, self.buyer_binding)

    @property
    def hash(self) -> str:
        """The chain link and the identity of the sealed hop (signatures are attestations, not content)."""
        return _sha(self.signed_bytes()).hex()

    def seller_sig_ok(self) -> bool:
        return _keys.verify(self.seller_key, self.signed_bytes(), self.seller_sig)

    def buyer_sig_ok(self) -> bool:
        return _keys.verify(self.buyer_key, self.signed_bytes(), self.buyer_sig)


def sealed_signed_bytes(auction: str, hop: int, prev: str, commitment: str, seller_key: str, buyer_key: str,
                        buyer_binding: str) -> bytes:
    return (_lp(DOMAIN_SEALED) + _lp(auction.encode()) + hop.to_bytes(8, "big") + bytes.fromhex(prev)
            + bytes.fromhex(commitment) + bytes.fromhex(seller_key) + bytes.fromhex(buyer_key)
            + bytes.fromhex(buyer_binding))


def seller_signing_key(identity: SignerLike, auction: str, hop: int) -> SignerLike:
    """The key a seller signs hop ``hop`` with: its identity for hop 1, its one-time key after."""
    return identity if hop == 1 else one_time_key(identity, auction)


def seal(hop: SignedHop, salt: bytes, *, prev: str, seller: SignerLike, buyer: SignerLike,
         buyer_binding: str) -> SealedHop:
    """The replicated form of ``hop``, signed by both parties under their keys for this auction.

    ``seller``/``buyer`` are the parties' identities (in a node each signs its
    own half; here both, as the tests and the bench play both parties).
    ``prev`` is the sealed chain's head before this hop.
    """
    if public_hex(seller) != hop.body.seller or public_hex(buyer) != hop.body.buyer:
        raise InvalidEntry("seal with the hop's own seller and buyer", hop.body.hop)
    auction, k = hop.auction, hop.body.hop
    skey = seller_signing_key(seller, auction, k)
    bkey = one_time_key(buyer, auction)
    spub, bpub = public_hex(skey), public_hex(bkey)
    data = sealed_signed_bytes(auction, k, prev, commit_hop(hop, salt), spub, bpub, buyer_binding)
    return SealedHop(auction=auction, hop=k, prev=prev, commitment=commit_hop(hop, salt), seller_key=spub,
                     buyer_key=bpub, buyer_binding=buyer_binding, seller_sig=_keys.sign(skey, data),
                     buyer_sig=_keys.sign(bkey, data))


@dataclass(frozen=True, slots=True)
class SealedChain:
    """A chain sealed by its parties: ``sealed`` is replicated; ``salts`` and ``bindings`` are not.

    ``salts[k - 1]`` (r_k) goes with the entry to hop k's parties and, through
    the Open, to hop k + 1's participants; ``bindings[k - 1]`` (the buyer of
    hop k's opening) goes only to hop k's seller.
    """

    announcement: Announcement
    sealed: tuple[SealedHop, ...]
    salts: tuple[bytes, ...]
    bindings: tuple[BindingOpening, ...]


def seal_chain(chain: Chain, signer_of: Mapping[str, SignerLike]) -> SealedChain:
    """Seal every hop of ``chain`` as its parties would, one after the other.

    ``signer_of`` maps a public key (hex) to that party's identity.
    """
    prev, sealed, salts, bindings = chain.announcement.hash, [], [], []
    for hop in chain.hops:
        seller, buyer = signer_of[hop.body.seller], signer_of[hop.body.buyer]
        salt, binding = hop_salt(seller, hop), make_binding(buyer, hop.auction)
        s = seal(hop, salt, prev=prev, seller=seller, buyer=buyer, buyer_binding=binding.commitment)
        sealed.append(s)
        salts.append(salt)
        bindings.append(binding)
        prev = s.hash
    return SealedChain(chain.announcement, tuple(sealed), tuple(salts), tuple(bindings))


def verify_sealed_hop(announcement: Announcement, prev: SealedHop | None, hop: SealedHop) -> None:
    """Check that ``hop`` may follow ``prev`` (``None``: the genesis).  ``prev`` is trusted.

    What any node checks, knowing no name beyond the seller's and no price.
    Not checkable here, by design: that the price is at least the reserve
    (the next hop's participants check it when the Open's entry opens ``prev``),
    or who any buyer is.
    """
    k = 1 if prev is None else prev.hop + 1
    prev_hash, holder = (announcement.hash, announcement.seller) if prev is None else (prev.hash, prev.buyer_key)
    if hop.auction != announcement.auction:
        raise InvalidEntry(f"sealed hop belongs to auction {hop.auction!r}", k)
    if hop.hop != k:
        raise InvalidEntry(f"sealed hop {hop.hop} at position {k}", k)
    if hop.prev != prev_hash:
        raise InvalidEntry("prev does not name the sealed hop before it", k)
    if hop.seller_key != holder:
        raise InvalidEntry("seller key is not the buyer key of the previous hop", k)
    if not hop.seller_sig_ok():
        raise InvalidEntry("seller signature does not verify", k)
    if not hop.buyer_sig_ok():
        raise InvalidEntry("buyer signature does not verify", k)


def verify_sealed_chain(announcement: Announcement, sealed: tuple[SealedHop, ...] | list[SealedHop]) -> None:
    """Re-verify a sealed chain from its signed announcement; ``InvalidEntry`` at the first problem."""
    if not announcement.signature_ok():
        raise InvalidEntry("announcement is not signed by its seller", 0)
    prev: SealedHop | None = None
    for hop in sealed:
        verify_sealed_hop(announcement, prev, hop)
        prev = hop


def open_hop(sealed: SealedHop, hop: SignedHop, salt: bytes) -> SignedHop:
    """A counterparty's (or next-hop participant's) check that ``hop`` and ``salt`` open ``sealed``.

    Returns ``hop``; ``InvalidEntry`` if the commitment does not match, or the
    entry inside is not countersigned by the identities it names.
    """
    if (hop.auction, hop.body.hop) != (sealed.auction, sealed.hop):
        raise InvalidEntry("the entry is for another auction or hop", sealed.hop)
    if commit_hop(hop, salt) != sealed.commitment:
        raise InvalidEntry("the entry and salt do not open the commitment", sealed.hop)
    if not hop.seller_sig_ok() or not hop.buyer_sig_ok():
        raise InvalidEntry("the opened entry is not countersigned by its seller and buyer", sealed.hop)
    return hop
