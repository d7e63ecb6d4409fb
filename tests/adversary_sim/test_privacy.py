"""What SRA publishes about the graph (peer.experiments.privacy)."""

from __future__ import annotations

from pathlib import Path

from peer.experiments.privacy import measure
from peer.scenario.load import load_scenario
from peer.scenario.model import explicit_scenario


def test_every_hop_entry_publishes_a_graph_edge_and_they_accumulate() -> None:
    figure2 = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "paper-figure2.toml")
    row = measure(figure2, 30)
    assert row.centralized_edges == row.edges == 12  # IDM's seller / CRM's center: the whole graph at once
    assert row.hops_per_auction >= 1
    assert row.ledger_edges[1] <= row.ledger_edges[10] <= row.ledger_edges[30] <= row.edges
    assert row.ledger_edges[30] > row.ledger_edges[1]
    assert row.relations_mean > 0


def test_a_context_request_tells_the_child_who_sits_below_which_host() -> None:
    # s sells to a; a resells to b (x bids 1); b resells to c (y bids 3).  In a's hop, b asks its
    # children c and y for their context bids in a's auction: they learn that b sits below a.
    edges = [("s", "a"), ("a", "b"), ("a", "x"), ("b", "c"), ("b", "y")]
    values = {"s": 0, "a": 0, "x": 1, "b": 2, "y": 3, "c": 9}
    row = measure(explicit_scenario(edges, values, seller="s", name="chain"), 1, fresh=False)
    assert row.ledger_edges[1] == 3  # s-a, a-b, b-c: published to everyone, x and y included
    assert row.relations_max == 2  # c and y: b sits below s (hop 1) and below a (hop 2)
