"""What the auctioneer machines ask their shell to do, and what they report."""

from __future__ import annotations

from dataclasses import dataclass

from peer.auctioneer.agreement import BidVector
from peer.auctioneer.messages import Message
from peer.auctioneer.outcome import SignedOutcome


@dataclass(frozen=True, slots=True)
class Send:
    to: bytes
    msg: Message


@dataclass(frozen=True, slots=True)
class Broadcast:
    """To every other executing provider."""

    msg: Message


@dataclass(frozen=True, slots=True)
class Wake:
    """Call ``on_tick`` at ``at`` (or later)."""

    at: float


@dataclass(frozen=True, slots=True)
class Decided:
    """This provider's output: the signed outcome, and the agreed vector it was computed from."""

    outcome: SignedOutcome
    vector: BidVector


@dataclass(frozen=True, slots=True)
class Aborted:
    """This provider's output is ⊥.  ``culprits`` are named with proof if ``proved``, else suspected."""

    reason: str
    culprits: tuple[bytes, ...]
    proved: bool


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message was refused and changed nothing (for logs and tests)."""

    sender: bytes
    reason: str


Effect = Send | Broadcast | Wake | Decided | Aborted | Rejected
