"""Run one SRA auction of a scenario in the in-memory network and report it.

Every run gets a status (``extra["status"]``, see :mod:`peer.sim.outcome`):
completed, aborted (with ``extra["reason"]`` and ``extra["detail"]``) or
stalled.  A run with no fault in it (no chaos, no silent node, no node whose
behaviour breaks the protocol) must complete: anything else is a bug and
raises :class:`SimulationError`, as it always did.  Runs with faults return
whatever happened, so that experiments can count it.
"""

from __future__ import annotations

import dataclasses
import gc
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import networkx as nx

from peer.result import Hop, NodeReport, RunResult, amount_to_decimal, utilities_from_hops
from peer.scenario.model import Scenario
from peer.sim.chaos import ChaosConfig, ChaosRouter
from peer.sim.checks import CHECKS
from peer.sim.network import AsyncDelays, RoundDelays, SimNetwork
from peer.sim.outcome import COMPLETED, Verdict, judge
from peer.sim.sybil import apply_splits
from peer.sra.config import budget_ok
from peer.sra.machine import HONEST, SraConfig, SraNode

MAX_BUDGET = 1e9  # peer.sra.config.budget_ok: a wire budget must stay below this


class SimulationError(RuntimeError):
    """The distributed run did not reach a consistent end (a bug, never expected)."""


def build_machines(scenario: Scenario, seed: int, config: SraConfig, auction: str) -> dict[str, SraNode]:
    machines = {}
    # SraNode sorts the names it is given, so each node's adjacency goes in as it is (what
    # scenario.neighbours(node) would sort first), and behaviours are looked up as
    # scenario.behaviour does, without a call per node.
    adjacency = scenario.graph._adj  # networkx's own dicts (graph.adj would make a view per node)
    values = scenario.values
    behaviours = scenario.behaviours
    seller = scenario.seller
    for node in sorted(scenario.graph.nodes):
        machines[node] = SraNode(
            node,
            adjacency[node],  # type: ignore[arg-type]
            values[node],
            auction=auction,
            seed=seed,
            seller=seller,
            config=config,
            behaviour=behaviours.get(node, HONEST),
        )
    return machines


def default_config(
    scenario: Scenario, mode: str, gather_window: float | None, *, max_transit: float = 1.0,
    min_transit: float | None = None,
) -> SraConfig:
    """Waits long enough that a correct run never hits them.

    Each tree level uses up one gather window and two margins of the budget; the
    margin covers one message's longest transit (1 time unit in both delivery
    modes, more under a chaos router's delays) with room to spare.  How many
    levels the tree can have is :func:`tree_depth_bound`.  Under guarded resale
    the seller's wait covers the whole resale chain, one host's wait per level,
    so it grows with the square of the depth: sizing it by the node count
    instead overflowed the wire's budget bound on 20,000-node graphs, every
    Offer was refused as malformed and the seller kept the item.
    """
    window = 0.5 if gather_window is None else gather_window
    levels = tree_depth_bound(scenario, mode, window, max_transit, min_transit)
    margin = 1.5 * max_transit
    horizon = (levels + 2) * (window + 2 * margin + max_transit)
    confirm = (levels + 2) * (horizon + 4 * margin)
    if not budget_ok(confirm):
        raise ValueError(
            f"the auction tree can be {levels} levels deep, which needs waits of {confirm:.3g} time units; "
            f"the wire allows budgets below {MAX_BUDGET:.0e}")
    return SraConfig(gather_window=window, reply_timeout=horizon, context_timeout=horizon, margin=margin,
                     confirm_timeout=confirm)


def tree_depth_bound(
    scenario: Scenario, mode: str, window: float, max_transit: float, min_transit: float | None
) -> int:
    """How deep the tree SRA builds on this graph can be.

    In rounds mode (every message takes exactly one round: ``min_transit ==
    max_transit``) a node is first invited in the round equal to its distance
    from the seller, and an inviter one round later is past its gather window, so
    the tree is the BFS layering and its depth is the seller's eccentricity.
    With delays in [min_transit, max_transit], a node is first invited by time
    ecc x (window + max_transit), and each level of the tree adds at least
    min_transit to the time its node was first invited (the parent's Invite
    must arrive within the child's gather window, and was sent after the
    parent's own first invitation), so the depth is at most that time over
    min_transit.  Without a positive lower bound on delays, all that is sure is
    fewer levels than nodes.
    """
    n = scenario.graph.number_of_nodes()
    ecc = eccentricity(scenario.graph, scenario.seller)
    if mode == "rounds" and min_transit == max_transit:
        return ecc
    if min_transit is None or min_transit <= 0:
        return n
    return min(n, math.ceil((ecc * (window + max_transit) + window) / min_transit) + 1)


def eccentricity(graph: nx.Graph, source: str) -> int:
    """The largest hop distance from ``source`` to a node it can reach: the number of BFS layers
    after its own (what ``max(nx.single_source_shortest_path_length(graph, source).values())``
    gives, layer by layer over the adjacency dicts, without a distance per node)."""
    if source not in graph:
        raise nx.NodeNotFound(f"Source {source} is not in G")
    adjacency = graph._adj  # networkx's own store, as its BFS reads it (graph.adj makes a view per node)
    seen = {source}
    layer = [source]
    depth = -1
    while layer:
        depth += 1
        below = []
        for node in layer:
            for other in adjacency[node]:
                if other not in seen:
                    seen.add(other)
                    below.append(other)
        layer = below
    return depth


def run_horizon(config: SraConfig, nodes: int, max_transit: float) -> float:
    """A time by which every run is over: stages 1-2 end by the seller's wait, each of at most
    ``nodes`` hops takes at most a host's wait plus an Award's transit (guarded: each of at
    most ``nodes`` offers of the seller at most her confirm wait), and the settlement floods
    over at most ``nodes`` links.  Anything still scheduled later means a stall."""
    hop = config.context_timeout + 2 * max_transit
    if config.guarded:
        # The seller may rerun her hop once per participant whose offer lapsed or was refused; the
        # commits then come down at most ``nodes`` links.
        hop = config.confirm_timeout + 2 * max_transit
        return (config.gather_window + config.reply_timeout + (nodes + 1) * hop
                + 2 * (nodes + 2) * max_transit + 1.0)
    return config.gather_window + config.reply_timeout + (nodes + 1) * hop + (nodes + 2) * max_transit + 1.0


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold Python's cyclic garbage collector off for the duration.

    A run allocates millions of short-lived messages and effect lists, so the
    collector keeps starting, and each of its full passes walks every machine
    alive: at 100,000 nodes that was 17 of 39 s of CPU.  Nothing in a run
    needs it: the messages, effects and machines hold no reference cycles
    that must be freed before the run ends (reference counting frees the
    garbage), and whatever cycles there are get collected once it is back on.

    On the way out, everything the run left alive (1.6 million tracked objects
    at 100,000 nodes) is still in the youngest generation, so the first
    allocation after ``gc.enable()`` set off a pass over all of it: the same
    cost as a full collection, paid inside the run, and then again at the next
    full one.  ``gc.freeze(); gc.unfreeze()`` moves every tracked object to the
    oldest generation without walking it, so only the full collection is left
    owed (``bench/sra_bench.py --large`` counts it).  Young garbage of the
    caller's is then freed at that full collection instead of a young one:
    later, never lost.  Skipped if the caller froze objects itself (unfreeze
    would thaw them).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def simulate(
    scenario: Scenario,
    *,
    seed: int | None = None,
    mode: str = "rounds",
    gather_window: float | None = None,
    config: SraConfig | None = None,
    silent: frozenset[str] = frozenset(),
    chaos: ChaosConfig | None = None,
    checks: frozenset[str] = CHECKS,
    strict: bool | None = None,
    guarded: bool | None = None,
) -> tuple[RunResult, SimNetwork]:
    """Run the distributed SRA of ``scenario`` in one process.

    Args:
        seed: run seed (parents, tie-breaks, async delays, chaos, Sybil edges); defaults to the scenario's.
        mode: "rounds" (the paper's synchronous setting) or "async" (seeded random delays).
        gather_window: how long a node gathers inviters; rounds mode needs < 1.
        silent: nodes that never send anything (crashed), to exercise timeouts.
        chaos: what the network does to messages (:mod:`peer.sim.chaos`); the default
            config's margins then cover its longest delay.
        checks: the shell's ledger checks to run (:data:`peer.sim.checks.CHECKS`).
        strict: raise SimulationError unless the run completes; default: when the run
            has no fault (no chaos, no silent node, no behaviour that breaks the protocol).
        guarded: guarded resale (True) or the paper's literal stage 3 (False); default: the config's.

    Nodes whose behaviour has ``split`` > 1 are split into identities first
    (:mod:`peer.sim.sybil`); ``extra["sybils"]`` maps each to its identities.
    """
    with collector_paused():
        return _simulate(scenario, seed=seed, mode=mode, gather_window=gather_window, config=config,
                         silent=silent, chaos=chaos, checks=checks, strict=strict, guarded=guarded)


def _simulate(
    scenario: Scenario,
    *,
    seed: int | None,
    mode: str,
    gather_window: float | None,
    config: SraConfig | None,
    silent: frozenset[str],
    chaos: ChaosConfig | None,
    checks: frozenset[str],
    strict: bool | None,
    guarded: bool | None,
) -> tuple[RunResult, SimNetwork]:
    seed = scenario.seed if seed is None else seed
    sybils: dict[str, list[str]] = {}
    if any(b.split > 1 for b in scenario.behaviours.values()):
        scenario, sybils = apply_splits(scenario, seed)
    if mode == "rounds":
        if gather_window is not None and not 0 < gather_window < 1:
            raise ValueError("in rounds mode the gather window must lie strictly between 0 and 1 round")
        delays: RoundDelays | AsyncDelays = RoundDelays()
    elif mode == "async":
        delays = AsyncDelays(seed)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    router = ChaosRouter(chaos, seed) if chaos is not None and chaos.active else None
    max_transit = delays.max_delay + (router.config.max_extra if router is not None else 0.0)
    # A chaos router may deliver out of order, so only its absence gives a floor on transit.
    min_transit = None if router is not None else (delays.low if isinstance(delays, AsyncDelays) else 1.0)
    config = config or default_config(scenario, mode, gather_window, max_transit=max_transit,
                                      min_transit=min_transit)
    if guarded is not None and guarded != config.guarded:
        config = dataclasses.replace(config, guarded=guarded)
    auction = f"{scenario.name}/{seed}"
    machines = build_machines(scenario, seed, config, auction)
    network = SimNetwork(machines, delays, drop=silent, chaos=router, checks=checks)
    network.start(scenario.seller)
    horizon = run_horizon(config, len(machines), max_transit)
    network.run(until=horizon)
    deviators = set(silent) | {n for n, b in scenario.behaviours.items() if b != HONEST}
    deviators.update(name for names in sybils.values() for name in names)
    verdict = judge(network, set(machines) - deviators, horizon)
    if strict is None:
        strict = router is None and not silent and not any(b.breaks_protocol for b in scenario.behaviours.values())
    if strict and (verdict.status != COMPLETED or not verdict.integrity.ok):
        raise SimulationError(f"{verdict.status}: {verdict.reason}: {verdict.detail} (ledger {verdict.integrity})")
    return build_result(scenario, seed, network, verdict, sybils), network


def build_result(
    scenario: Scenario, seed: int, network: SimNetwork, verdict: Verdict, sybils: dict[str, list[str]]
) -> RunResult:
    """The run as a RunResult, whatever its status.

    Hops are the countersigned ledger chain.  ``winner`` is the settled winner
    of a completed run, and otherwise whoever holds the item by the ledger
    (``extra["holder"]``), so utilities are always what the ledger says each
    node paid, received and holds, valued at its true value.
    """
    machines = network.machines
    stats = network.stats
    chain = network.ledger.chain()
    hops = [Hop(e.hop, e.seller, e.buyer, e.price) for e in chain]
    winner = verdict.holder
    nodes = {}
    for name, m in machines.items():
        nodes[name] = NodeReport(
            value=m.value,
            inviters=sorted(m.inviters),
            invitees=sorted(m.children.keys() | m.declined) if m.children or m.declined else [],
            parent=m.parents[0] if len(m.parents) == 1 else None,
            bought_at=m.bought_at if name != scenario.seller else None,
            sold_at=m.sold_at,
        )
    utilities, revenue = utilities_from_hops(scenario.seller, scenario.values, hops, winner)
    extra: dict[str, Any] = {
        "rejected": len(stats.rejected),
        "end_time": stats.end_time,
        "status": verdict.status,
        "detections": [d.to_json() for d in stats.detections],
        "ledger": verdict.integrity.to_json(),
    }
    if verdict.status != COMPLETED:
        extra.update(reason=verdict.reason, detail=verdict.detail, holder=verdict.holder,
                     unsettled=list(verdict.unsettled))
    if stats.crashed:
        extra["crashed"] = dict(stats.crashed)
    some = next(iter(machines.values()), None)
    if some is not None and some.config.verifiable_coins:
        extra["coin_auction"] = some.auction  # hosts broke ties by coins: a replay recomputes them
    if network.chaos is not None:
        c = network.chaos
        extra["chaos"] = {"config": c.config.describe(), "dropped": len(c.dropped), "duplicated": c.duplicated,
                          "delayed": c.delayed, "reordered": c.reordered}
    if sybils:
        extra["sybils"] = sybils
        extra["sybil_utility"] = {
            x: amount_to_decimal(sum(utilities[n] for n in names)) for x, names in sybils.items()
        }
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
        extra=extra,
    )

