"""Graphs a scenario can name: networkx generators and networkx's real social networks.

Every graph is relabelled to string node ids; generators take an explicit seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import networkx as nx

# name -> (builder(params, seed), required parameter names)
GENERATORS: dict[str, tuple[Callable[[dict[str, Any], int], nx.Graph], tuple[str, ...]]] = {
    "barabasi_albert": (lambda p, s: nx.barabasi_albert_graph(p["n"], p["m"], seed=s), ("n", "m")),
    "watts_strogatz": (
        lambda p, s: nx.connected_watts_strogatz_graph(p["n"], p["k"], p["p"], seed=s),
        ("n", "k", "p"),
    ),
    "erdos_renyi": (lambda p, s: nx.gnp_random_graph(p["n"], p["p"], seed=s), ("n", "p")),
    "random_tree": (lambda p, s: nx.random_labeled_tree(p["n"], seed=s), ("n",)),
}

DATASETS: dict[str, Callable[[], nx.Graph]] = {
    "karate_club": nx.karate_club_graph,
    "les_miserables": nx.les_miserables_graph,
    "florentine_families": nx.florentine_families_graph,
    "davis_southern_women": nx.davis_southern_women_graph,
}


def as_string_graph(graph: nx.Graph) -> nx.Graph:
    """A plain undirected simple graph on string ids, without the source's attributes."""
    out = nx.Graph()
    out.add_nodes_from(str(n) for n in graph.nodes)
    out.add_edges_from((str(u), str(v)) for u, v in graph.edges if u != v)
    return out
