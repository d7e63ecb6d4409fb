"""What a QPQ machine asks its shell to do, and what it reports."""

from __future__ import annotations

from dataclasses import dataclass

from peer.qpq.decide import Fault, Level, LevelResult
from peer.qpq.ledger import AllocationEntry
from peer.qpq.messages import Message


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Deliver ``msg`` to every member of ``recipients`` (never to the sender itself).

    ``scope`` names the audience: ``"cluster:<id>"`` (my cluster) or ``"all"``
    (every player, at the winner level).  On real nodes the shell sends it on
    the links it has and floods it, origin-signed, to the members that are
    not neighbours; the simulator counts one frame per recipient.
    """

    scope: str
    recipients: tuple[str, ...]
    msg: Message


@dataclass(frozen=True, slots=True)
class Wake:
    """Call ``on_timer`` at time ``at`` (or later)."""

    at: float


@dataclass(frozen=True, slots=True)
class Decided:
    """A level of round ``round`` is decided (my cluster's, or the winners')."""

    round: int
    result: LevelResult


@dataclass(frozen=True, slots=True)
class Flag:
    """``member`` misbehaved, or failed the test, in round ``round`` (evidence for the shell's log)."""

    round: int
    level: Level
    member: str
    reason: Fault


@dataclass(frozen=True, slots=True)
class Record:
    """Append this allocation to the stream's ledger (signed by the shell)."""

    entry: AllocationEntry


@dataclass(frozen=True, slots=True)
class RoundDone:
    """Round ``round`` is over here; ``winner`` gets the resource ("" if nobody)."""

    round: int
    winner: str


Effect = Broadcast | Wake | Decided | Flag | Record | RoundDone
