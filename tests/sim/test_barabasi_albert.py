"""The direct Barabási–Albert builder gives networkx's graph, relabelled to strings, exactly.

Exactly means the same nodes in the same order and every adjacency in the same
order (which decides networkx's edge order and any walk over the graph), so a
scenario built with it runs as it did with networkx's generator.
"""

from __future__ import annotations

import networkx as nx
import pytest

from peer.scenario.barabasi_albert import barabasi_albert_strings
from peer.scenario.graphs import as_string_graph
from peer.scenario.load import parse_scenario


@pytest.mark.parametrize(("n", "m", "seed"), [(2, 1, 0), (10, 1, 4), (60, 3, 7), (500, 5, 11), (3000, 3, 3)])
def test_same_graph_and_order_as_networkx(n: int, m: int, seed: int) -> None:
    expected = as_string_graph(nx.barabasi_albert_graph(n, m, seed=seed))
    got = barabasi_albert_strings(n, m, seed)
    assert list(got.nodes) == list(expected.nodes)
    assert {u: list(got.adj[u]) for u in got} == {u: list(expected.adj[u]) for u in expected}
    assert list(got.edges) == list(expected.edges)
    assert got.number_of_edges() == expected.number_of_edges()


def test_the_graph_is_an_ordinary_mutable_networkx_graph() -> None:
    graph = barabasi_albert_strings(30, 2, 1)
    graph.add_edge("0", "new")
    graph["0"]["new"]["weight"] = 2
    assert graph.degree("new") == 1 and graph.edges["new", "0"]["weight"] == 2
    assert graph.nodes["new"] == {}


def test_bad_parameters_fail_like_networkx() -> None:
    with pytest.raises(nx.NetworkXError, match="m >= 1 and m < n"):
        barabasi_albert_strings(3, 3, 0)
    text = 'seller = "max_degree"\n[graph]\ngenerator = "barabasi_albert"\nn = 3\nm = 3\n'
    with pytest.raises(Exception, match="m >= 1 and m < n"):
        parse_scenario(text)
