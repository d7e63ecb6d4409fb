"""Run one SRA auction of a scenario in the in-memory network and report it."""

from __future__ import annotations

from peer.result import Hop, NodeReport, RunResult, utilities_from_hops
from peer.scenario.model import Scenario
from peer.sim.network import AsyncDelays, RoundDelays, SimNetwork, SimStats
from peer.sra.ledger_entry import verify_chain
from peer.sra.machine import SraConfig, SraNode


class SimulationError(RuntimeError):
    """The distributed run did not reach a consistent end (a bug, never expected)."""


def build_machines(scenario: Scenario, seed: int, config: SraConfig, auction: str) -> dict[str, SraNode]:
    machines = {}
    for node in sorted(scenario.graph.nodes):
        machines[node] = SraNode(
            node,
            scenario.neighbours(node),
            scenario.values[node],
            auction=auction,
            seed=seed,
            seller=scenario.seller,
            config=config,
            behaviour=scenario.behaviour(node),
        )
    return machines


def default_config(scenario: Scenario, mode: str, gather_window: float | None) -> SraConfig:
    """Waits long enough that a correct run never hits them.

    Each tree level uses up one gather window and two margins of the budget, and
    a tree has fewer than n levels; the margin covers one message's longest
    transit (1 time unit in both delivery modes) with room to spare.
    """
    n = scenario.graph.number_of_nodes()
    window = 0.5 if gather_window is None else gather_window
    margin = 1.5
    horizon = (n + 2) * (window + 2 * margin + 1.0)
    return SraConfig(gather_window=window, reply_timeout=horizon, context_timeout=horizon, margin=margin)


def simulate(
    scenario: Scenario,
    *,
    seed: int | None = None,
    mode: str = "rounds",
    gather_window: float | None = None,
    config: SraConfig | None = None,
    silent: frozenset[str] = frozenset(),
) -> tuple[RunResult, SimNetwork]:
    """Run the distributed SRA of ``scenario`` in one process.

    Args:
        seed: run seed (parents, tie-breaks, async delays); defaults to the scenario's.
        mode: "rounds" (the paper's synchronous setting) or "async" (seeded random delays).
        gather_window: how long a node gathers inviters; rounds mode needs < 1.
        silent: nodes that never send anything (crashed), to exercise timeouts.
    """
    seed = scenario.seed if seed is None else seed
    if mode == "rounds":
        if gather_window is not None and not 0 < gather_window < 1:
            raise ValueError("in rounds mode the gather window must lie strictly between 0 and 1 round")
        delays: RoundDelays | AsyncDelays = RoundDelays()
    elif mode == "async":
        delays = AsyncDelays(seed)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    config = config or default_config(scenario, mode, gather_window)
    auction = f"{scenario.name}/{seed}"
    machines = build_machines(scenario, seed, config, auction)
    network = SimNetwork(machines, delays, drop=silent)
    network.start(scenario.seller)
    stats = network.run()
    return assemble(scenario, seed, machines, stats), network


def assemble(scenario: Scenario, seed: int, machines: dict[str, SraNode], stats: SimStats) -> RunResult:
    seller_machine = machines[scenario.seller]
    chain = stats.records.get(scenario.seller, [])
    # The chain is the sequence of entries each host recorded when it sold.
    entries = []
    host = scenario.seller
    while True:
        sold = [e for e in stats.records.get(host, []) if e.seller == host]
        if not sold:
            break
        entries.append(sold[0])
        host = sold[0].buyer
    problem = verify_chain(seller_machine.genesis, entries)
    if problem is not None:
        raise SimulationError(f"ledger chain invalid: {problem}")
    for entry in entries:  # both parties must hold the same entry
        if entry not in stats.records.get(entry.buyer, []):
            raise SimulationError(f"buyer {entry.buyer} did not record hop {entry.hop}")
    del chain
    hops = [Hop(e.hop, e.seller, e.buyer, e.price) for e in entries]
    winner = host
    settled = {m.result for m in machines.values() if m.result is not None}
    if len(settled) != 1:
        raise SimulationError(f"nodes disagree on the settlement: {len(settled)} versions")
    result = next(iter(settled))
    if result.winner != winner or result.hops != len(hops):
        raise SimulationError("settlement does not match the ledger chain")
    nodes = {}
    for name, m in machines.items():
        nodes[name] = NodeReport(
            value=m.value,
            inviters=sorted(m.inviters),
            invitees=sorted(m.children.keys() | m.declined),
            parent=m.parents[0] if len(m.parents) == 1 else None,
            bought_at=m.bought_at if name != scenario.seller else None,
            sold_at=m.sold_at,
        )
    utilities, revenue = utilities_from_hops(scenario.seller, scenario.values, hops, winner)
    return RunResult(
        mechanism="sra",
        seller=scenario.seller,
        seed=seed,
        nodes=nodes,
        hops=hops,
        winner=winner,
        utilities=dict(utilities),
        revenue=revenue,
        messages={stage: stats.messages.get(stage, 0) for stage in ("diffusion", "aggregation", "allocation", "settlement")},
        extra={"rejected": len(stats.rejected), "end_time": stats.end_time},
    )
