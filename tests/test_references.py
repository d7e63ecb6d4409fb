"""The centralized references on examples computed by hand from the papers' definitions.

Values are written in whole units and converted with ``M`` (10**6 minor units).
"""

from __future__ import annotations

import random
from collections import Counter
from fractions import Fraction

import networkx as nx
import pytest
from scipy import stats

from peer.money import SCALE as M
from peer.reference.crm import crm, diffusion_path
from peer.reference.idm import idm
from peer.reference.spanning import count_spanning_trees, enumerate_spanning_trees, wilson_tree
from peer.reference.vcg import vcg_neighbours
from peer.result import Hop
from peer.scenario.model import explicit_scenario
from peer.sim.run import simulate


def graph(*edges: tuple[str, str], nodes: tuple[str, ...] = ()) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    return g


def units(**values: int) -> dict[str, int]:
    return {k: v * M for k, v in values.items()}


# ----------------------------------------------------------------------------- VCG among neighbours


def test_vcg_neighbours_is_second_price_among_the_sellers_neighbours() -> None:
    g = graph(("s", "a"), ("s", "b"), ("s", "c"), ("a", "d"))
    values = units(s=0, a=3, b=7, c=5, d=100)  # d is no neighbour: it cannot take part
    result = vcg_neighbours(g, "s", values, seed=0)
    assert result.hops == [Hop(1, "s", "b", 5 * M)]
    assert result.winner == "b"
    assert result.revenue == 5 * M
    assert result.utilities == {"s": 5 * M, "a": 0, "b": 2 * M, "c": 0, "d": 0}


def test_vcg_neighbours_reserve() -> None:
    g = graph(("s", "a"), ("s", "b"), ("s", "c"))
    floor = vcg_neighbours(g, "s", units(s=6, a=3, b=7, c=5), seed=0)
    assert floor.hops == [Hop(1, "s", "b", 6 * M)]
    assert floor.utilities["b"] == 1 * M
    kept = vcg_neighbours(g, "s", units(s=8, a=3, b=7, c=5), seed=0)
    assert kept.hops == [] and kept.winner == "s" and kept.revenue == 0


# ----------------------------------------------------------------------------- IDM


def test_idm_rewards_the_critical_ancestors() -> None:
    # c (10) is the highest bidder; every s..c path passes a and b.  y is reached both
    # through a and through x, so a dominates {a, b, c, e}, b dominates {b, c, e}.
    g = graph(("s", "a"), ("a", "b"), ("b", "c"), ("b", "e"), ("s", "x"), ("a", "y"), ("x", "y"))
    values = units(s=0, a=1, b=2, c=10, e=7, x=4, y=5)
    result = idm(g, "s", values, seed=0)
    # outside D(a) = {x 4, y 5}: 5; outside D(b) = {a 1, x 4, y 5}: 5; outside D(c): 7 (e).
    assert result.hops == [Hop(1, "s", "a", 5 * M), Hop(2, "a", "b", 5 * M), Hop(3, "b", "c", 7 * M)]
    assert result.winner == "c"
    assert result.revenue == 5 * M
    assert result.utilities == {"s": 5 * M, "a": 0, "b": 2 * M, "c": 3 * M, "e": 0, "x": 0, "y": 0}


def test_idm_critical_ancestor_keeps_when_highest_without_the_next_dominated_set() -> None:
    # b (8) is the highest; only a is critical for it (d is reached through c as well).
    g = graph(("s", "a"), ("s", "c"), ("a", "b"), ("a", "d"), ("c", "d"))
    values = units(s=0, a=3, b=8, c=2, d=1)
    result = idm(g, "s", values, seed=0)
    # outside D(a) = {c 2, d 1}: a pays 2; outside D(b) = {a 3, c 2, d 1}: a's 3 is the highest.
    assert result.hops == [Hop(1, "s", "a", 2 * M)]
    assert result.winner == "a"
    assert result.utilities == {"s": 2 * M, "a": 1 * M, "b": 0, "c": 0, "d": 0}


def test_idm_without_critical_ancestors_is_second_price() -> None:
    g = graph(("s", "a"), ("s", "b"), ("a", "b"), ("b", "c"), ("a", "c"))
    values = units(s=0, a=1, b=2, c=9)
    result = idm(g, "s", values, seed=0)
    assert result.hops == [Hop(1, "s", "c", 2 * M)]
    assert result.utilities["c"] == 7 * M


# ----------------------------------------------------------------------------- CRM


TREE_EDGES = [("s", "a"), ("s", "c"), ("a", "b"), ("a", "d")]
TREE_VALUES = units(s=0, a=3, b=8, c=2, d=6)


def test_crm_on_a_tree() -> None:
    # z = b, path s-a-b.  v1st(T - a) = c's 2: a buys at 2.  v1st(T - b) = max(a 3, c 2, d 6) = 6 > 3:
    # a resells to b at 6.  a gains 6 - 2 = 4, b gains 8 - 6 = 2, s gets 2.
    result = crm(graph(*TREE_EDGES), "s", TREE_VALUES, seed=0)
    assert result.extra["trees"] == 1 and result.extra["trees_exact"] is True
    assert result.utilities == {"s": 2 * M, "a": 4 * M, "b": 2 * M, "c": 0, "d": 0}
    assert result.revenue == 2 * M
    assert result.extra["win_probability"] == {"b": 1}


def test_on_a_tree_crm_idm_and_the_distributed_sra_agree() -> None:
    expected = {"s": 2 * M, "a": 4 * M, "b": 2 * M, "c": 0, "d": 0}
    assert idm(graph(*TREE_EDGES), "s", TREE_VALUES, seed=0).utilities == expected
    run, _ = simulate(explicit_scenario(TREE_EDGES, TREE_VALUES, seller="s", seed=3))
    assert run.utilities == expected
    assert run.hops == [Hop(1, "s", "a", 2 * M), Hop(2, "a", "b", 6 * M)]


def test_crm_on_a_triangle_averages_over_its_three_trees() -> None:
    # z = b.  Tree {sa, sb}: b pays v1st(T - b) = 3.  Tree {sa, ab}: path s-a-b has the back-edge
    # s-b, shortened to s-b; b pays 3.  Tree {sb, ab}: a hangs below b, b pays 0.
    result = crm(graph(("s", "a"), ("s", "b"), ("a", "b")), "s", units(s=0, a=3, b=8), seed=0)
    assert result.extra["trees"] == 3
    assert result.utilities == {"s": 2 * M, "a": 0, "b": 6 * M}
    assert result.revenue == 2 * M
    assert result.extra["win_probability"] == {"b": 1}


C4 = [("s", "a"), ("a", "b"), ("b", "c"), ("c", "s")]
C4_VALUES = units(s=0, a=5, b=9, c=2)
# The four spanning trees of the square s-a-b-c-s (z = b), dropping one edge each:
#   drop s-a: s-c-b-a, path s-c-b: c buys at 0, v1st(T-b) = 2 = c's value: c keeps (u_c 2)
#   drop a-b: s-a, s-c-b:  c buys at 5, resells to b at max(a 5, c 2) = 5 (u_b 4, s 5)
#   drop b-c: s-a-b, s-c:  a buys at 2, v1st(T-b) = 5 = a's value: a keeps (u_a 3, s 2)
#   drop c-s: s-a-b-c:     a buys at 0, keeps (u_a 5)
C4_EXPECTED = {"s": Fraction(7, 4) * M, "a": 2 * M, "b": 1 * M, "c": Fraction(1, 2) * M}


def test_crm_on_a_square_rewards_both_sides() -> None:
    result = crm(graph(*C4), "s", C4_VALUES, seed=0)
    assert result.extra["trees"] == 4 and result.extra["trees_exact"] is True
    assert result.utilities == C4_EXPECTED
    assert result.revenue == Fraction(7, 4) * M
    probs = {n: float(p) for n, p in result.extra["win_probability"].items()}
    assert probs == {"a": 0.5, "b": 0.25, "c": 0.25}


def test_crm_sampled_with_wilson_approaches_the_exact_average() -> None:
    result = crm(graph(*C4), "s", C4_VALUES, seed=4, trees=4000, enumerate_limit=2)
    assert result.extra["trees"] == 4000 and result.extra["trees_exact"] is False
    for node, exact in C4_EXPECTED.items():
        assert abs(float(result.utilities[node] - exact)) < 0.15 * M, node


def test_crm_ignores_nodes_the_seller_cannot_reach() -> None:
    g = graph(*C4, ("x", "y"))
    result = crm(g, "s", {**C4_VALUES, "x": 100 * M, "y": 50 * M}, seed=0)
    assert result.utilities == {**C4_EXPECTED, "x": 0, "y": 0}


def test_diffusion_path_removes_back_edges_greedily() -> None:
    adjacency = {n: set(nx.path_graph(["s", "a", "b", "c", "d"]).neighbors(n)) for n in "sabcd"}
    assert diffusion_path(["s", "a", "b", "c", "d"], adjacency) == ["s", "a", "b", "c", "d"]
    adjacency["s"].add("c")
    adjacency["c"].add("s")
    assert diffusion_path(["s", "a", "b", "c", "d"], adjacency) == ["s", "c", "d"]


# ----------------------------------------------------------------------------- spanning trees


SMALL_GRAPHS = {
    "K4": nx.complete_graph(4),
    "K5": nx.complete_graph(5),
    "C6": nx.cycle_graph(6),
    "diamond": nx.diamond_graph(),
    "petersen": nx.petersen_graph(),
    "grid3x3": nx.grid_2d_graph(3, 3),
    "wheel6": nx.wheel_graph(6),
    "tree": nx.balanced_tree(2, 3),
    "ladder4": nx.ladder_graph(4),
    **{f"gnp{seed}": nx.gnp_random_graph(8, 0.5, seed=seed) for seed in range(4)},
}


def relabelled(g: nx.Graph) -> nx.Graph:
    return nx.relabel_nodes(g, {n: str(n) for n in g.nodes})


@pytest.mark.parametrize("name", sorted(SMALL_GRAPHS))
def test_kirchhoff_count_matches_networkx(name: str) -> None:
    g = relabelled(SMALL_GRAPHS[name])
    assert count_spanning_trees(g) == round(nx.number_of_spanning_trees(g))


def test_known_spanning_tree_counts() -> None:
    assert count_spanning_trees(nx.complete_graph(6)) == 6**4  # Cayley
    assert count_spanning_trees(nx.cycle_graph(7)) == 7
    assert count_spanning_trees(nx.petersen_graph()) == 2000
    assert count_spanning_trees(graph(("a", "b"), ("c", "d"))) == 0  # disconnected
    assert count_spanning_trees(graph(nodes=("a",))) == 1
    assert count_spanning_trees(nx.complete_graph(5), limit=100) == 101
    assert count_spanning_trees(nx.complete_graph(5), limit=125) == 125


@pytest.mark.parametrize("name", ["K4", "C6", "diamond", "grid3x3", "wheel6", "ladder4", "gnp1"])
def test_enumeration_yields_every_spanning_tree_once(name: str) -> None:
    g = relabelled(SMALL_GRAPHS[name])
    root = min(g.nodes)
    trees = []
    for parents in enumerate_spanning_trees(g, root):
        assert set(parents) == set(g.nodes)
        assert parents[root] is None
        edges = frozenset(frozenset((n, p)) for n, p in parents.items() if p is not None)
        assert len(edges) == g.number_of_nodes() - 1
        assert all(g.has_edge(*e) for e in edges)
        assert nx.is_tree(nx.Graph([tuple(e) for e in edges]))
        trees.append(edges)
    assert len(trees) == len(set(trees)) == count_spanning_trees(g)


def test_wilson_samples_are_uniform_on_a_cycle_with_a_chord() -> None:
    g = relabelled(nx.cycle_graph(8))
    g.add_edge("0", "4")  # two 5-cycles sharing the chord: 5 * 5 - 1 = 24 spanning trees
    expected_trees = count_spanning_trees(g)
    assert expected_trees == 24
    adjacency = {n: sorted(g.neighbors(n)) for n in g.nodes}
    rng = random.Random(20240501)
    samples = 250 * expected_trees
    counts: Counter[frozenset] = Counter()
    for _ in range(samples):
        parents = wilson_tree(adjacency, "0", rng)
        assert parents["0"] is None and set(parents) == set(g.nodes)
        counts[frozenset(frozenset((n, p)) for n, p in parents.items() if p is not None)] += 1
    assert len(counts) == expected_trees
    result = stats.chisquare(list(counts.values()))
    assert result.pvalue > 0.001, result


def test_wilson_samples_are_uniform_on_a_graph_with_eight_trees() -> None:
    g = relabelled(nx.diamond_graph())  # K4 minus an edge: 8 spanning trees
    assert count_spanning_trees(g) == 8
    adjacency = {n: sorted(g.neighbors(n)) for n in g.nodes}
    rng = random.Random(7)
    counts: Counter[frozenset] = Counter()
    for _ in range(4000):
        parents = wilson_tree(adjacency, "1", rng)
        counts[frozenset(frozenset((n, p)) for n, p in parents.items() if p is not None)] += 1
    assert len(counts) == 8
    assert stats.chisquare(list(counts.values())).pvalue > 0.001
