"""Small auction instances for the deviation sweep: graphs, values, seller, run seed."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

import networkx as nx

from peer.scenario.model import Scenario, explicit_scenario

LETTERS = "abcdefghijklmnopqrtuvwxyz"  # buyers' names: every letter but the seller's "s"

@dataclass(frozen=True)
class Instance:
    """One auction: an undirected graph, true values (the seller's is her reserve), seller, run seed."""

    edges: tuple[tuple[str, str], ...]
    values: tuple[tuple[str, int], ...]
    seller: str
    seed: int
    label: str = ""

    @property
    def value_map(self) -> dict[str, int]:
        return dict(self.values)

    @property
    def nodes(self) -> list[str]:
        return sorted(self.value_map)

    @property
    def size(self) -> tuple[int, int]:
        """(nodes, edges): the order in which counterexamples are compared."""
        return len(self.values), len(self.edges)

    def graph(self) -> nx.Graph:
        graph = nx.Graph()
        graph.add_nodes_from(self.value_map)
        graph.add_edges_from(self.edges)
        return graph

    def scenario(self) -> Scenario:
        return explicit_scenario(list(self.edges), self.value_map, seller=self.seller, seed=self.seed, name="dev")

    def describe(self) -> str:
        edges = " ".join(f"{u}-{v}" for u, v in self.edges)
        values = " ".join(f"{n}={v}" for n, v in self.values)
        return f"edges [{edges}] values [{values}] seller {self.seller} seed {self.seed}"


def make_instance(graph: nx.Graph, seller: object, values: dict[object, int], seed: int, label: str = "") -> Instance:
    """Name the seller ``s`` and the buyers ``a``, ``b``, ... in the order of the graph's node ids."""
    others = sorted((n for n in graph.nodes if n != seller), key=repr)
    names = {seller: "s", **{n: LETTERS[i] for i, n in enumerate(others)}}
    edges = tuple(sorted(tuple(sorted((names[u], names[v]))) for u, v in graph.edges))
    vals = tuple(sorted((names[n], values[n]) for n in graph.nodes))
    return Instance(edges=edges, values=vals, seller="s", seed=seed, label=label)  # type: ignore[arg-type]


def value_profile(kind: str, buyers: int, rng: random.Random) -> list[int]:
    """Buyers' values: ``distinct`` (a permutation of 2, 4, ..., 2n: room to bid in between) or ``ties`` (0..3)."""
    if kind == "distinct":
        vals = [2 * (i + 1) for i in range(buyers)]
        rng.shuffle(vals)
        return vals
    if kind == "ties":
        return [rng.randint(0, 3) for _ in range(buyers)]
    raise ValueError(f"unknown value profile {kind!r}")


def connected_atlas(min_nodes: int, max_nodes: int) -> Iterator[tuple[int, nx.Graph]]:
    """(atlas index, graph) of every connected graph of the atlas with min..max nodes (max <= 7)."""
    for index, graph in enumerate(nx.graph_atlas_g()):
        n = graph.number_of_nodes()
        if min_nodes <= n <= max_nodes and nx.is_connected(graph):
            yield index, graph


def random_connected(n: int, rng: random.Random) -> nx.Graph:
    """A connected graph on n nodes: a random tree plus random extra edges (seeded)."""
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    for v in range(1, n):
        graph.add_edge(v, rng.randrange(v))
    for u, v in itertools.combinations(range(n), 2):
        if not graph.has_edge(u, v) and rng.random() < 0.25:
            graph.add_edge(u, v)
    return graph
