"""Silent and crashed nodes at every stage: each run completes or aborts with a reason, never stalls,
and no honest ledger loses or forks an entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from peer.experiments.deviation_instances import random_connected
from peer.money import SCALE
from peer.scenario.load import load_scenario
from peer.scenario.model import Scenario, explicit_scenario
from peer.sim.network import SimNetwork
from peer.sim.outcome import judge
from peer.sim.run import SimulationError, simulate
from peer.sra.behaviours import STAGES
from peer.sra.machine import Behaviour

ROOT = Path(__file__).resolve().parents[2]
REASONS = {"sale-stopped", "settlement-undelivered", "settlement-refused"}
FIGURE2 = load_scenario(ROOT / "scenarios" / "paper-figure2.toml")


def _random(seed: int) -> Scenario:
    import random

    rng = random.Random(seed)
    graph = random_connected(9, rng)
    values = {str(n): rng.randint(0, 9) * SCALE for n in graph.nodes}
    values["0"] = 0
    return explicit_scenario([(str(u), str(v)) for u, v in graph.edges], values, seller="0", seed=seed)


SCENARIOS = {"figure2": FIGURE2, "random-3": _random(3), "random-8": _random(8)}


def _assert_defined(result: object) -> None:
    extra = result.extra  # type: ignore[attr-defined]
    assert extra["status"] in ("completed", "aborted"), extra.get("detail")
    if extra["status"] == "aborted":
        assert extra["reason"] in REASONS and extra["detail"]
    assert extra["ledger"] == {"ok": True, "forks": 0, "broken": None, "lost": 0}


@pytest.mark.parametrize("stage", [*STAGES, "hop:2"])
@pytest.mark.parametrize("fault", ["silent_from", "crash_at", "crash+restart"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_fault_at_every_stage_has_a_defined_outcome(name: str, fault: str, stage: str) -> None:
    scenario = SCENARIOS[name]
    honest, _ = simulate(scenario)
    deviators = [h.buyer for h in honest.hops] + [n for n in sorted(honest.nodes)[:3] if n != scenario.seller]
    for node in dict.fromkeys(deviators):
        if fault == "crash+restart":
            behaviour = Behaviour(crash_at=stage, restart_after=1.5)
        else:
            behaviour = Behaviour(**{fault: stage})
        result, network = simulate(scenario.with_behaviours({node: behaviour}))
        _assert_defined(result)
        if fault != "silent_from" and node in network.stats.crashed:
            assert network.down(node)


def test_under_guarded_resale_a_crashed_buyer_is_sold_around() -> None:
    honest, _ = simulate(FIGURE2)
    buyer = honest.hops[0].buyer
    result, network = simulate(FIGURE2.with_behaviours({buyer: Behaviour(crash_at="hosting")}))
    assert result.extra["status"] == "completed" and buyer in network.stats.crashed
    assert buyer not in {h.buyer for h in result.hops} and result.extra["ledger"]["ok"]
    assert min(result.utilities.values()) >= 0


def test_a_crashed_host_stops_the_sale_and_says_where() -> None:
    honest, _ = simulate(FIGURE2, guarded=False)
    buyer = honest.hops[0].buyer
    result, network = simulate(FIGURE2.with_behaviours({buyer: Behaviour(crash_at="hosting")}), guarded=False)
    assert result.extra["reason"] == "sale-stopped"
    assert result.extra["detail"].startswith(f"the ledger ends at hop 1 with {buyer}, which crashed")
    assert result.winner == buyer and result.hops == honest.hops[:1]  # it countersigned before crashing
    assert set(result.extra["unsettled"]) == set(FIGURE2.graph.nodes) - {buyer}


def test_a_restarted_node_refuses_everything_and_messages_before_it_are_lost() -> None:
    honest, _ = simulate(FIGURE2)
    buyer = honest.hops[0].buyer
    result, network = simulate(FIGURE2.with_behaviours({buyer: Behaviour(crash_at="aggregation", restart_after=0.5)}))
    refused = [reason for (by, reason) in network.stats.rejected if by == buyer]
    assert refused and all(r.startswith("restarted without state") for r in refused)
    result2, network2 = simulate(FIGURE2.with_behaviours({buyer: Behaviour(crash_at="aggregation")}))
    assert network2.stats.lost_to_crash > 0 and not [r for r in network2.stats.rejected if r[0] == buyer]
    # For the others a restart without state is the same as staying down.
    assert (result.hops, result.winner, result.extra["status"]) == (result2.hops, result2.winner,
                                                                    result2.extra["status"])


def test_silence_from_settlement_cuts_the_flood_only() -> None:
    honest, _ = simulate(FIGURE2)
    winner = honest.winner
    result, _ = simulate(FIGURE2.with_behaviours({winner: Behaviour(silent_from="settlement")}))
    assert result.hops == honest.hops and result.winner == winner
    assert result.extra["reason"] == "settlement-undelivered"


def test_fault_free_runs_stay_strict() -> None:
    result, _ = simulate(FIGURE2)
    assert result.extra["status"] == "completed"
    with pytest.raises(SimulationError):
        simulate(FIGURE2.with_behaviours({"b": Behaviour(crash_at="hosting")}), strict=True, guarded=False)


def test_a_stall_is_detected_at_the_horizon_and_when_a_wait_has_no_wake_up() -> None:
    result, network = simulate(FIGURE2)
    fresh: SimNetwork = simulate(FIGURE2, strict=False)[1]
    # Events still scheduled when the horizon comes: stopped early on purpose.
    from peer.sim.run import build_machines, default_config
    from peer.sim.network import RoundDelays

    config = default_config(FIGURE2, "rounds", None)
    machines = build_machines(FIGURE2, 1, config, "paper-figure2/1")
    stopped = SimNetwork(machines, RoundDelays())
    stopped.start(FIGURE2.seller)
    stopped.run(until=3.0)
    verdict = judge(stopped, set(machines), 3.0)
    assert verdict.status == "stalled" and "in flight at the horizon" in verdict.detail
    # A machine left waiting for a deadline that nothing will wake it for.
    fresh.machines["a"]._gather_deadline = 1e9
    verdict = judge(fresh, set(fresh.machines), 1e12)
    assert verdict.status == "stalled" and "nothing will wake it" in verdict.detail
    assert result.extra["status"] == "completed"
