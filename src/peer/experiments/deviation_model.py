"""The data of the deviation sweep: a deviation, one run of it, a finding, per-kind counters.

Kept apart from :mod:`peer.experiments.deviations` (the harness) so that the
modules stay small; everything here is re-exported there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from peer.experiments.deviation_instances import Instance
from peer.result import Hop, RunResult
from peer.sra.machine import HONEST, Behaviour

# Kinds in the order of the table; the flag says whether the paper's proof of Thm 5.3 covers it.
KINDS: dict[str, bool] = {
    "shade": True,
    "inflate": True,
    "invite-subset": True,
    "report-to-all": True,
    "aggregate-low": True,
    "aggregate-high": True,
    "context-low": False,
    "context-high": False,
    "parent-choice": False,
}


@dataclass(frozen=True)
class Deviation:
    """One unilateral deviation of one node.  Exactly one of the fields besides ``kind`` is set."""

    kind: str
    behaviour: Behaviour = HONEST
    context: int | None = None  # stage-3 context bid to report
    parent: str | None = None  # inviter to choose as parent

    @property
    def effective(self) -> Behaviour:
        """The node's whole behaviour: ``behaviour`` with ``context`` and ``parent`` folded in."""
        if self.context is None and self.parent is None:
            return self.behaviour
        return replace(self.behaviour, context=self.context, parent=self.parent)

    def describe(self) -> str:
        b = self.behaviour
        if self.kind in ("shade", "inflate"):
            return f"bid {b.bid}"
        if self.kind == "invite-subset":
            return "invite only {" + ",".join(sorted(b.invite_only or ())) + "}"
        if self.kind == "report-to-all":
            return "bid to every inviter"
        if self.kind.startswith("aggregate"):
            return f"stage-2 aggregate {b.aggregate}"
        if self.kind.startswith("context"):
            return f"stage-3 context bid {self.context}"
        if self.kind == "parent-choice":
            return f"parent {self.parent}"
        return self.kind


@dataclass(frozen=True)
class Play:
    """One run: the result, every node's realised parents (several only under
    report-to-all), who rejected which message, and stage-2 timeouts (invitees
    some node gave up waiting for)."""

    result: RunResult
    parents: dict[str, tuple[str, ...]]
    rejections: tuple[str, ...]  # the receiver of every rejected message
    timeouts: int

    def rejected_by_others(self, node: str | None) -> int:
        """Messages rejected by nodes other than ``node`` (the deviator): a deviation others can see."""
        return sum(r != node for r in self.rejections)


@dataclass(frozen=True)
class Outcome:
    """What one run did, compactly: resale path, winner, the deviator's utility."""

    hops: tuple[Hop, ...]
    winner: str | None
    utility: int
    parents: tuple[tuple[str, str], ...]  # (node, parent) for every node with exactly one parent

    @staticmethod
    def of(p: Play, node: str) -> Outcome:
        parents = tuple(sorted((n, ps[0]) for n, ps in p.parents.items() if len(ps) == 1))
        return Outcome(tuple(p.result.hops), p.result.winner, int(p.result.utilities[node]), parents)

    def path(self) -> str:
        if not self.hops:
            return f"{self.winner} keeps"
        steps = " ".join(f"{h.seller}->{h.buyer}@{h.price}" for h in self.hops)
        return f"{steps}; {self.winner} keeps"


@dataclass(frozen=True)
class Finding:
    """A profitable deviation: utilities are computed with the deviator's TRUE value.

    ``timeouts``: invitees that some node gave up waiting for, in the honest
    and deviant runs together.  A gain with timeouts depends on the
    implementation's timing, not only on the mechanism.
    """

    instance: Instance
    node: str
    deviation: Deviation
    honest: Outcome
    deviant: Outcome
    replay_agrees: bool  # the deviant run equals a central replay on its realised tree
    rejected: int  # protocol messages the honest nodes rejected (a detectable deviation)
    timeouts: int = 0

    @property
    def gain(self) -> int:
        return self.deviant.utility - self.honest.utility

    @property
    def category(self) -> str:
        """``mechanism``: the deviant run equals its replay and nobody timed out; ``timeout``: some node
        gave up waiting (the gain depends on timing); ``artefact``: the run disagrees with its replay."""
        if not self.replay_agrees:
            return "artefact"
        if self.timeouts:
            return "timeout"
        return "mechanism"

    @property
    def key(self) -> tuple[int, int, int, str]:
        n, m = self.instance.size
        return n, m, sum(v for _, v in self.instance.values), self.instance.describe()


def gain(honest: Play, deviant: Play, node: str) -> int:
    """The deviator's utility gain; both utilities come from the runs' declared outcomes and TRUE values."""
    return int(deviant.result.utilities[node]) - int(honest.result.utilities[node])


CATEGORIES = ("mechanism", "timeout", "artefact")


@dataclass
class KindStats:
    tried: int = 0
    profitable: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    max_gain: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    aborted: int = 0  # runs that did not reach a consistent end (SimulationError)
    rejected_runs: int = 0  # runs in which some honest node rejected a message
    changed: int = 0  # runs whose resale path or winner differ from honest play

    def add(self, other: KindStats) -> None:
        self.tried += other.tried
        self.changed += other.changed
        self.aborted += other.aborted
        self.rejected_runs += other.rejected_runs
        for c in CATEGORIES:
            self.profitable[c] += other.profitable[c]
            self.max_gain[c] = max(self.max_gain[c], other.max_gain[c])


@dataclass
class InstanceReport:
    stats: dict[str, KindStats] = field(default_factory=lambda: {k: KindStats() for k in KINDS})
    findings: list[Finding] = field(default_factory=list)
    honest_replay_mismatches: list[Instance] = field(default_factory=list)

    def merge(self, other: InstanceReport) -> None:
        for kind, s in other.stats.items():
            self.stats[kind].add(s)
        self.findings.extend(other.findings)
        self.honest_replay_mismatches.extend(other.honest_replay_mismatches)
