"""Sybil splitting: a deterministic scenario transformation, and the split node's total utility."""

from __future__ import annotations

import pytest

from peer.scenario.model import explicit_scenario
from peer.sim.run import simulate
from peer.sim.sybil import apply_splits, split_node
from peer.sra.machine import HONEST, Behaviour

EDGES = [("s", "a"), ("s", "b"), ("a", "x"), ("b", "x"), ("x", "c"), ("x", "d"), ("c", "d")]
VALUES = {"s": 0, "a": 1, "b": 2, "x": 9, "c": 3, "d": 4}
SCENARIO = explicit_scenario(EDGES, VALUES, seller="s", seed=1)


def _edges(scenario: object) -> set[frozenset[str]]:
    return {frozenset(e) for e in scenario.graph.edges}  # type: ignore[attr-defined]


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_split_deals_the_edges_round_robin_and_chains_the_identities(k: int) -> None:
    split, names = split_node(SCENARIO, "x", k, seed=4)
    assert names == [f"x#{i}" for i in range(1, k + 1)] and "x" not in split.graph
    external = {n: sum(v not in names for v in split.graph.neighbors(n)) for n in names}
    assert sorted(external.values()) == sorted(4 // k + (i < 4 % k) for i in range(k))  # x had 4 neighbours
    assert split.graph.number_of_edges() == len(EDGES) + (k - 1)  # x's 4 edges dealt out, k - 1 between identities
    assert all(split.graph.has_edge(u, v) for u, v in zip(names, names[1:]))
    assert {split.values[n] for n in names} == {9}
    assert split.behaviour(names[0]) == HONEST and all(split.behaviour(n) == Behaviour(bid=0) for n in names[1:])


def test_split_is_deterministic_per_seed_and_the_seed_matters() -> None:
    assert _edges(split_node(SCENARIO, "x", 2, seed=4)[0]) == _edges(split_node(SCENARIO, "x", 2, seed=4)[0])
    assert len({frozenset(_edges(split_node(SCENARIO, "x", 2, seed=s)[0])) for s in range(10)}) > 1


def test_split_keeps_the_nodes_other_deviations_on_its_first_identity_and_refuses_the_seller() -> None:
    scenario = SCENARIO.with_behaviours({"x": Behaviour(split=2, context=5)})
    split, sybils = apply_splits(scenario, seed=1)
    assert sybils == {"x": ["x#1", "x#2"]}
    assert split.behaviour("x#1") == Behaviour(context=5)
    with pytest.raises(ValueError):
        split_node(SCENARIO, "s", 2, seed=1)
    clash = explicit_scenario([*EDGES, ("x#1", "c")], {**VALUES, "x#1": 0}, seller="s")
    assert split_node(clash, "x", 2, seed=1)[1] == ["x##1", "x##2"]


def test_simulate_splits_and_reports_the_total_utility_of_the_identities() -> None:
    honest, _ = simulate(SCENARIO)
    result, _ = simulate(SCENARIO.with_behaviours({"x": Behaviour(split=2)}))
    ids = result.extra["sybils"]["x"]
    assert ids == ["x#1", "x#2"] and result.extra["status"] == "completed"
    total = sum(result.utilities[i] for i in ids)
    assert float(result.extra["sybil_utility"]["x"]) * 1e6 == pytest.approx(total)
    assert honest.utilities["x"] >= 0 and total >= 0  # no identity is ever worse off than a bidder of value 0
