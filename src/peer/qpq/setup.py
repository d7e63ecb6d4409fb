"""A QPQ run's inputs, independent of where they came from (a TOML scenario or an experiment)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from peer.qpq.clusters import Membership
from peer.qpq.machine import QpqConfig
from peer.qpq.preferences import HONEST, UNIFORM, Distribution, Profile, preferences


@dataclass(frozen=True)
class QpqSetup:
    name: str
    seed: int
    membership: Membership
    config: QpqConfig = field(default_factory=QpqConfig)
    rounds: int = 1000
    distributions: Mapping[str, Distribution] = field(default_factory=dict)  # absent: uniform(0, 1)
    profiles: Mapping[str, Profile] = field(default_factory=dict)  # absent: honest
    stream: str = "resources"
    graph: nx.Graph | None = None
    source: str = "<memory>"

    def __post_init__(self) -> None:
        nodes = self.membership.cluster_of
        for table in (self.profiles, self.distributions):
            unknown = sorted(set(table) - set(nodes))
            if unknown:
                raise ValueError(f"{unknown[0]!r} is not a member")

    def profile(self, node: str) -> Profile:
        return self.profiles.get(node, HONEST)

    def distribution(self, node: str) -> Distribution:
        return self.distributions.get(node, UNIFORM)

    def profile_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.membership.nodes:
            spec = self.profile(node).spec
            counts[spec] = counts.get(spec, 0) + 1
        return counts


def preference_block(setup: QpqSetup, first: int, count: int) -> np.ndarray:
    """Fixed-point normalised preferences, one row per node (membership order), one column per round."""
    nodes = setup.membership.nodes
    out = np.empty((len(nodes), count), dtype=np.int64)
    for i, node in enumerate(nodes):
        _, out[i] = preferences(setup.distribution(node), setup.seed, node, first, count)
    return out
