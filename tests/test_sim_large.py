"""Large graphs in the simulator: the waits it sizes must stay valid on the wire.

Before the waits were sized by the tree's depth, the seller's guarded-resale
wait grew with the square of the node count; from about 14,900 nodes it passed
the wire's budget bound (1e9), every Offer was refused as malformed and the
seller kept the item while the replay sold it.
"""

from __future__ import annotations

import networkx as nx
import pytest

from peer.reference.check_run import run_problems
from peer.scenario.model import Scenario
from peer.sim.run import default_config, simulate, tree_depth_bound
from peer.reference.replay import replay_run
from peer.sra.config import budget_ok


def _star(leaves: int) -> Scenario:
    graph = nx.star_graph(leaves)
    values = {str(n): (0 if n == 0 else 1000 + (n * 7919) % 100_000) for n in graph.nodes}
    graph = nx.relabel_nodes(graph, {n: str(n) for n in graph.nodes})
    return Scenario(name=f"star-{leaves}", seed=1, seller="0", graph=graph, values=values)


@pytest.mark.slow
def test_a_15000_node_graph_sells_as_the_replay_does() -> None:
    scenario = _star(15_000)
    result, _ = simulate(scenario)
    reference = replay_run(result, scenario.values)
    assert result.extra["status"] == "completed"
    assert result.winner != "0"
    assert [(h.seller, h.buyer, h.price) for h in result.hops] == [
        (h.seller, h.buyer, h.price) for h in reference.hops]


@pytest.mark.slow
def test_a_20000_node_social_graph_checks_against_the_replay() -> None:
    """The size that sold wrongly before (Barabási–Albert, the bench's graph), checked
    without the machines: BFS tree, replayed stage 3, intact ledger.  The bench runs the
    same check at 100,000 nodes (bench/sra_bench.py --large)."""
    import random

    graph = nx.relabel_nodes(nx.barabasi_albert_graph(20_000, 3, seed=3), str)
    rng = random.Random(3)
    values = {n: rng.randrange(100_000_000) for n in sorted(graph.nodes)}
    seller = max(sorted(graph.nodes), key=graph.degree)
    scenario = Scenario(name="ba-20000", seed=3, seller=seller, graph=graph, values=values)
    result, _ = simulate(scenario)
    assert result.hops and result.winner != seller
    assert run_problems(result, graph, values, rounds=True) == []


def test_waits_are_sized_by_depth_not_node_count() -> None:
    scenario = _star(100_000)
    config = default_config(scenario, "rounds", None, min_transit=1.0)
    assert budget_ok(config.confirm_timeout) and budget_ok(config.reply_timeout)
    assert tree_depth_bound(scenario, "rounds", 0.5, 1.0, 1.0) == 1


def test_rounds_depth_is_the_eccentricity_and_async_is_bounded() -> None:
    graph = nx.relabel_nodes(nx.path_graph(6), str)
    scenario = Scenario(name="path", seed=1, seller="0", graph=graph, values={n: 1 for n in graph})
    assert tree_depth_bound(scenario, "rounds", 0.5, 1.0, 1.0) == 5
    assert tree_depth_bound(scenario, "async", 0.5, 1.0, 0.05) == 6  # never more levels than nodes
    assert tree_depth_bound(scenario, "async", 0.5, 1.0, None) == 6


def test_a_graph_too_deep_for_the_wire_is_refused_clearly() -> None:
    graph = nx.relabel_nodes(nx.path_graph(20_000), str)
    scenario = Scenario(name="path", seed=1, seller="0", graph=graph, values={n: 1 for n in graph})
    with pytest.raises(ValueError, match="levels deep"):
        default_config(scenario, "rounds", None)
