"""Cluster membership: explicit or computed alike by every node."""

from __future__ import annotations

import random

import networkx as nx
import pytest

from peer.qpq.clusters import Membership, auto_membership, chunk_membership, default_k, explicit_membership


def _relabelled(graph: nx.Graph, seed: int) -> nx.Graph:
    """The same graph with nodes and edges inserted in another order."""
    rng = random.Random(seed)
    nodes, edges = list(graph.nodes), list(graph.edges)
    rng.shuffle(nodes)
    rng.shuffle(edges)
    out = nx.Graph()
    out.add_nodes_from(nodes)
    out.add_edges_from((v, u) if rng.random() < 0.5 else (u, v) for u, v in edges)
    return out


def test_every_node_derives_the_same_membership() -> None:
    graph = nx.relabel_nodes(nx.barabasi_albert_graph(200, 3, seed=4), str)
    first = auto_membership(graph, seed=9)
    for shuffle in range(3):
        assert auto_membership(_relabelled(graph, shuffle), seed=9) == first
    assert first.digest == auto_membership(graph, seed=9).digest


def test_auto_rebalances_towards_sqrt_n_equal_clusters() -> None:
    graph = nx.relabel_nodes(nx.connected_watts_strogatz_graph(150, 6, 0.1, seed=2), str)
    m = auto_membership(graph, seed=1)
    assert m.k == default_k(150) == 12
    sizes = [m.size(c) for c in m.ids]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 150
    # Mostly local: far more intra-cluster edges than a random split of the same sizes would give.
    inside = sum(1 for u, v in graph.edges if m.cluster_of[u] == m.cluster_of[v])
    assert inside / graph.number_of_edges() > 0.5


def test_auto_with_explicit_k_and_trivial_k() -> None:
    graph = nx.relabel_nodes(nx.karate_club_graph(), str)
    assert auto_membership(graph, seed=0, k=3).k == 3
    assert auto_membership(graph, seed=0, k=1).clusters == {"c0": tuple(sorted(graph.nodes))}


def test_explicit_and_chunks() -> None:
    m = explicit_membership({"b": "x", "a": "x", "c": "y"})
    assert m.clusters == {"x": ("a", "b"), "y": ("c",)} and m.cluster_of["c"] == "y"
    m = chunk_membership([f"n{i}" for i in range(10)], 3)
    assert [m.size(c) for c in m.ids] == [4, 3, 3]
    with pytest.raises(ValueError):
        chunk_membership(["a"], 2)


def test_membership_invariants() -> None:
    with pytest.raises(ValueError):
        Membership({"a": ("x",), "b": ("x",)})
    with pytest.raises(ValueError):
        Membership({"a": ("y", "x")})
    with pytest.raises(ValueError):
        Membership({"b": ("x",), "a": ("y",)})
