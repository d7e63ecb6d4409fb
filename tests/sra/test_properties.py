"""Properties of whole distributed SRA runs on random small instances (hypothesis, derandomized).

Each example is a random graph on 2-12 nodes (connected or not), integer values
drawn from a small grid so that ties are common, a run seed, and a delivery mode
(synchronous rounds, or async where the seed also fixes the delivery order).
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peer.money import SCALE
from peer.reference.crm import crm
from peer.reference.replay import replay_run, replay_stage3
from peer.reference.vcg import vcg_neighbours
from peer.result import Hop, RunResult
from peer.scenario.model import Scenario, explicit_scenario
from peer.sim.network import SimNetwork
from peer.sim.run import simulate
from peer.sra.ledger_entry import HopEntry, verify_chain
from peer.sra.machine import NodeStage

NAMES = ["s", *"abcdefghijk"]
SELLER = "s"

PROFILE = settings(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=250,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def instances(draw: st.DrawFn, *, trees_only: bool = False, distinct: bool = False) -> Scenario:
    n = draw(st.integers(2, 12))
    nodes = NAMES[:n]
    edges: set[tuple[str, str]] = set()
    if trees_only or draw(st.booleans()):  # a spanning tree first: connected
        for i in range(1, n):
            edges.add((nodes[draw(st.integers(0, i - 1))], nodes[i]))
    if not trees_only:
        pairs = [(u, v) for i, u in enumerate(nodes) for v in nodes[i + 1 :]]
        edges |= set(draw(st.lists(st.sampled_from(pairs), max_size=2 * n)))
    if distinct:
        raw = draw(st.lists(st.integers(1, 60), min_size=n - 1, max_size=n - 1, unique=True))
        buyers = [v * SCALE for v in raw]
        reserve = 0
    else:
        grid = st.integers(0, 6).map(lambda v: v * SCALE)  # few levels: many ties
        fine = st.integers(0, 6 * SCALE)
        buyers = draw(st.lists(st.one_of(grid, grid, fine), min_size=n - 1, max_size=n - 1))
        reserve = draw(st.sampled_from([0, 0, 0, 2 * SCALE, 3 * SCALE + 1]))
    values = {SELLER: reserve, **dict(zip(nodes[1:], buyers, strict=True))}
    seed = draw(st.integers(0, 2**31))
    return explicit_scenario(sorted(edges), values, seller=SELLER, seed=seed)


modes = st.sampled_from(["rounds", "async"])


def run(scenario: Scenario, mode: str, **kwargs: object) -> tuple[RunResult, SimNetwork]:
    return simulate(scenario, seed=scenario.seed, mode=mode, **kwargs)  # type: ignore[arg-type]


def informed(network: SimNetwork) -> set[str]:
    return {name for name, m in network.machines.items() if m.stage is not NodeStage.IDLE}


# ----------------------------------------------------------------------------- helpers for Lemma 5.1


def role_and_net(seller: str, hops: list[Hop], winner: str, node: str) -> tuple[str, int]:
    """(role, net payment): purchase price for the winner, sale - purchase for a local seller."""
    bought = {h.buyer: h.price for h in hops}
    sold = {h.seller: h.price for h in hops}
    if node == winner:
        return "winner", bought.get(node, 0)
    if node in sold and node in bought:
        return "local seller", sold[node] - bought[node]
    return "other", 0


def alternative_bids(values: Mapping[str, int], own: int) -> set[int]:
    levels = set(values.values())
    out = {0, own * 2 + 1, max(levels) + SCALE}
    for v in levels:
        out |= {v, v + 1, max(v - 1, 0)}
    out.discard(own)
    return out


# ----------------------------------------------------------------------------- the properties


@PROFILE
@given(instances(), modes)
def test_distributed_run_equals_its_replay(scenario: Scenario, mode: str) -> None:
    result, _ = run(scenario, mode)
    replay = replay_run(result, scenario.values)
    assert replay.hops == result.hops
    assert replay.winner == result.winner
    assert replay.utilities == result.utilities
    assert replay.revenue == result.revenue


@PROFILE
@given(instances(), modes)
def test_honest_run_is_clean_ir_and_beats_vcg_among_neighbours(scenario: Scenario, mode: str) -> None:
    result, _ = run(scenario, mode)
    assert result.extra["rejected"] == 0
    assert all(u >= 0 for u in result.utilities.values()), result.utilities  # individual rationality
    for node, u in result.utilities.items():  # only the resale path gains or pays anything
        on_path = node == scenario.seller or node in {h.buyer for h in result.hops}
        if not on_path:
            assert u == 0
    vcg = vcg_neighbours(scenario.graph, scenario.seller, scenario.values, seed=scenario.seed)
    assert result.revenue >= vcg.revenue  # Prop. 5.4


@PROFILE
@given(instances(), modes)
def test_informed_nodes_and_parent_tree(scenario: Scenario, mode: str) -> None:
    result, network = run(scenario, mode)
    reach = nx.node_connected_component(scenario.graph, scenario.seller)
    assert informed(network) == reach
    for name, report in result.nodes.items():
        if name == scenario.seller:
            assert report.inviters == [] and report.parent is None
            continue
        if name not in reach:
            assert report.inviters == [] and report.invitees == [] and report.parent is None
            continue
        assert report.inviters, f"{name} was informed by nobody"
        assert report.parent in report.inviters
        assert name in result.nodes[report.parent].invitees
        assert set(report.inviters) <= set(scenario.graph.neighbors(name))
        # walking up the parents reaches the seller without a cycle
        seen, x = {name}, name
        while x != scenario.seller:
            x = result.nodes[x].parent  # type: ignore[assignment]
            assert x is not None and x not in seen
            seen.add(x)
    tree = nx.Graph([(r.parent, n) for n, r in result.nodes.items() if r.parent is not None])
    tree.add_node(scenario.seller)
    assert set(tree.nodes) == reach
    assert nx.is_tree(tree)
    # every machine agrees on the single settlement
    assert {network.machines[n].result for n in reach} == {network.machines[scenario.seller].result}


@PROFILE
@given(instances())
def test_rounds_mode_inviters_are_the_previous_round(scenario: Scenario) -> None:
    result, _ = run(scenario, "rounds")
    depth = nx.single_source_shortest_path_length(scenario.graph, scenario.seller)
    for name, d in depth.items():
        nbrs = set(scenario.graph.neighbors(name))
        assert set(result.nodes[name].inviters) == {n for n in nbrs if depth[n] == d - 1}
        # same-round neighbours void each other: the participants are exactly the next round
        assert set(result.nodes[name].invitees) == {n for n in nbrs if depth[n] == d + 1}


@PROFILE
@given(instances(), modes)
def test_ledger_chain_verifies_and_matches_the_hops(scenario: Scenario, mode: str) -> None:
    result, network = run(scenario, mode)
    records = network.stats.records
    entries = sorted({e for rs in records.values() for e in rs}, key=lambda e: e.hop)
    genesis = network.machines[scenario.seller].genesis
    assert verify_chain(genesis, entries) is None
    assert [(e.hop, e.seller, e.buyer, e.price) for e in entries] == [
        (h.hop, h.seller, h.buyer, h.price) for h in result.hops
    ]
    for entry in entries:  # both parties, and only they, recorded each hop
        holders = {n for n, rs in records.items() if entry in rs}
        assert holders == {entry.seller, entry.buyer}
        assert entry in network.machines[entry.seller].entries
        assert entry in network.machines[entry.buyer].entries
    assert all(isinstance(e, HopEntry) and e.auction == entries[0].auction for e in entries)


@PROFILE
@given(instances(), modes)
def test_message_counts_per_stage(scenario: Scenario, mode: str) -> None:
    result, network = run(scenario, mode)
    graph = scenario.graph
    reach = informed(network)
    diffusion = sum(len(set(graph.neighbors(n)) - set(result.nodes[n].inviters)) for n in reach)
    aggregation = sum(len(result.nodes[n].inviters) for n in reach)
    settlement = sum(graph.degree(n) for n in reach) - (len(reach) - 1)
    assert result.messages["diffusion"] == diffusion
    assert result.messages["aggregation"] == aggregation
    assert result.messages["settlement"] == settlement
    opens = sum(len(result.nodes[h].invitees) for h in [scenario.seller, *(h.buyer for h in result.hops)])
    assert result.messages["allocation"] >= opens + len(result.hops)  # Opens, their ContextBids, Awards
    if graph.degree(scenario.seller) > 0:
        assert all(result.messages[k] > 0 for k in ("diffusion", "aggregation", "allocation", "settlement"))
    else:
        assert sum(result.messages.values()) == 0
        assert result.winner == scenario.seller and result.hops == []


@PROFILE
@given(instances(), modes)
def test_lemma_5_1_payment_is_independent_of_own_bid(scenario: Scenario, mode: str) -> None:
    """On the FIXED realised tree, changing one bid never changes that node's payment in its role."""
    result, _ = run(scenario, mode)
    structure = dict(
        seller=result.seller,
        participants={n: r.invitees for n, r in result.nodes.items()},
        parents={n: r.parent for n, r in result.nodes.items()},
        inviters={n: set(r.inviters) for n, r in result.nodes.items()},
        seed=result.seed,
    )
    values = scenario.values
    base_hops, base_winner = replay_stage3(bids=values, **structure)  # type: ignore[arg-type]
    assert (base_hops, base_winner) == (result.hops, result.winner)
    for node in result.nodes:
        if node == scenario.seller:
            continue
        role, net = role_and_net(scenario.seller, base_hops, base_winner, node)
        for alt in alternative_bids(values, values[node]):
            bids = {**values, node: alt}
            hops, winner = replay_stage3(bids=bids, **structure)  # type: ignore[arg-type]
            alt_role, alt_net = role_and_net(scenario.seller, hops, winner, node)
            if alt_role == role:
                assert alt_net == net, (node, role, values[node], alt, base_hops, hops)


@PROFILE
@given(instances(trees_only=True, distinct=True), modes)
def test_on_a_tree_sra_equals_its_centralized_reduction(scenario: Scenario, mode: str) -> None:
    """A tree has one spanning tree: CRM (Sec. 4.2) and the distributed SRA must agree exactly."""
    result, _ = run(scenario, mode)
    reference = crm(scenario.graph, scenario.seller, scenario.values, seed=scenario.seed)
    assert reference.extra["trees"] == 1
    assert {n: u for n, u in reference.utilities.items()} == result.utilities
    assert reference.revenue == result.revenue
    assert reference.extra["win_probability"] == {result.winner: 1}


@settings(derandomize=True, deadline=None, database=None, max_examples=60)
@given(instances(), modes, st.data())
def test_a_crashed_node_is_timed_out_and_the_run_still_matches_its_replay(
    scenario: Scenario, mode: str, data: st.DataObject
) -> None:
    crashed = data.draw(st.sampled_from(NAMES[1 : len(scenario.values)]))
    result, network = run(scenario, mode, silent=frozenset({crashed}))
    assert network.machines[crashed].stage is NodeStage.IDLE
    assert result.winner != crashed
    assert result.nodes[crashed].inviters == []
    assert all(crashed not in r.invitees for r in result.nodes.values())
    replay = replay_run(result, scenario.values)
    assert (replay.hops, replay.winner, replay.utilities) == (result.hops, result.winner, result.utilities)
    assert all(u >= 0 for u in result.utilities.values())


# ----------------------------------------------------------------------------- crashed nodes
# Regression: every node used to wait the same reply_timeout from its own forwarding time,
# so a parent gave up on an honest, alive child before the child gave up on its crashed
# grandchild; the child's late Bid was rejected and its whole path left the auction.  Now
# each request carries the sender's remaining wait and every level waits less.


def test_a_crashed_leaf_does_not_exclude_its_honest_inviter() -> None:
    scenario = explicit_scenario(
        [("s", "a"), ("a", "x"), ("s", "b")],
        {"s": 0, "a": 9_000_000, "x": 1_000_000, "b": 2_000_000},
        seller="s",
        seed=1,
    )
    honest, _ = simulate(scenario)
    assert honest.winner == "a" and honest.revenue == 2 * SCALE
    result, network = simulate(scenario, silent=frozenset({"x"}))
    assert result.extra["rejected"] == 0
    assert network.machines["s"].silent == set(), "s gave up on a, which is alive and honest"
    assert network.machines["a"].silent == {"x"}
    assert result.winner == "a"
    assert result.revenue == 2 * SCALE
    assert result.hops == honest.hops


PATH = ["s", *"abcdefg"]  # 8 nodes, s at one end


@pytest.mark.parametrize("mode", ["rounds", "async"])
def test_a_silent_node_deep_in_a_path_costs_only_its_own_subtree(mode: str) -> None:
    values = dict(zip(PATH, [0, 1, 2, 3, 9, 20, 30, 40], strict=True))
    scenario = explicit_scenario(
        list(zip(PATH, PATH[1:])), {n: v * SCALE for n, v in values.items()}, seller="s", seed=3
    )
    result, network = run(scenario, mode, silent=frozenset({"e"}))
    machines = network.machines
    assert result.extra["rejected"] == 0
    assert informed(network) == {"s", "a", "b", "c", "d"}  # e crashed: f and g never hear of the sale
    for name in ("s", "a", "b", "c"):
        assert machines[name].silent == set(), f"{name} gave up on an alive child"
    assert machines["d"].silent == {"e"}
    # d's value 9, the best before the crash, travels all the way up.
    assert machines["s"].children == {"a": 9 * SCALE}
    for parent, child in zip(PATH[:4], PATH[1:5], strict=True):
        assert result.nodes[child].parent == parent
    replay = replay_run(result, scenario.values)
    assert (replay.hops, replay.winner, replay.utilities) == (result.hops, result.winner, result.utilities)
