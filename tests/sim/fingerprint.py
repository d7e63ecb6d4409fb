"""Digests of a simulated run, to pin that a speed change leaves every run bit-identical.

``outcome``: everything the run reports (the RunResult's JSON: tree, hops,
prices, utilities, per-stage message counts, status, detections, end time)
plus the ledger the simulator kept (every entry each node recorded, in order,
and each node's Outcome).  ``trace``: how the run got there (events handled,
messages refused and by whom), which pins the order of deliveries too: under
chaos a different order draws the router's random stream differently.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import networkx as nx

from peer.result import RunResult
from peer.scenario.model import Scenario
from peer.sim.network import SimNetwork
from peer.sra.behaviours import Behaviour


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def fingerprint(result: RunResult, network: SimNetwork) -> dict[str, Any]:
    stats = network.stats
    ledger = {
        "records": {n: [(e.hop, e.seller, e.buyer, e.price, e.prev, e.hash) for e in entries]
                    for n, entries in stats.records.items()},
        "outcomes": {n: (o.winner, o.price, o.hops) for n, o in stats.outcomes.items()},
        "chain": [e.hash for e in network.ledger.chain()],
    }
    return {
        "outcome": _digest([result.to_json(), ledger]),
        "trace": _digest([stats.events, stats.rejected, stats.refused_from, dict(stats.messages)]),
        "hops": [(h.seller, h.buyer, h.price) for h in result.hops],
        "status": result.extra["status"],
    }


def ba_scenario(n: int, seed: int = 3, m: int = 3) -> Scenario:
    """The bench's social-network-like graph (Barabási–Albert), values from a seeded stream."""
    import random

    graph = nx.relabel_nodes(nx.barabasi_albert_graph(n, m, seed=seed), str)
    rng = random.Random(f"fingerprint/{seed}")
    values = {node: rng.randrange(0, 100_000) for node in sorted(graph.nodes)}
    seller = max(sorted(graph.nodes), key=graph.degree)
    return Scenario(name=f"ba-{n}", seed=seed, seller=seller, graph=graph, values=values)


def with_faults(scenario: Scenario) -> Scenario:
    """A few crashing, silent and lying nodes, so the fault paths of the network run too."""
    nodes = sorted(scenario.graph.nodes, key=int)
    behaviours = {
        nodes[10]: Behaviour(crash_at="allocation", restart_after=3.0),
        nodes[20]: Behaviour(crash_at="aggregating"),
        nodes[30]: Behaviour(silent_from="settlement"),
        nodes[40]: Behaviour(context=10**9),
        nodes[50]: Behaviour(false_reserve=1),
    }
    return scenario.with_behaviours(behaviours)
