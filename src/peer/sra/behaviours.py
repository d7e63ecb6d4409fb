"""Vocabulary shared by the deviation hooks of the SRA machine and the shells that run them.

A :class:`Behaviour` names a *stage* for its faults
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
and the scenario loader can all use it.  It holds :class:`Behaviour` itself
and :func:`rewrite_sends`, which applies a behaviour to what a machine sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction

from peer.sra.effects import Effect, Send, StageChanged
from peer.sra.messages import STAGE_OF, Bid, ContextBid, ContextReply, Settled, Stage

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


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How a node departs from the intended strategy (the default is honest).

    The first four are the deviations of the paper's proof of Thm 5.3: a
    declared bid other than the value, inviting only some neighbours, reporting
    the aggregate to several inviters, and reporting a wrong aggregate.  Note
    that ``aggregate`` only changes the stage-2 Bid amount, which stage 3 never
    uses (it recomputes context bids by a convergecast): the wrong aggregate
    that matters is ``context``.

    Beyond the proof: ``context`` (report this stage-3 context bid, to
    requesting parents and to hosts), ``parent`` (choose this inviter as parent
    when it is one, instead of the seeded coin), ``equivocate`` (inviter ->
    amount: Bid to *every* inviter, each its own amount, and the same amount in
    the stage-3 context bids sent to it; inviters not named get the true one),
    ``underbid_when_demand_low`` (Mirage's S1, see
    :class:`peer.sra.behaviours.LowDemand`).  When several of ``report_to_all``,
    ``equivocate`` and ``parent`` are set, reporting to several wins.

    Protocol attacks and faults: ``false_reserve`` (as a host, announce and
    apply this reserve instead of the price it bought at), ``silent_from`` (a
    stage: from the point it fires on, the node sends nothing at all, though
    its machine runs on and records what it is awarded), ``crash_at`` / ``restart_after`` (carried out
    by the shell: the node's machine is lost at that stage, see
    :mod:`peer.sim.network`).  ``split`` (k identities) is a scenario
    transformation the simulator applies (:mod:`peer.sim.sybil`); the machine
    ignores it.
    """

    bid: int | None = None  # declared value; None: the true value
    invite_only: frozenset[str] | None = None  # None: invite every neighbour
    report_to_all: bool = False  # Bid to every inviter instead of one
    aggregate: int | None = None  # report this aggregate instead of the max
    context: int | None = None  # stage-3 context bid to report instead of the true one
    parent: str | None = None  # inviter to choose as parent
    # Under verifiable coins, how a node that chose ``parent`` hides it (peer.sra.coins): None
    # lists every inviter (and is refused), "omit" leaves off those its coin ranks before the
    # parent, "silent" also sends them nothing.
    coin_cover: str | None = None
    equivocate: tuple[tuple[str, int], ...] = ()  # (inviter, amount) pairs; a dict is accepted
    underbid_when_demand_low: LowDemand | None = None
    false_reserve: int | None = None  # reserve to announce as a host
    silent_from: str | None = None  # a stage name (either vocabulary of peer.sra.behaviours)
    crash_at: str | None = None  # a stage name, likewise
    restart_after: float | None = None  # None: never restarts
    split: int = 1  # identities (Sybil); 1: no split

    def __post_init__(self) -> None:
        object.__setattr__(self, "equivocate", as_pairs(self.equivocate))  # canonical, so Behaviours compare
        for stage in (self.silent_from, self.crash_at):
            if stage is not None:
                check_stage(stage)
        if self.coin_cover not in (None, "omit", "silent"):
            raise ValueError("coin_cover must be None, 'omit' or 'silent'")
        if self.restart_after is not None and (self.crash_at is None or self.restart_after < 0):
            raise ValueError("restart_after needs crash_at and must be >= 0")
        if self.split < 1:
            raise ValueError("split must be at least 1")

    @property
    def honest(self) -> bool:
        return self == HONEST

    @property
    def breaks_protocol(self) -> bool:
        """Does this node send illegal messages or stop answering (so a run may legitimately abort)?"""
        return self.false_reserve is not None or self.silent_from is not None or self.crash_at is not None


HONEST = Behaviour()


def rewrite_sends(
    behaviour: Behaviour, equivocate: dict[str, int], effects: list[Effect], *, muted: bool
) -> tuple[list[Effect], bool]:
    """Rewrite or suppress what a deviating node sends; returns (effects, muted now).

    ``context`` replaces the amount of every context bid it sends (a "cut"
    reply carries no amount and stays one); ``equivocate`` then replaces the
    amount of every Bid, ContextReply and ContextBid sent to a named
    inviter; once ``silent_from`` fires, every message is dropped.
    """
    mute_from = len(effects) + 1
    if muted:
        mute_from = 0
    elif behaviour.silent_from is not None:
        index = cut_index(effects, behaviour.silent_from)
        if index is not None:
            muted = True
            mute_from = index
    out: list[Effect] = []
    for index, effect in enumerate(effects):
        if type(effect) is not Send:
            out.append(effect)
            continue
        if index >= mute_from:
            continue
        msg = effect.msg
        if type(msg) is ContextReply and msg.amount is not None or type(msg) is ContextBid:
            amount = msg.amount if behaviour.context is None else behaviour.context
            msg = replace(msg, amount=equivocate.get(effect.to, amount))
        elif isinstance(msg, Bid) and effect.to in equivocate:
            msg = replace(msg, amount=equivocate[effect.to])
        out.append(Send(effect.to, msg) if msg is not effect.msg else effect)
    return out, muted
