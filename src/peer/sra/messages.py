"""Wire messages of one SRA auction, one class per kind.

Every message names its auction so a node shell can route it to the right
machine.  Amounts are integer minor units (see :mod:`peer.money`).  The stage a
message belongs to is used to count traffic per stage.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """Stage 2: the sender chose the receiver as its parent; its aggregated bid."""

    auction: str
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Decline:
    """Stage 2: the sender is the receiver's invitee but chose another parent."""

    auction: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Open:
    """Stage 3: the local seller opens hop ``hop`` to the receiver (one of its invitees)."""

    auction: str
    hop: int
    reserve: int  # the host's purchase price: the hop's reserve
    prev: str  # hash of the ledger entry that sold the item to the host (genesis for hop 1)
    budget: float | None = None  # seconds the host will still wait (None: the receiver's own timeout)


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Settled:
    """The auction is over: flooded from the final winner to every informed node."""

    auction: str
    winner: str
    hops: int
    price: int


Message = Invite | Bid | Decline | Open | ContextRequest | ContextReply | ContextBid | Award | Settled

STAGE_OF: dict[type, Stage] = {
    Invite: Stage.DIFFUSION,
    Bid: Stage.AGGREGATION,
    Decline: Stage.AGGREGATION,
    Open: Stage.ALLOCATION,
    ContextRequest: Stage.ALLOCATION,
    ContextReply: Stage.ALLOCATION,
    ContextBid: Stage.ALLOCATION,
    Award: Stage.ALLOCATION,
    Settled: Stage.SETTLEMENT,
}
