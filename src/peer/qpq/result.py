"""What a QPQ run produces: allocations, utilities, flags, traffic."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from peer.qpq.ledger import AllocationEntry
from peer.qpq.setup import QpqSetup
from peer.qpq.traffic import Traffic, direct_values, mqpq_values

FlagKey = tuple[int, int, str, str]  # (round, level, member or cluster, reason)


@dataclass
class QpqRun:
    setup: QpqSetup
    mode: str
    rounds: int
    measure_from: int = 0  # utilities count from this round on (a warm-up fills the windows)
    seconds: float = 0.0
    winners: list[str] = field(default_factory=list)
    won_values: list[float] = field(default_factory=list)  # per round: the winner's true normalised value (0: none)
    wins: Counter[str] = field(default_factory=Counter)
    utility: Counter[str] = field(default_factory=Counter)  # sum of normalised values won, measured rounds
    replaced: Counter[str] = field(default_factory=Counter)  # cluster-level test failures per node, measured rounds
    winner_replaced: int = 0  # winner-level test failures, measured rounds
    flags: set[FlagKey] = field(default_factory=set)
    traffic: Traffic = field(default_factory=Traffic)
    entries: list[AllocationEntry] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (receiver, reason), machines mode
    disagreements: int = 0  # rounds in which nodes recorded different entries (machines mode)

    @property
    def measured_rounds(self) -> int:
        return max(self.rounds - self.measure_from, 0)

    def flag_counts(self) -> Counter[str]:
        return Counter(reason for _, _, _, reason in self.flags)

    def mean_utility(self, nodes: list[str] | tuple[str, ...]) -> float:
        """Mean normalised utility per player and measured round over ``nodes``."""
        if not nodes or not self.measured_rounds:
            return float("nan")
        return sum(self.utility[n] for n in nodes) / (len(nodes) * self.measured_rounds)

    def group_series(self, nodes: list[str] | tuple[str, ...]) -> list[float]:
        """Per measured round: the group's utility per player (for standard errors across rounds)."""
        members = set(nodes)
        size = max(len(members), 1)
        return [
            (v / size if w in members else 0.0)
            for w, v in zip(self.winners[self.measure_from:], self.won_values[self.measure_from:])
        ]

    def by_profile(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for node in self.setup.membership.nodes:
            groups.setdefault(self.setup.profile(node).spec, []).append(node)
        return groups

    def to_json(self) -> dict[str, object]:
        m = self.setup.membership
        sizes = [m.size(c) for c in m.ids]
        r = max(self.rounds, 1)
        groups = self.by_profile()
        return {
            "scenario": self.setup.name, "mode": self.mode, "seed": self.setup.seed, "n": m.n, "k": m.k,
            "cluster_sizes": sizes, "rounds": self.rounds, "measure_from": self.measure_from,
            "seconds": round(self.seconds, 3),
            "profiles": {
                spec: {"players": len(nodes), "mean_utility": self.mean_utility(nodes),
                       "wins": sum(self.wins[x] for x in nodes),
                       "replaced": sum(self.replaced[x] for x in nodes)}
                for spec, nodes in groups.items()
            },
            "honest_theory": 1 / (m.n + 1), "failing_theory": 1 / (2 * m.n),
            "unallocated": sum(1 for w in self.winners if not w),
            "winner_level_replaced": self.winner_replaced,
            "flags": dict(sorted(self.flag_counts().items())),
            "traffic_per_resource": self.traffic.per_round(r),
            "paper_values_per_resource": mqpq_values(sizes),
            "direct_values_full_round": direct_values(sizes),
            "ledger_head": self.entries[-1].hash if self.entries else None,
            "rejected": len(self.rejected), "disagreements": self.disagreements,
        }
