"""What an SRA machine asks its shell to do.  Imperatives and past-tense facts.

The four that every event makes (Send, Wake, StageChanged, Outcome) are plain
slotted dataclasses, hashable by value, rather than frozen ones: a frozen
dataclass sets each field through ``object.__setattr__``, which made building
one about three times as slow, and a 100,000-node simulation builds 1.5
million of them.  Nothing mutates an effect once made; treat them as values.
"""

from __future__ import annotations

from dataclasses import dataclass

from peer.sra.ledger_entry import HopEntry
from peer.sra.messages import Message


@dataclass(slots=True, unsafe_hash=True)
class Send:
    """Send ``msg`` to neighbour ``to``."""

    to: str
    msg: Message


@dataclass(slots=True, unsafe_hash=True)
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


@dataclass(slots=True, unsafe_hash=True)
class StageChanged:
    """The node entered a new stage (for views and logs)."""

    stage: str


@dataclass(slots=True, unsafe_hash=True)
class Outcome:
    """The auction is over as far as this node is concerned."""

    winner: str
    price: int
    hops: int


Effect = Send | Wake | Record | StageChanged | Outcome
