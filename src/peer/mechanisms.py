"""One entry point for every mechanism ``peer sim --mechanism`` can run."""

from __future__ import annotations

from peer.reference.crm import crm
from peer.reference.idm import idm
from peer.reference.replay import replay_run
from peer.reference.vcg import vcg_neighbours
from peer.result import RunResult
from peer.scenario.model import Scenario
from peer.sim.chaos import ChaosConfig
from peer.sim.run import simulate
from peer.sim.sybil import apply_splits

MECHANISMS = ("sra", "replay", "crm", "idm", "vcg-neighbours")


def run_mechanism(
    name: str,
    scenario: Scenario,
    *,
    seed: int,
    mode: str = "rounds",
    gather_window: float | None = None,
    trees: int = 1000,
    chaos: ChaosConfig | None = None,
    guarded: bool = True,
) -> RunResult:
    """Run ``name`` on ``scenario`` with run seed ``seed`` (``guarded``: guarded resale, for sra)."""
    if name == "sra":
        return simulate(scenario, seed=seed, mode=mode, gather_window=gather_window, chaos=chaos,
                        guarded=guarded)[0]
    if chaos is not None:
        raise ValueError("--chaos applies to the distributed run (--mechanism sra) only")
    if name == "replay":
        distributed = simulate(scenario, seed=seed, mode=mode, gather_window=gather_window)[0]
        if any(b.split > 1 for b in scenario.behaviours.values()):
            scenario = apply_splits(scenario, seed)[0]  # the run's identities, as simulate made them
        bids = {n: scenario.behaviour(n).bid if scenario.behaviour(n).bid is not None else v
                for n, v in scenario.values.items()}
        replayed = replay_run(distributed, scenario.values, bids)
        replayed.messages = distributed.messages
        replayed.extra["matches_distributed"] = (
            replayed.hops == distributed.hops and replayed.winner == distributed.winner
        )
        return replayed
    if name == "crm":
        return crm(scenario.graph, scenario.seller, scenario.values, seed=seed, trees=trees)
    if name == "idm":
        return idm(scenario.graph, scenario.seller, scenario.values, seed=seed)
    if name == "vcg-neighbours":
        return vcg_neighbours(scenario.graph, scenario.seller, scenario.values, seed=seed)
    raise ValueError(f"unknown mechanism {name!r}; known: {', '.join(MECHANISMS)}")
