"""The behaviour kinds of ``peer experiment deviations``, and how each picks its deviators.

A kind turns (a scenario, its honest run, one node, a seeded stream) into the
:class:`~peer.sra.machine.Behaviour` that node plays, or None when the kind
does not apply to it (reporting to several inviters needs two of them, a
false reserve needs a node that hosts).  Amounts are drawn from the run's own
scale: ``top`` is the highest value in the scenario.

Groups: ``Thm 5.3`` (the proof's deviations), ``beyond`` (deviations the proof
does not consider), ``Mirage`` (strategies users of Mirage tried),
``attack`` (illegal messages the shell checks should catch), ``fault``
(silence and crashes at each stage) and ``Sybil``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction

from peer.result import RunResult
from peer.sim.checks import CHECKS
from peer.sra.behaviours import MESSAGE_STAGES, LowDemand
from peer.sra.machine import Behaviour


@dataclass(frozen=True)
class Situation:
    """What a kind may look at to build a deviation of ``node``."""

    node: str
    value: int
    top: int  # highest value in the scenario (at least 1)
    honest: RunResult
    neighbours: tuple[str, ...]
    rng: random.Random

    @property
    def inviters(self) -> list[str]:
        return self.honest.nodes[self.node].inviters

    @property
    def hosts(self) -> bool:
        return any(h.buyer == self.node for h in self.honest.hops)


Maker = Callable[[Situation], Behaviour | None]


@dataclass(frozen=True)
class Kind:
    name: str
    group: str
    what: str  # one line for the docs and the table
    make: Maker
    checks: frozenset[str] = CHECKS
    on_path: bool = False  # deviators must be on the honest resale path (they host)


def _shade(s: Situation) -> Behaviour | None:
    return Behaviour(bid=s.rng.randrange(s.value)) if s.value > 0 else None


def _inflate(s: Situation) -> Behaviour:
    return Behaviour(bid=s.value + s.rng.randint(1, s.top))


def _invite_subset(s: Situation) -> Behaviour | None:
    targets = sorted(set(s.neighbours) - set(s.inviters))
    if not targets:
        return None
    keep = frozenset(t for t in targets if s.rng.random() < 0.5)
    if keep == frozenset(targets):
        keep -= {s.rng.choice(targets)}
    return Behaviour(invite_only=keep)


def _multi(make: Maker) -> Maker:
    """Only for nodes with at least two inviters in the honest run."""
    return lambda s: make(s) if len(s.inviters) >= 2 else None


def _parent(s: Situation) -> Behaviour | None:
    others = [p for p in s.inviters if p != s.honest.nodes[s.node].parent]
    return Behaviour(parent=s.rng.choice(others)) if others else None


def _covered(s: Situation, cover: str) -> Behaviour | None:
    chosen = _parent(s)
    return None if chosen is None else replace(chosen, coin_cover=cover)


def _equivocate(s: Situation) -> Behaviour:
    return Behaviour(equivocate={p: s.rng.randint(0, 2 * s.top) for p in s.inviters})


def _false_reserve(s: Situation) -> Behaviour | None:
    bought = next((h.price for h in s.honest.hops if h.buyer == s.node), None)
    return None if bought is None else Behaviour(false_reserve=bought + s.rng.randint(1, s.top))


KINDS: list[Kind] = [
    Kind("shade", "Thm 5.3", "declare a bid uniform in [0, v)", _shade),
    Kind("inflate", "Thm 5.3", "declare v + uniform [1, top]", _inflate),
    Kind("invite-subset", "Thm 5.3", "invite a random proper subset of the neighbours it would invite", _invite_subset),
    Kind("report-to-all", "Thm 5.3", "Bid to every inviter (nodes with >= 2)",
         _multi(lambda s: Behaviour(report_to_all=True))),
    Kind("aggregate", "Thm 5.3", "stage-2 aggregate uniform in [0, 2 top] (inert: stage 3 never uses it)",
         lambda s: Behaviour(aggregate=s.rng.randint(0, 2 * s.top))),
    Kind("context-low", "beyond", "stage-3 context bid uniform in [0, v]",
         lambda s: Behaviour(context=s.rng.randint(0, s.value))),
    Kind("context-high", "beyond", "stage-3 context bid uniform in (top, 2 top]",
         lambda s: Behaviour(context=s.top + s.rng.randint(1, s.top))),
    Kind("parent-choice", "beyond", "choose the other inviter as parent (nodes with >= 2)", _multi(_parent)),
    Kind("parent-choice-omit", "beyond", "the same; under verifiable coins, list only the inviters the coin "
         "ranks after the chosen one", _multi(lambda s: _covered(s, "omit"))),
    Kind("parent-choice-silent", "beyond", "the same; under verifiable coins, also say nothing to the inviters "
         "the coin ranks first", _multi(lambda s: _covered(s, "silent"))),
    Kind("equivocate", "beyond", "Bid and context bid: a different amount in [0, 2 top] to each inviter",
         _multi(_equivocate)),
    Kind("underbid-low-demand", "Mirage", "S1: declare v/2 when at most 1 invitee answered",
         lambda s: Behaviour(underbid_when_demand_low=LowDemand(Fraction(1, 2), 1))),
    Kind("sybil-2", "Sybil", "split into 2 identities, the value on one", lambda s: Behaviour(split=2)),
    Kind("sybil-3", "Sybil", "split into 3 identities, the value on one", lambda s: Behaviour(split=3)),
    Kind("false-reserve", "attack", "as a host, announce bought + uniform [1, top]", _false_reserve, on_path=True),
    Kind("false-reserve-unchecked", "attack", "the same with the shells' ledger checks off", _false_reserve,
         checks=frozenset(), on_path=True),
    *(Kind(f"silent@{stage}", "fault", f"send nothing from the first {stage} message on",
           lambda s, stage=stage: Behaviour(silent_from=stage)) for stage in MESSAGE_STAGES),
    *(Kind(f"crash@{stage}", "fault", f"crash at the first {stage} message, never restart",
           lambda s, stage=stage: Behaviour(crash_at=stage)) for stage in MESSAGE_STAGES),
    Kind("crash@hop:2", "fault", "crash at its first message of hop 2 or later", lambda s: Behaviour(crash_at="hop:2")),
    Kind("crash@hosting+restart", "fault", "crash on starting to host, restart 2 time units later",
         lambda s: Behaviour(crash_at="hosting", restart_after=2.0), on_path=True),
    Kind("grief", "attack", "context bid top + uniform [1, top] in hop 1, then silent from hop 2",
         lambda s: Behaviour(context=s.top + s.rng.randint(1, s.top), silent_from="hop:2")),
]
KIND_NAMES = [k.name for k in KINDS]
BY_NAME = {k.name: k for k in KINDS}


def pick_deviators(honest: RunResult, kind: Kind, count: int, rng: random.Random) -> list[str]:
    """Up to ``count`` informed buyers: half of them (at least one) from the honest resale path,
    where a deviation can change who sells to whom, the rest drawn from everyone else."""
    informed = sorted(n for n, r in honest.nodes.items() if r.inviters and n != honest.seller)
    path = [h.buyer for h in honest.hops if h.buyer in informed]
    rng.shuffle(path)
    if kind.on_path:
        return path[:count]
    others = [n for n in informed if n not in path]
    rng.shuffle(others)
    head = path[: max(1, count // 2)]
    chosen = head + others[: count - len(head)]
    chosen += path[len(head) :][: count - len(chosen)]  # few others: more from the path
    return chosen
