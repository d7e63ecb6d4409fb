"""Findings of the adversary work that point at the machine (docs/adversaries.md, "Findings")."""

from __future__ import annotations

import pytest

from peer.scenario.model import explicit_scenario
from peer.sim.run import simulate
from peer.sra.machine import Behaviour

# The smallest instance found (atlas graphs up to 5 nodes, values 0..3, seed 1): seller 2 skips her
# neighbour 1.  1, invited by 3 and 4, invites her late; she answers Decline, which makes her a
# participant of 1's local auction (the rule that protects a late inviter's invitee), and her
# context bid (her children 3 and 4 are not 1's invitees) ties for the item she sold two hops ago.
REBUY = explicit_scenario(
    [("0", "1"), ("1", "2"), ("1", "3"), ("1", "4"), ("2", "3"), ("2", "4")],
    {"0": 1, "1": 0, "2": 0, "3": 1, "4": 0}, seller="2", seed=1,
).with_behaviours({"2": Behaviour(invite_only=frozenset({"3", "4"}))})


def test_a_seller_who_skips_a_neighbour_does_not_bid_for_her_own_item() -> None:
    # Regression: she used to answer the late inviter's Open, win her own item back two hops
    # later and stop the sale.  Now she refuses to take part; the host closes without her.
    result, network = simulate(REBUY, strict=False)
    assert result.extra["status"] == "completed"
    assert ("2", "from 1: the seller takes part in no local auction") in network.stats.rejected
    assert result.extra["ledger"]["ok"]
    assert all(h.buyer != "2" for h in result.hops)
