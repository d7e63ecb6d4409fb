"""Wire messages of one SRA auction, one class per kind.

Every message names its auction so a node shell can route it to the right
machine.  Amounts are integer minor units (see :mod:`peer.money`).  The stage a
message belongs to is used to count traffic per stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Stage(str, Enum):
    """The stages messages are counted under."""

    DIFFUSION = "diffusion"
    AGGREGATION = "aggregation"
    ALLOCATION = "allocation"
    SETTLEMENT = "settlement"


@dataclass(frozen=True, slots=True, kw_only=True)
class Invite:
    """Stage 1: the sale announcement, forwarded from the seller outwards."""

    auction: str
    item: str
    seller: str
    genesis: str  # hash of the seller's announcement: the ledger chain's root
    budget: float | None = None  # seconds the inviter will still wait (None: the receiver's own timeout)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bid:
    """Stage 2: the sender chose the receiver as its parent; its aggregated bid.

    On real links the bidder signs it (added by the node shell, checked by the
    receiving shell before its machine sees it): ``sig`` is the sender's
    signature over its commitment to (auction, itself, the receiver, amount,
    ``salt``), so two Bids to two parents are a checkable fraud proof
    (:mod:`peer.sra.equivocation`).  Neither is part of equality.
    """

    auction: str
    amount: int
    salt: bytes = field(default=b"", compare=False)
    sig: bytes = field(default=b"", compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CoinBid(Bid):
    """A Bid under verifiable coins (``SraConfig.verifiable_coins``, :mod:`peer.sra.coins`).

    It carries the sender's coin (its Ed25519 signature over the auction id)
    and the inviters it counted, so the receiver can check that the coin picks
    it.  A subclass rather than two more fields of Bid only until the wire
    codec mirrors them: the codec refuses to encode a field it does not know,
    and the paper's private coin sends plain Bids.
    """

    coin: bytes
    inviters: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class BidReceipts:
    """Stage 2, just before a Bid: the signed bid commitments of the sender's subtree.

    ``receipts`` is :func:`peer.sra.equivocation.pack_receipts` of at most
    ``RECEIPTS_PER_MESSAGE`` receipts; a big subtree sends several.  Handled by
    the node shell (the machine never sees it): two conflicting receipts of one
    bidder are a fraud proof.
    """

    auction: str
    receipts: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Decline:
    """Stage 2: the sender is the receiver's invitee but chose another parent."""

    auction: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CoinDecline(Decline):
    """A Decline under verifiable coins: the sender's coin and the parent it chose.

    ``parent`` is empty when the receiver's invitation came after the sender
    had forwarded.  A declined inviter checks that the coin ranks that parent
    before it.
    """

    coin: bytes
    parent: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Open:
    """Stage 3: the local seller opens hop ``hop`` to the receiver (one of its invitees)."""

    auction: str
    hop: int
    reserve: int  # the host's purchase price: the hop's reserve
    prev: str  # hash of the ledger entry that sold the item to the host (genesis for hop 1)
    budget: float | None = None  # seconds the host will still wait (None: the receiver's own timeout)
    # Guarded resale: the rest of the body of the entry ``prev`` names (empty for hop 1), so a
    # participant can check that ``reserve`` is the price in it before it commits to anything.
    bought_from: str = ""
    bought_prev: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextRequest:
    """Stage 3: a parent asks a tree child for its context bid in ``host``'s hop."""

    auction: str
    hop: int
    host: str
    budget: float | None = None  # seconds the requester will still wait (None: own timeout)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextReply:
    """Stage 3: a child's context bid, or ``None``: cut off, it bids to the host directly."""

    auction: str
    hop: int
    amount: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextBid:
    """Stage 3: a participant's context bid, sent to the host."""

    auction: str
    hop: int
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Award:
    """Stage 3: the host sells the item to the receiver at ``price`` in hop ``hop``."""

    auction: str
    hop: int
    price: int
    entry: str  # hash of the ledger entry recording this hop
    seller_sig: bytes = b""  # the host's signature on that entry (added by the node shell)
    # Verifiable coins, the paper's rule (peer.sra.coins): the host's tie coin for this hop and
    # the bidders tied for first place, so the buyer can check that the coin picks it.
    tie_coin: bytes = b""
    tied: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """Stage 3, guarded resale: the host would sell to the receiver at ``price``, if it confirms.

    The receiver hosts its own hop first and answers Confirm (it can pay: it
    resells at least at ``price`` or values the item that much) or Refuse.
    """

    auction: str
    hop: int
    price: int
    entry: str  # hash of the ledger entry the sale would be
    budget: float | None = None  # seconds the host will wait for the answer
    # Verifiable coins (peer.sra.coins): the host's tie coin for this hop and the bidders tied
    # for first place, so the buyer can check that the coin picks it.
    tie_coin: bytes = b""
    tied: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Confirm:
    """Stage 3, guarded resale: the buyer takes the offer of hop ``hop``; binding once sent."""

    auction: str
    hop: int
    buyer_sig: bytes = b""  # the buyer's signature on the entry (added by the node shell)


@dataclass(frozen=True, slots=True, kw_only=True)
class Refuse:
    """Stage 3, guarded resale: the buyer cannot pay the offer; ``amount`` is the bid it can back."""

    auction: str
    hop: int
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Settled:
    """The auction is over: flooded from the final winner to every informed node.

    Only the party that ends the auction may say so: the winner is the host
    that kept the item (the seller, or the buyer of the last hop, backed by its
    signed ledger entry), and ``sig`` is its signature over
    :func:`settled_signed_bytes` (added by the node shell, checked by every
    receiving shell before its machine sees the message).  The signature is
    not part of equality: the machine compares settlements by what they say.
    """

    auction: str
    winner: str
    hops: int
    price: int
    sig: bytes = field(default=b"", compare=False)


def settled_signed_bytes(msg: Settled) -> bytes:
    """What the winner signs: a fixed layout, domain-separated from every other signature."""
    return b"\x00".join((
        b"peer/sra/settled/v1", msg.auction.encode(), msg.winner.encode(),
        str(msg.hops).encode(), str(msg.price).encode(),
    ))


Message = (
    Invite | Bid | CoinBid | BidReceipts | Decline | CoinDecline | Open | ContextRequest | ContextReply | ContextBid | Offer | Confirm | Refuse
    | Award | Settled
)

class _StageMap(dict[type, Stage]):
    """Stage per message class; a subclass (CoinBid, CoinDecline) counts as its base class.

    The subclasses are not keys, so the set of keys is exactly the messages that
    have a wire form of their own.
    """

    def __missing__(self, kind: type) -> Stage:
        for base in getattr(kind, "__mro__", ())[1:]:
            if base in self:
                return self[base]
        raise KeyError(kind)


STAGE_OF: dict[type, Stage] = _StageMap({
    Invite: Stage.DIFFUSION,
    Bid: Stage.AGGREGATION,
    BidReceipts: Stage.AGGREGATION,
    Decline: Stage.AGGREGATION,
    Open: Stage.ALLOCATION,
    ContextRequest: Stage.ALLOCATION,
    ContextReply: Stage.ALLOCATION,
    ContextBid: Stage.ALLOCATION,
    Offer: Stage.ALLOCATION,
    Confirm: Stage.ALLOCATION,
    Refuse: Stage.ALLOCATION,
    Award: Stage.ALLOCATION,
    Settled: Stage.SETTLEMENT,
})
