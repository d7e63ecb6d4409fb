"""``peer sim SCENARIO --auctions N --concurrency C``: many auctions sharing the nodes, in one process.

One discrete-event heap carries the messages of every auction in flight, with
seeded per-message delays (the async delivery mode).  Each node hosts one
machine per auction it takes part in, as a real node does, and like a real
node it has a bound on auctions in flight (``capacity``): past it, it answers
an invitation with a crossing invitation, which voids that edge.  Auctions are
started closed-loop: C at time 0, then a new one each time one ends, sellers
drawn by the run seed.  What concurrency does to outcomes shows in the
refusals and in the trees (and so the sales) that auctions realise; each
auction is checked against its replay on the tree it realised.

Honest nodes only (behaviours, chaos and faults are the single-auction
simulator's business); times are in the simulator's delay units.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from dataclasses import dataclass, field
from typing import Any

from peer.errors import RemoteProtocolError
from peer.reference.replay import replay_run
from peer.result import Hop, NodeReport, RunResult
from peer.scenario.model import Scenario
from peer.sim.network import AsyncDelays
from peer.sim.run import default_config
from peer.sra.effects import Effect, Outcome, Record, Send
from peer.sra.machine import SraNode
from peer.sra.messages import Invite, Message


@dataclass
class SimAuction:
    index: int
    seller: str
    item: str
    started: float
    ended: float | None = None
    machines: dict[str, SraNode] = field(default_factory=dict)
    hops: dict[int, Hop] = field(default_factory=dict)
    messages: int = 0
    refusals: int = 0
    winner: str | None = None
    price: int | None = None

    @property
    def key(self) -> str:
        return f"{self.seller}/{self.item}"


class WorkloadSim:
    def __init__(self, scenario: Scenario, *, seed: int, concurrency: int, capacity: int,
                 guarded: bool = True, gather_window: float | None = None) -> None:
        self.scenario = scenario
        self.seed = seed
        self.concurrency = concurrency
        self.capacity = capacity
        self.delays = AsyncDelays(seed)
        config = default_config(scenario, "async", gather_window, max_transit=self.delays.max_delay)
        self.config = config if config.guarded == guarded else dataclasses.replace(config, guarded=guarded)
        self.rng = random.Random(f"sim-workload/{scenario.name}/{seed}")
        self.nodes = sorted(scenario.graph.nodes)
        self.heap: list[tuple[float, int, str, str, str | None, Message | None]] = []
        self.seq = 0
        self.auctions: dict[str, SimAuction] = {}
        self.live: dict[str, set[str]] = {n: set() for n in self.nodes}  # node -> auctions in flight there

    # ------------------------------------------------------------ scheduling

    def _push(self, at: float, node: str, auction: str, sender: str | None, msg: Message | None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, node, auction, sender, msg))

    def _start(self, index: int, now: float) -> None:
        seller = self.rng.choice(self.nodes)
        run = SimAuction(index, seller, f"item-{index}", now)
        self.auctions[run.key] = run
        self._join(run, seller)
        self._apply(run, seller, run.machines[seller].start(now), now)

    def _join(self, run: SimAuction, node: str) -> SraNode:
        machine = SraNode(node, self.scenario.neighbours(node), self.scenario.values[node], auction=run.key,
                          seed=self.seed, seller=run.seller, item=run.item, config=self.config)
        run.machines[node] = machine
        self.live[node].add(run.key)
        return machine

    def _apply(self, run: SimAuction, node: str, effects: list[Effect], now: float) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                run.messages += 1
                self._push(now + self.delays.delay(), effect.to, run.key, node, effect.msg)
            elif isinstance(effect, Record) and effect.entry.buyer == node:
                e = effect.entry
                run.hops[e.hop] = Hop(e.hop, e.seller, e.buyer, e.price)
            elif isinstance(effect, Outcome):
                self.live[node].discard(run.key)
                run.winner, run.price = effect.winner, effect.price
        machine = run.machines.get(node)
        if machine is not None and (deadline := machine.next_deadline()) is not None:
            self._push(deadline, node, run.key, None, None)

    # ------------------------------------------------------------ running

    def run(self, auctions: int) -> list[SimAuction]:
        started = 0
        while started < min(self.concurrency, auctions):
            self._start(started, 0.0)
            started += 1
        while self.heap:
            now, _, node, key, sender, msg = heapq.heappop(self.heap)
            run = self.auctions[key]
            machine = run.machines.get(node)
            if msg is None:
                if machine is not None and (d := machine.next_deadline()) is not None and d <= now:
                    self._apply(run, node, machine.on_timer(now), now)
            else:
                assert sender is not None
                if machine is None:
                    if not isinstance(msg, Invite):
                        continue  # a settlement flood reaching a node that is not in this auction
                    if len(self.live[node]) >= self.capacity:
                        run.refusals += 1  # the crossing invitation voids the edge
                        self._push(now + self.delays.delay(), sender, key, node, msg)
                        run.messages += 1
                        continue
                    machine = self._join(run, node)
                try:
                    self._apply(run, node, machine.receive(sender, msg, now), now)
                except RemoteProtocolError:
                    continue
            if run.ended is None and all(m.result is not None for m in run.machines.values()):
                run.ended = now
                if started < auctions:
                    self._start(started, now)
                    started += 1
        return sorted(self.auctions.values(), key=lambda r: r.index)

    def replay_matches(self, run: SimAuction) -> bool:
        hops = [run.hops[h] for h in sorted(run.hops)]
        winner = hops[-1].buyer if hops else run.seller
        nodes = {n: NodeReport(value=m.value, inviters=sorted(m.inviters),
                               invitees=sorted(m.children.keys() | m.declined),
                               parent=m.parents[0] if len(m.parents) == 1 else None)
                 for n, m in run.machines.items()}
        result = RunResult("sra", run.seller, self.seed, nodes, hops, winner, {}, 0)
        replayed = replay_run(result, {n: self.scenario.values[n] for n in nodes})
        return replayed.hops == hops and replayed.winner == winner == run.winner


def simulate_workload(scenario: Scenario, *, seed: int, auctions: int, concurrency: int, capacity: int = 64,
                      guarded: bool = True, gather_window: float | None = None) -> dict[str, Any]:
    sim = WorkloadSim(scenario, seed=seed, concurrency=concurrency, capacity=capacity, guarded=guarded,
                      gather_window=gather_window)
    runs = sim.run(auctions)
    ended = [r for r in runs if r.ended is not None]
    latencies = sorted(r.ended - r.started for r in ended)  # type: ignore[operator]
    span = max((r.ended for r in ended), default=0.0)  # type: ignore[type-var]

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 3) if latencies else None

    per = [{"index": r.index, "seller": r.seller, "item": r.item, "winner": r.winner,
            "price": r.price, "hops": len(r.hops), "participants": len(r.machines), "refusals": r.refusals,
            "messages": r.messages, "started": round(r.started, 3),
            "latency": None if r.ended is None else round(r.ended - r.started, 3),
            "replay_matches": sim.replay_matches(r) if r.ended is not None else False} for r in runs]
    return {
        "summary": {
            "scenario": scenario.name, "seed": seed, "auctions": auctions, "concurrency": concurrency,
            "capacity": capacity, "completed": len(ended),
            "replay_matches": sum(p["replay_matches"] for p in per),
            "refused_invitations": sum(r.refusals for r in runs),
            "throughput": round(len(ended) / span, 4) if span else None,
            "latency_p50": pct(0.5), "latency_p95": pct(0.95),
            "latency_max": round(latencies[-1], 3) if latencies else None,
            "messages_per_auction": round(sum(r.messages for r in runs) / len(runs), 1) if runs else None,
            "mean_participants": round(sum(len(r.machines) for r in runs) / len(runs), 2) if runs else None,
        },
        "auctions": per,
    }


def print_workload(result: dict[str, Any], json_out: bool) -> None:
    import json

    if json_out:
        print(json.dumps(result, indent=2))
        return
    s = result["summary"]
    print(f"{s['scenario']} seed {s['seed']}: {s['completed']}/{s['auctions']} auctions completed at concurrency "
          f"{s['concurrency']} (capacity {s['capacity']} per node); {s['replay_matches']} match their replay")
    print(f"refused invitations {s['refused_invitations']}; participants per auction {s['mean_participants']}; "
          f"{s['messages_per_auction']} messages per auction")
    print(f"throughput {s['throughput']} auctions per time unit; latency p50 {s['latency_p50']}, "
          f"p95 {s['latency_p95']}, max {s['latency_max']} (time units)")
