"""Whole auctions through the real node shell (links, signatures, gossip, fsync'd ledger), in memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from peer.scenario.load import load_scenario
from peer.scenario.model import explicit_scenario
from tests.node.harness import build, outcome, run_until_done

ROOT = Path(__file__).resolve().parents[2]
M = 10**6


async def test_small_tree_settles_with_the_expected_outcome(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "small-tree.toml")
    cluster = build(scenario, tmp_path)
    await run_until_done(cluster)
    run, check = outcome(cluster)
    keys = cluster.keys
    assert run.winner == keys["a"]
    assert [(h.seller, h.buyer, h.price) for h in run.hops] == [(keys["s"], keys["a"], 5 * M)]
    assert check.replay_matches and check.ledger_identical and check.ledger_verified == 3


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_resale_chain_matches_its_replay_and_every_ledger_copy(tmp_path: Path, seed: int) -> None:
    # A path with a diamond: several hops, several inviters, a void edge.
    edges = [("s", "a"), ("s", "b"), ("a", "c"), ("b", "c"), ("c", "d"), ("d", "e"), ("b", "d")]
    values = {"s": 0, "a": 3 * M, "b": 4 * M, "c": 2 * M, "d": 6 * M, "e": 9 * M}
    scenario = explicit_scenario(edges, values, seller="s", seed=seed, name="diamond")
    cluster = build(scenario, tmp_path)
    await run_until_done(cluster)
    run, check = outcome(cluster)
    assert check.replay_matches, run.hops
    assert check.ledger_identical
    assert check.ledger_verified == len(values)
    assert run.hops, "somebody must have bought"
    for node in cluster.nodes.values():
        assert node.bad == 0


async def test_karate_club_in_memory(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "karate-club.toml")
    cluster = build(scenario, tmp_path)
    await run_until_done(cluster, limit=60)
    _, check = outcome(cluster)
    assert check.replay_matches and check.ledger_identical and check.ledger_verified == 34
