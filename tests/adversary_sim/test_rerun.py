"""A rerun hands hop k+1 to another host under the same number: the nodes that took part in the
refused buyer's hop must take part in the new host's too (issue 14.3)."""

from __future__ import annotations

from pathlib import Path

from peer.scenario.load import load_scenario
from peer.sim.run import simulate
from peer.sra.machine import Behaviour


def test_after_a_crash_below_it_the_rerun_hosts_hop_gets_every_bid() -> None:
    # paper-figure2, seed 1: f crashes at its first hop-2 message, so b's purchase unwinds and s
    # reruns hop 1 to a.  d took part in b's hop 2; it used to refuse a's Open of hop 2 ("hop 2 was
    # already opened") and a kept the item.  Now d bids and the item travels on to e.
    scenario = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "paper-figure2.toml")
    result, network = simulate(scenario.with_behaviours({"f": Behaviour(crash_at="hop:2")}), seed=1)
    refused = [(r, why) for (r, why), s in zip(network.stats.rejected, network.stats.refused_from)
               if "already opened" in why and "f" not in (r, s)]
    assert refused == []
    assert [(h.seller, h.buyer) for h in result.hops] == [("s", "a"), ("a", "c"), ("c", "e")]
    assert result.winner == "e"
    assert all(u >= 0 for n, u in result.utilities.items() if n != "f")
