"""The shell checks the simulator plays: a false reserve, an award that does not chain and a settlement
that contradicts the ledger are refused, and each refusal is recorded with its evidence."""

from __future__ import annotations

from decimal import Decimal

from peer.scenario.model import explicit_scenario
from peer.sim.checks import Detection
from peer.sim.run import simulate
from peer.sra.effects import Send
from peer.sra.machine import Behaviour
from peer.sra.messages import Settled

# s sells to b at 4 (d's bid); b (value 2) resells to its child c (value 9) at its reserve 4.
EDGES = [("s", "b"), ("s", "d"), ("b", "c")]
VALUES = {"s": 0, "b": 2, "c": 9, "d": 4}
SCENARIO = explicit_scenario(EDGES, VALUES, seller="s", seed=1)


def test_honest_run_has_no_detection() -> None:
    result, network = simulate(SCENARIO)
    assert [(h.seller, h.buyer, h.price) for h in result.hops] == [("s", "b", 4), ("b", "c", 4)]
    assert result.extra["status"] == "completed" and result.extra["detections"] == []
    assert result.utilities["b"] == 0


def test_under_guarded_resale_a_false_reserve_names_an_entry_its_sale_can_never_chain_to() -> None:
    """b names a made-up purchase at 8; c bids and confirms, but b's sale to c cannot chain to
    the ledger, so c's shell refuses the Award with evidence and c pays nothing."""
    lying = SCENARIO.with_behaviours({"b": Behaviour(false_reserve=8)})
    result, network = simulate(lying)
    (award,) = [d for d in network.stats.detections if d.check == "award"]
    assert (award.by, award.against, award.hop) == ("c", "b", 2)
    assert award.detail == "the entry does not chain to hop 1"
    assert result.extra["status"] == "aborted" and result.extra["reason"] == "sale-stopped"
    assert result.winner == "b" and result.utilities["b"] == 2 - 4  # the liar holds what it bought
    assert result.extra["ledger"]["ok"]
    assert all(u >= 0 for n, u in result.utilities.items() if n != "b")


def test_false_reserve_pays_without_the_check() -> None:
    lying = SCENARIO.with_behaviours({"b": Behaviour(false_reserve=8)})
    result, network = simulate(lying, checks=frozenset(), guarded=False)
    assert [(h.seller, h.buyer, h.price) for h in result.hops] == [("s", "b", 4), ("b", "c", 8)]
    assert result.utilities["b"] == 4  # sold at 8 what it bought at 4
    assert not network.stats.detections


def test_false_reserve_is_refused_with_evidence_and_the_liar_keeps_the_item() -> None:
    lying = SCENARIO.with_behaviours({"b": Behaviour(false_reserve=8)})
    result, network = simulate(lying, guarded=False)
    reserve = [d for d in network.stats.detections if d.check == "reserve"]
    assert reserve == [Detection("c", "b", "reserve", 2, 8, 4, "host claims reserve 0.000008 but bought at 0.000004")]
    assert result.extra["detections"][0]["claimed"] == Decimal("0.000008")  # JSON amounts are in whole units
    # b got no bid, kept the item and announced a settlement at its false price: every shell refuses it.
    assert result.extra["status"] == "aborted" and result.extra["reason"] == "settlement-refused"
    assert {d.by for d in network.stats.detections if d.check == "settled"} == {"s", "c"}
    assert result.winner == "b" and result.utilities["b"] == 2 - 4  # the liar holds an item worth less than it paid
    assert result.extra["ledger"]["ok"]
    assert all(u >= 0 for n, u in result.utilities.items() if n != "b")


def test_a_lower_reserve_slips_past_a_disabled_reserve_check_but_the_award_does_not_chain() -> None:
    # b's value 0 now: at reserve 1 it still resells to c, at 1, below the 4 it paid.
    lying = explicit_scenario(EDGES, {**VALUES, "b": 0}, seller="s", seed=1).with_behaviours(
        {"b": Behaviour(false_reserve=1)}
    )
    result, network = simulate(lying, checks=frozenset({"award", "settled"}), guarded=False)
    (award,) = [d for d in network.stats.detections if d.check == "award"]
    assert (award.by, award.against, award.hop, award.claimed, award.recorded) == ("c", "b", 2, 1, 4)
    assert "below the 0.000004 the host paid" in award.detail
    assert result.extra["status"] == "aborted" and result.extra["reason"] == "sale-stopped"
    assert "refused" in result.extra["detail"]
    assert result.extra["ledger"]["ok"]  # the bad entry was never countersigned


def test_a_settlement_that_contradicts_the_ledger_or_another_settlement_is_caught() -> None:
    forged = Settled(auction=f"{SCENARIO.name}/1", winner="c", hops=2, price=1)
    for checks, kind in ((frozenset({"reserve", "award", "settled"}), "settled"), (frozenset(), "settled-conflict")):
        result, network = simulate(SCENARIO, checks=checks)
        network._apply("c", [Send("b", forged)], network.stats.end_time)  # c's shell sends a forged copy
        network.run()
        (d,) = network.stats.detections
        assert (d.by, d.against, d.check, d.claimed) == ("b", "c", kind, "c/2 hops/0.000001")
        assert d.recorded == "c/2 hops/0.000004"
        assert network.machines["b"].result == Settled(auction=forged.auction, winner="c", hops=2, price=4)


def test_equivocation_gains_where_parent_choice_does_and_nobody_can_tell() -> None:
    """The 4-cycle of docs/findings.md (counterexample A): a tells b its value and d nothing."""
    cycle = explicit_scenario([("a", "b"), ("a", "d"), ("b", "s"), ("d", "s")], {"s": 0, "a": 3, "b": 0, "d": 2},
                              seller="s", seed=1)
    honest, _ = simulate(cycle)
    result, network = simulate(cycle.with_behaviours({"a": Behaviour(equivocate={"b": 3, "d": 0})}))
    assert network.machines["b"].children == {"a": 3} and network.machines["d"].children == {"a": 0}
    assert honest.utilities["a"] == 0 and result.utilities["a"] == 1
    assert result.extra["status"] == "completed" and not network.stats.detections and not network.stats.rejected
