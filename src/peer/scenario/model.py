"""The validated, in-memory form of a scenario file."""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from peer.sra.machine import HONEST, Behaviour


@dataclass(frozen=True)
class Scenario:
    """Everything a run needs.  Node ids are strings; values are minor units."""

    name: str
    seed: int
    seller: str
    graph: nx.Graph
    values: dict[str, int]
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    source: str = "<memory>"

    def neighbours(self, node: str) -> list[str]:
        return sorted(self.graph.neighbors(node))

    def behaviour(self, node: str) -> Behaviour:
        return self.behaviours.get(node, HONEST)

    def depths(self) -> dict[str, int]:
        """Hop distance from the seller of every node that can be reached."""
        return dict(nx.single_source_shortest_path_length(self.graph, self.seller))

    def with_values(self, values: dict[str, int]) -> Scenario:
        return Scenario(self.name, self.seed, self.seller, self.graph, values, self.behaviours, self.source)

    def with_behaviours(self, behaviours: dict[str, Behaviour]) -> Scenario:
        return Scenario(self.name, self.seed, self.seller, self.graph, self.values, behaviours, self.source)


def explicit_scenario(
    edges: list[tuple[str, str]], values: dict[str, int], *, seller: str, seed: int = 0, name: str = "inline"
) -> Scenario:
    """Build a scenario in code (tests, experiments)."""
    graph = nx.Graph()
    graph.add_nodes_from(values)
    graph.add_edges_from(edges)
    return Scenario(name=name, seed=seed, seller=seller, graph=graph, values=dict(values))
