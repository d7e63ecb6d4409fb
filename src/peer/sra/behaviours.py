"""Vocabulary shared by the deviation hooks of the SRA machine and the shells that run them.

A :class:`peer.sra.machine.Behaviour` names a *stage* for its faults
(``silent_from``, ``crash_at``), in either of two vocabularies:

* a message stage (:class:`peer.sra.messages.Stage`: diffusion, aggregation,
  allocation, settlement): the fault fires when the node is about to send its
  first message of that stage *or a later one*;
* a node stage (:class:`peer.sra.machine.NodeStage`: gathering, aggregating,
  reported, hosting, settled; the names the real-node adversaries use): the
  fault fires when the node enters that stage for the first time;
* ``hop:K`` (K >= 1): the fault fires when the node is about to send its
  first message of hop K or later (Open, ContextRequest, ContextReply,
  ContextBid and Award name their hop; a Settled after h sales belongs to
  the final host's hop h + 1).
  A node can answer hop 1 and fall silent in hop 2, which no stage boundary
  expresses for a node that never hosts.

Either way the fault fires at one point in the list of effects the machine
returns for one event; :func:`cut_index` finds it.  Effects before that point
are carried out (a ledger ``Record`` comes before the messages that depend on
it, so a node that crashes as it starts hosting has countersigned its
purchase), nothing from that point on is.

This module imports nothing from the machine, so the machine, the simulator
and the scenario loader can all use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from peer.sra.effects import Effect, Send, StageChanged
from peer.sra.messages import STAGE_OF, Settled, Stage

MESSAGE_STAGES: tuple[str, ...] = tuple(s.value for s in Stage)  # diffusion, aggregation, allocation, settlement
NODE_STAGES: tuple[str, ...] = ("gathering", "aggregating", "reported", "hosting", "settled")
STAGES: tuple[str, ...] = MESSAGE_STAGES + NODE_STAGES
_RANK = {name: index for index, name in enumerate(MESSAGE_STAGES)}


def _hop_of(stage: str) -> int | None:
    if not stage.startswith("hop:"):
        return None
    digits = stage[4:]
    return int(digits) if digits.isdigit() and int(digits) >= 1 else None


def check_stage(stage: str) -> str:
    """``stage`` if it is a stage name of either vocabulary or ``hop:K``, else ValueError."""
    if stage not in STAGES and _hop_of(stage) is None:
        raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}, or hop:K")
    return stage


def message_rank(msg: object) -> int:
    """Position of a message's stage in protocol order."""
    return _RANK[STAGE_OF[type(msg)].value]


def cut_index(effects: list[Effect], stage: str) -> int | None:
    """Where in ``effects`` a fault at ``stage`` fires, or None if it does not fire in them."""
    rank = _RANK.get(stage)
    hop = _hop_of(stage)
    for index, effect in enumerate(effects):
        if hop is not None:
            msg = effect.msg if type(effect) is Send else None
            # A Settled after h sold hops ends hop h + 1 (the final host's), so it belongs to that hop.
            if msg is not None and (msg.hops + 1 if type(msg) is Settled else getattr(msg, "hop", 0)) >= hop:
                return index
        elif rank is not None:
            if type(effect) is Send and message_rank(effect.msg) >= rank:
                return index
        elif type(effect) is StageChanged and effect.stage == stage:
            return index
    return None


@dataclass(frozen=True, slots=True)
class LowDemand:
    """Mirage's strategy S1 ("underbidding based on current demand"), for SRA.

    The demand a node can see is the number of its invitees that answered in
    stage 2 (Bid or Decline): the participants of the local auction it would
    host.  When stage 2 ends with at most ``at_most`` of them, the node declares
    floor(``factor`` x its bid) from then on: in its stage-2 aggregate, its
    stage-3 context bids and, as a host, its keep-or-resell decision.
    """

    factor: Fraction = Fraction(1, 2)
    at_most: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.factor <= 1:
            raise ValueError("the shading factor must lie in [0, 1]")
        if self.at_most < 0:
            raise ValueError("at_most must be >= 0")

    def shade(self, bid: int, participants: int) -> int:
        if participants > self.at_most:
            return bid
        return int(bid * self.factor)  # floor: amounts are non-negative integers


def as_pairs(mapping: object) -> tuple[tuple[str, int], ...]:
    """A mapping inviter -> amount as the sorted pairs a frozen Behaviour can hash."""
    if isinstance(mapping, Mapping):
        pairs = list(mapping.items())
    elif isinstance(mapping, (tuple, list)):
        pairs = [tuple(p) for p in mapping]
    else:
        raise TypeError("equivocate must be a mapping inviter -> amount")
    if any(len(p) != 2 or not isinstance(p[0], str) or not isinstance(p[1], int) for p in pairs):
        raise TypeError("equivocate must map inviter ids to integer amounts")
    return tuple(sorted(pairs))  # type: ignore[arg-type]
