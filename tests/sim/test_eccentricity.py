"""The depth bound's BFS gives networkx's eccentricity from the seller, connected or not."""

from __future__ import annotations

import networkx as nx
import pytest

from peer.scenario.barabasi_albert import barabasi_albert_strings
from peer.sim.run import eccentricity


@pytest.mark.parametrize("seed", range(20))
def test_the_largest_distance_is_networkx_s(seed: int) -> None:
    graph = nx.relabel_nodes(nx.gnp_random_graph(80, 0.01 + seed / 400, seed=seed), str)  # often disconnected
    for source in ("0", "7", "42"):
        want = max(nx.single_source_shortest_path_length(graph, source).values())
        assert eccentricity(graph, source) == want


def test_a_lone_node_and_a_missing_one() -> None:
    graph = nx.Graph()
    graph.add_node("a")
    assert eccentricity(graph, "a") == 0
    with pytest.raises(nx.NodeNotFound):
        eccentricity(graph, "b")


def test_the_bench_graph() -> None:
    graph = barabasi_albert_strings(3000, 3, 3)
    seller = max(sorted(graph), key=graph.degree)
    assert eccentricity(graph, seller) == max(nx.single_source_shortest_path_length(graph, seller).values())
