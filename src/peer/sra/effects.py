"""What an SRA machine asks its shell to do.  Imperatives and past-tense facts."""

from __future__ import annotations

from dataclasses import dataclass

from peer.sra.ledger_entry import HopEntry
from peer.sra.messages import Message


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``msg`` to neighbour ``to``."""

    to: str
    msg: Message


@dataclass(frozen=True, slots=True)
class Wake:
    """Call the machine's ``on_timer`` at time ``at`` (or later)."""

    at: float


@dataclass(frozen=True, slots=True)
class Record:
    """Append this hop to the auction's ledger (both parties agree on it).

    The buyer's Record countersigns the entry and puts it on the ledger; the
    seller's is only its half, unless ``countersigned``: under guarded resale
    the seller already holds the buyer's signature (it came with Confirm), so
    its Record puts the whole entry on the ledger before the Award is sent.
    """

    entry: HopEntry
    countersigned: bool = False


@dataclass(frozen=True, slots=True)
class StageChanged:
    """The node entered a new stage (for views and logs)."""

    stage: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The auction is over as far as this node is concerned."""

    winner: str
    price: int
    hops: int


Effect = Send | Wake | Record | StageChanged | Outcome
