"""Signed ledger entries: the seller's announcement (genesis) and the hops.

Signed bytes are a binary, fixed-order, length-prefixed encoding with a domain
string in front (research note §2.4/§4: never sign JSON, never sign bytes
that could mean something else).  A hop's body is exactly the SRA machine's
``HopEntry`` with seller and buyer spelled as public keys in hex, so the chain
hashes here are the ones the machine puts in ``Open.prev`` and ``Award.entry``;
the announcement's chain hash is ``genesis_hash(auction, item, seller,
mechanism)``, the value the machine sends in ``Invite.genesis``.

Two hashes per entry, on purpose:
- ``hash``: the chain link (what the next hop's ``prev`` names);
- ``digest``: sha256 of the signed bytes, the entry's identity.  Two
  announcements that differ only in ``created_at_ms`` share a ``hash`` but not a
  ``digest``, and that difference is what a fraud proof is about.
Signatures are attestations of the content and are not part of either hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from peer.errors import PeerError
from peer.money import describe_amount
from peer.ledger.keys import SIGNATURE_BYTES, SignerLike, is_public_hex, public_hex, sign, verify
from peer.sra.equivocation import BidReceipt
from peer.sra.ledger_entry import HopEntry, genesis_hash

DOMAIN_ANNOUNCEMENT = b"peer/ledger/v1/announcement"
DOMAIN_HOP = b"peer/ledger/v1/hop"
DEFAULT_MECHANISM = "sra/v1"

# Bounds keep every entry encodable on the wire (msgspec bounds are int64)
# and small on disk; they are checked at construction, so nothing larger exists.
MAX_ID_BYTES = 256
MAX_ITEM_BYTES = 1024
MAX_HOP = 2**32 - 1
MAX_PRICE = 2**63 - 1
MAX_TIME_MS = 2**63 - 1


class LedgerError(PeerError):
    """Base of the ledger's errors."""


class InvalidEntry(LedgerError):
    """An entry (or chain, or proof) that does not verify; ``reason`` says why."""

    def __init__(self, reason: str, position: int | None = None) -> None:
        where = "" if position is None else f"position {position}: "
        super().__init__(where + reason)
        self.reason = reason
        self.position = position


class ReserveError(LedgerError):
    """A host's claimed reserve is not backed by a signed entry in which it bought the item."""


def _lp(raw: bytes) -> bytes:
    return len(raw).to_bytes(4, "big") + raw


def _text(value: object, name: str, limit: int, *, empty_ok: bool = False) -> bytes:
    if not isinstance(value, str):
        raise InvalidEntry(f"{name} must be a string")
    try:
        raw = value.encode()
    except UnicodeEncodeError:
        raise InvalidEntry(f"{name} is not valid UTF-8") from None
    if len(raw) > limit or (not raw and not empty_ok):
        raise InvalidEntry(f"{name} must be 1..{limit} bytes")
    return raw


def _int(value: object, name: str, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidEntry(f"{name} must be an integer in {low}..{high}")


def _key(value: object, name: str) -> None:
    if not is_public_hex(value):
        raise InvalidEntry(f"{name} must be a public key: 64 lowercase hex chars")


def _sig(value: object, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != SIGNATURE_BYTES:
        raise InvalidEntry(f"{name} must be {SIGNATURE_BYTES} bytes")


def validate_auction(value: object) -> str:
    """An auction id: 1..MAX_ID_BYTES bytes of UTF-8."""
    _text(value, "auction", MAX_ID_BYTES)
    return value  # type: ignore[return-value]  # checked just above


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Announcement:
    """The genesis of an auction's chain, signed by the seller."""

    auction: str
    item: str
    seller: str  # public key, hex
    mechanism: str
    created_at_ms: int
    signature: bytes

    def __post_init__(self) -> None:
        _text(self.auction, "auction", MAX_ID_BYTES)
        _text(self.item, "item", MAX_ITEM_BYTES, empty_ok=True)
        _key(self.seller, "seller")
        _text(self.mechanism, "mechanism", MAX_ID_BYTES)
        _int(self.created_at_ms, "created_at_ms", 0, MAX_TIME_MS)
        _sig(self.signature, "signature")

    @classmethod
    def create(
        cls, key: SignerLike, *, auction: str, item: str, created_at_ms: int,
        mechanism: str = DEFAULT_MECHANISM,
    ) -> Announcement:
        """The seller's signed announcement of ``auction``."""
        unsigned = dict(auction=auction, item=item, seller=public_hex(key), mechanism=mechanism,
                        created_at_ms=created_at_ms)
        probe = cls(**unsigned, signature=bytes(SIGNATURE_BYTES))  # validates before signing
        return cls(**unsigned, signature=sign(key, probe.signed_bytes()))

    @property
    def position(self) -> int:
        return 0

    def signed_bytes(self) -> bytes:
        return (
            _lp(DOMAIN_ANNOUNCEMENT)
            + _lp(self.auction.encode())
            + _lp(self.item.encode())
            + bytes.fromhex(self.seller)
            + _lp(self.mechanism.encode())
            + self.created_at_ms.to_bytes(8, "big")
        )

    @property
    def hash(self) -> str:
        """The chain root, as the SRA machine computes it."""
        return genesis_hash(self.auction, self.item, self.seller, self.mechanism)

    @property
    def digest(self) -> str:
        return _sha(self.signed_bytes())

    def signature_ok(self) -> bool:
        return verify(self.seller, self.signed_bytes(), self.signature)


def validate_body(body: object) -> HopEntry:
    """Check a hop body's shape (not its place in a chain); return it."""
    if not isinstance(body, HopEntry):
        raise InvalidEntry("a hop body must be a HopEntry")
    _text(body.auction, "auction", MAX_ID_BYTES)
    _int(body.hop, "hop", 1, MAX_HOP)
    _key(body.seller, "seller")
    _key(body.buyer, "buyer")
    _int(body.price, "price", 0, MAX_PRICE)
    _key(body.prev, "prev")  # a sha256 in hex has the same spelling as a key
    if body.seller == body.buyer:
        raise InvalidEntry("seller and buyer are the same key")
    return body


def hop_signed_bytes(body: HopEntry) -> bytes:
    """What both the seller and the buyer sign: the same bytes, so neither can claim another deal."""
    return _lp(DOMAIN_HOP) + validate_body(body).canonical_bytes()


def sign_hop(key: SignerLike, body: HopEntry) -> bytes:
    """Sign ``body`` as its seller or its buyer (the key must be one of them)."""
    if public_hex(key) not in (body.seller, body.buyer):
        raise InvalidEntry("only the hop's seller or buyer may sign it", body.hop)
    return sign(key, hop_signed_bytes(body))


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedHop:
    """One resale, countersigned: both parties' signatures over ``hop_signed_bytes(body)``."""

    body: HopEntry
    seller_sig: bytes
    buyer_sig: bytes

    def __post_init__(self) -> None:
        validate_body(self.body)
        _sig(self.seller_sig, "seller_sig")
        _sig(self.buyer_sig, "buyer_sig")

    @property
    def auction(self) -> str:
        return self.body.auction

    @property
    def position(self) -> int:
        return self.body.hop

    def signed_bytes(self) -> bytes:
        return hop_signed_bytes(self.body)

    @property
    def hash(self) -> str:
        return self.body.hash

    @property
    def digest(self) -> str:
        return _sha(self.signed_bytes())

    def seller_sig_ok(self) -> bool:
        return verify(self.body.seller, self.signed_bytes(), self.seller_sig)

    def buyer_sig_ok(self) -> bool:
        return verify(self.body.buyer, self.signed_bytes(), self.buyer_sig)


Entry = Announcement | SignedHop


def verify_announcement(ann: Announcement) -> None:
    if not ann.signature_ok():
        raise InvalidEntry("announcement is not signed by its seller", 0)


def verify_hop(prev: Entry, hop: SignedHop) -> None:
    """Check that ``hop`` may follow ``prev`` (the genesis or hop k-1).  ``prev`` is trusted."""
    k = hop.body.hop
    if hop.auction != prev.auction:
        raise InvalidEntry(f"hop belongs to auction {hop.auction!r}, not {prev.auction!r}", k)
    if k != prev.position + 1:
        raise InvalidEntry(f"hop {k} cannot follow position {prev.position}", k)
    if hop.body.prev != prev.hash:
        raise InvalidEntry("prev does not name the entry before it", k)
    expected_seller = prev.seller if isinstance(prev, Announcement) else prev.body.buyer
    if hop.body.seller != expected_seller:
        raise InvalidEntry("seller is not the buyer of the previous hop", k)
    reserve = 0 if isinstance(prev, Announcement) else prev.body.price
    if hop.body.price < reserve:
        raise InvalidEntry(f"price {describe_amount(hop.body.price)} is below the reserve "
                           f"{describe_amount(reserve)}", k)
    # Both signatures, and both reported: a missing countersignature is a different
    # story from a forged one, but either way the hop is not on the ledger.
    if not hop.seller_sig_ok():
        raise InvalidEntry("seller signature does not verify", k)
    if not hop.buyer_sig_ok():
        raise InvalidEntry("buyer signature does not verify", k)


@dataclass(frozen=True, slots=True)
class Chain:
    """An auction's chain: the announcement then hops 1..n.  Position p is ``entries[p]``."""

    announcement: Announcement
    hops: tuple[SignedHop, ...] = ()

    @property
    def auction(self) -> str:
        return self.announcement.auction

    @property
    def length(self) -> int:
        """Number of entries, the announcement included."""
        return 1 + len(self.hops)

    @property
    def entries(self) -> tuple[Entry, ...]:
        return (self.announcement, *self.hops)

    @property
    def head(self) -> Entry:
        return self.hops[-1] if self.hops else self.announcement

    def at(self, position: int) -> Entry | None:
        if position == 0:
            return self.announcement
        return self.hops[position - 1] if 0 < position <= len(self.hops) else None

    def appended(self, hop: SignedHop) -> Chain:
        return Chain(self.announcement, (*self.hops, hop))

    def next_body(self, buyer: str, price: int) -> HopEntry:
        """The body of the next hop: sold by the current holder, chained to the head."""
        head = self.head
        seller = head.seller if isinstance(head, Announcement) else head.body.buyer
        return validate_body(HopEntry(auction=self.auction, hop=head.position + 1, seller=seller,
                                      buyer=buyer, price=price, prev=head.hash))


def verify_chain(chain: Chain) -> None:
    """Re-verify every entry from genesis; raise ``InvalidEntry`` at the first problem."""
    verify_announcement(chain.announcement)
    prev: Entry = chain.announcement
    for hop in chain.hops:
        verify_hop(prev, hop)
        prev = hop


def check_reserve(chain: Chain, host: str, hop: int, reserve: int, prev: str | None = None) -> None:
    """A participant's check before bidding in ``host``'s hop ``hop``.

    The host's reserve must be the price of a signed entry for hop k-1 whose
    buyer is the host (for hop 1: the host is the seller and the reserve is 0).
    ``prev``, when given, is the entry hash the host named in its ``Open``.
    Raises ``ReserveError`` saying what does not match.
    """
    if hop < 1:
        raise ReserveError(f"hop {hop} does not exist")
    if chain.length < hop:
        raise ReserveError(f"no signed entry for hop {hop - 1} yet (chain has {chain.length - 1} hops)")
    try:
        verify_chain(Chain(chain.announcement, chain.hops[: hop - 1]))
    except InvalidEntry as exc:
        raise ReserveError(f"the chain behind hop {hop} does not verify: {exc}") from None
    basis = chain.at(hop - 1)
    assert basis is not None  # length checked above
    owner, bought_at = (
        (basis.seller, 0) if isinstance(basis, Announcement) else (basis.body.buyer, basis.body.price)
    )
    if owner != host:
        raise ReserveError(f"host {host[:12]} did not buy the item in hop {hop - 1}")
    if reserve != bought_at:
        raise ReserveError(f"host claims reserve {describe_amount(reserve)} but bought at {describe_amount(bought_at)}")
    if prev is not None and prev != basis.hash:
        raise ReserveError(f"host's prev does not name the entry of hop {hop - 1}")


#: What a fraud proof pairs: two chain entries (a fork), or two signed stage-2 bid
#: commitments of one bidder (bid equivocation, :mod:`peer.sra.equivocation`).
Statement = Entry | BidReceipt


def signers(entry: Statement) -> frozenset[str]:
    """The keys whose signatures on ``entry`` verify."""
    if isinstance(entry, BidReceipt):
        return frozenset({entry.bidder} if verify(entry.bidder, entry.signed_bytes(), entry.sig) else ())
    if isinstance(entry, Announcement):
        return frozenset({entry.seller} if entry.signature_ok() else ())
    ok = set()
    if entry.seller_sig_ok():
        ok.add(entry.body.seller)
    if entry.buyer_sig_ok():
        ok.add(entry.body.buyer)
    return frozenset(ok)


def find_culprits(a: Statement, b: Statement) -> frozenset[str]:
    """Keys that validly signed two different entries for the same position of the same auction.

    Two bid receipts are "the same position" when they are one bidder's: an honest
    node signs one stage-2 bid per auction.
    """
    if a.auction != b.auction or a.position != b.position or a.digest == b.digest:
        return frozenset()
    if isinstance(a, BidReceipt) != isinstance(b, BidReceipt):
        return frozenset()
    if isinstance(a, BidReceipt) and isinstance(b, BidReceipt) and a.bidder != b.bidder:
        return frozenset()
    return signers(a) & signers(b)


@dataclass(frozen=True, slots=True)
class FraudProof:
    """Two different entries at one position, both signed by the same party.  Self-verifying.

    Or two different stage-2 bid commitments of one bidder in one auction
    (``position`` is then ``BID_POSITION``, -1: no chain position).
    """

    first: Statement  # the one on our chain (first seen)
    second: Statement  # the conflicting one

    @property
    def auction(self) -> str:
        return self.first.auction

    @property
    def position(self) -> int:
        return self.first.position

    @property
    def key(self) -> tuple[str, int, frozenset[str]]:
        """Identity for de-duplication: order of the two entries does not matter."""
        return (self.auction, self.position, frozenset({self.first.digest, self.second.digest}))


def verify_fraud_proof(proof: FraudProof) -> frozenset[str]:
    """The culprits; ``InvalidEntry`` if the proof proves nothing."""
    culprits = find_culprits(proof.first, proof.second)
    if not culprits:
        raise InvalidEntry("not a fraud proof: no party signed two different entries here",
                           proof.position)
    return culprits
