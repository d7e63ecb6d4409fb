"""The independent check of a simulated run (peer.reference.check_run) passes right runs and catches wrong ones."""

from __future__ import annotations

import dataclasses

import pytest

from peer.reference.check_run import bfs_depths, run_problems
from peer.sim.run import simulate
from tests.sim.fingerprint import ba_scenario


@pytest.fixture(scope="module")
def ba():  # type: ignore[no-untyped-def]
    return ba_scenario(1500, seed=5)


@pytest.mark.parametrize("mode", ["rounds", "async"])
def test_a_correct_run_passes(ba, mode: str) -> None:  # type: ignore[no-untyped-def]
    result, _ = simulate(ba, mode=mode)
    assert run_problems(result, ba.graph, ba.values, rounds=mode == "rounds") == []


def test_a_wrong_tree_a_wrong_price_and_a_broken_ledger_are_caught(ba) -> None:  # type: ignore[no-untyped-def]
    result, _ = simulate(ba)
    first = result.hops[0].buyer
    result.nodes[first].inviters = []
    result.hops[-1] = dataclasses.replace(result.hops[-1], price=result.hops[-1].price + 1)
    result.extra["ledger"] = {"ok": False, "forks": 1}
    problems = run_problems(result, ba.graph, ba.values, rounds=True)
    assert any(p.startswith(f"{first} (depth") and "inviters" in p for p in problems)
    assert any("but the replay sells" in p for p in problems)
    assert any(p.startswith("ledger not intact") for p in problems)


def test_bfs_depths_match_networkx(ba) -> None:  # type: ignore[no-untyped-def]
    import networkx as nx

    assert bfs_depths(ba.graph, ba.seller) == dict(nx.single_source_shortest_path_length(ba.graph, ba.seller))
