"""``tools/launch SCENARIO --auctions N``: a stream of auctions on a network that stays up.

Every node runs as a real ``peer run`` process with no sale of its own; once
all are linked, the launcher starts N auctions through the sellers' control
sockets (``DATA_DIR/control.sock``), sellers drawn by the run seed, items named
``item-<i>``, at most ``--concurrency`` in flight and at most ``--rate`` new
ones per second.  When the last one ends it stops the network and checks each
auction: against its replay on the tree it realised (from every node's
``final`` event of that auction) and against every ledger copy (all identical
and verified).  It prints a summary (completed, aborted, throughput, latency
p50/p95/max, SRA messages per auction) and, with ``--json``, every auction's
result.  Every wait is bounded.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from peer.launch.plan import NodePlan, plan_nodes
from peer.launch.processes import Children
from peer.ledger import LedgerStore
from peer.money import parse_money
from peer.node.control import socket_path
from peer.node.eventlog import read_all
from peer.reference.replay import replay_run
from peer.result import Hop, NodeReport, RunResult
from peer.scenario.model import Scenario

POLL = 0.2


@dataclass
class AuctionRun:
    index: int
    seller: str
    item: str
    auction: str | None = None
    started: float = 0.0
    ended: float = 0.0
    outcome: str = "pending"  # completed | aborted | failed
    error: str | None = None
    winner: str | None = None
    price: str | None = None
    hops: int = 0
    checks: dict[str, Any] = field(default_factory=dict)
    messages: int = 0

    @property
    def latency(self) -> float:
        return self.ended - self.started

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "seller": self.seller, "item": self.item, "auction": self.auction,
                "outcome": self.outcome, "error": self.error, "winner": self.winner, "price": self.price,
                "hops": self.hops, "latency": round(self.latency, 4), "messages": self.messages,
                "checks": self.checks}


async def ask(plan: NodePlan, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One control request to ``plan``'s node; its answer, or ``{"ok": False, "error": ...}``."""
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_unix_socket(str(socket_path(plan.data_dir)))
            async with stream:
                await stream.send_all(json.dumps(payload).encode() + b"\n")
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        break
                    buf += chunk
        answer = json.loads(buf)
        return answer if isinstance(answer, dict) else {"ok": False, "error": "malformed answer"}
    except (OSError, ValueError, trio.TooSlowError, trio.BrokenResourceError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def draw(scenario: Scenario, seed: int, count: int) -> list[AuctionRun]:
    rng = random.Random(f"workload/{scenario.name}/{seed}")
    nodes = sorted(scenario.graph.nodes)
    return [AuctionRun(i, rng.choice(nodes), f"item-{i}") for i in range(count)]


async def wait_linked(plans: list[NodePlan], children: Children, limit: float) -> None:
    with trio.fail_after(limit):
        pending = list(plans)
        while pending:
            dead = children.dead()
            if dead:
                raise RuntimeError(f"node(s) exited: {dead} (see their .out logs)")
            answers = [await ask(p, {"cmd": "status"}, 5.0) for p in pending]
            pending = [p for p, a in zip(pending, answers, strict=True)
                       if not (a.get("ok") and all(link["up"] for link in a["links"]))]
            if pending:
                await trio.sleep(POLL)


async def drive(plans: dict[str, NodePlan], runs: list[AuctionRun], *, concurrency: int, rate: float | None,
                timeout: float) -> float:
    """Start every auction and wait for each; returns the wall time from first start to last end."""
    limiter = trio.Semaphore(concurrency)
    t0 = time.monotonic()

    async def one(run: AuctionRun) -> None:
        try:
            run.started = time.monotonic()
            answer = await ask(plans[run.seller], {"cmd": "sell", "item": run.item, "wait": True,
                                                   "timeout": timeout}, timeout + 10)
            run.ended = time.monotonic()
            if not answer.get("ok"):
                run.outcome, run.error = "failed", str(answer.get("error"))
                return
            out = answer["outcome"]
            run.auction = out["auction"]
            run.outcome = out["outcome"]
            run.winner, run.price, run.hops = out.get("winner_name"), out.get("price"), out.get("hops", 0)
            run.error = out.get("reason")
        finally:
            limiter.release()

    async with trio.open_nursery() as nursery:
        for run in runs:
            if rate:
                await trio.sleep_until(t0 + run.index / rate)
            await limiter.acquire()  # never more than ``concurrency`` in flight; released by ``one``
            nursery.start_soon(one, run)
    return time.monotonic() - t0


async def settle_ledgers(plans: list[NodePlan], limit: float) -> None:
    """Until no node has an auction in flight (their last ledger entries are in)."""
    with trio.move_on_after(limit):
        while True:
            answers = [await ask(p, {"cmd": "status"}, 5.0) for p in plans]
            if all(a.get("ok") and not a["in_flight"] for a in answers):
                return
            await trio.sleep(POLL)


def check_auctions(scenario: Scenario, seed: int, plans: list[NodePlan], runs: list[AuctionRun]) -> None:
    """Replay and ledger checks of every auction (after the network stopped)."""
    finals: dict[str, dict[str, dict[str, Any]]] = {}  # auction -> node key -> its final event
    sends: dict[str, int] = {}
    for plan in plans:
        for event in read_all(plan.log_path):
            auction = event.get("auction")
            if event.get("kind") == "final" and auction:
                finals.setdefault(auction, {})[plan.key_hex] = event
            elif event.get("kind") == "send" and auction:
                sends[auction] = sends.get(auction, 0) + 1
    chains: dict[str, dict[str, tuple[str, ...] | None]] = {}
    verified = 0
    stores = []
    for plan in plans:
        store = LedgerStore.open_data_dir(plan.data_dir, read_only=True)
        stores.append(store)
        verified += store.verify_all().ok
    try:
        values = {p.key_hex: scenario.values[p.name] for p in plans}
        for run in runs:
            if run.auction is None:
                continue
            run.messages = sends.get(run.auction, 0)
            copies = {}
            for plan, store in zip(plans, stores, strict=True):
                chain = store.chain(run.auction)
                copies[plan.name] = None if chain is None else tuple(e.hash for e in chain.entries)
            chains[run.auction] = copies
            run.checks["ledger_identical"] = len(set(copies.values())) == 1 and None not in copies.values()
            if run.outcome != "completed":
                continue
            seller_store = stores[[p.name for p in plans].index(run.seller)]
            chain = seller_store.chain(run.auction)
            assert chain is not None
            hops = [Hop(h.body.hop, h.body.seller, h.body.buyer, h.body.price) for h in chain.hops]
            seller_key = chain.announcement.seller
            winner = hops[-1].buyer if hops else seller_key
            nodes = {}
            for key, event in finals.get(run.auction, {}).items():
                nodes[key] = NodeReport(value=parse_money(event["value"]), inviters=list(event["inviters"]),
                                        invitees=list(event["invitees"]), parent=event.get("parent"))
            result = RunResult("sra", seller_key, seed, nodes, hops, winner, {}, 0)
            replayed = replay_run(result, {k: values[k] for k in nodes})
            run.checks["replay_matches"] = replayed.hops == hops and replayed.winner == winner
            run.checks["nodes_final"] = len(nodes)
    finally:
        for store in stores:
            store.close()
    for run in runs:
        run.checks["ledger_verified"] = verified


def summary(runs: list[AuctionRun], wall: float, nodes: int) -> dict[str, Any]:
    done = [r for r in runs if r.outcome == "completed"]
    latencies = sorted(r.latency for r in runs if r.outcome in ("completed", "aborted"))

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 3) if latencies else None

    checked_ok = [r for r in done if r.checks.get("replay_matches") and r.checks.get("ledger_identical")]
    return {
        "auctions": len(runs), "completed": len(done),
        "aborted": sum(r.outcome == "aborted" for r in runs), "failed": sum(r.outcome == "failed" for r in runs),
        "checked_ok": len(checked_ok), "nodes": nodes,
        "seconds": round(wall, 3), "throughput": round(len(runs) / wall, 3) if wall > 0 else None,
        "latency_p50": pct(0.5), "latency_p95": pct(0.95), "latency_max": round(latencies[-1], 3) if latencies else None,
        "messages_per_auction": round(sum(r.messages for r in runs) / len(runs), 1) if runs else None,
    }


def execute_workload(scenario: Scenario, root: Path, *, seed: int, auctions: int, concurrency: int,
                     rate: float | None, gather_window: float, reply_timeout: float, context_timeout: float,
                     confirm_timeout: float | None, paper_resale: bool, link_timeout: float,
                     timeout: float, verifiable_coins: bool = False) -> tuple[dict[str, Any] | None, list[AuctionRun], str | None]:
    """Run the network and the auctions in ``root``; (summary, runs, None) or (None, runs, error)."""
    plans = plan_nodes(scenario, root, seed=seed, gather_window=gather_window, reply_timeout=reply_timeout,
                       context_timeout=context_timeout, confirm_timeout=confirm_timeout, paper_resale=paper_resale,
                       verifiable_coins=verifiable_coins)
    for plan in plans:  # no sale at start-up: the launcher sells through the control sockets
        if "--sell" in plan.argv:
            i = plan.argv.index("--sell")
            del plan.argv[i:i + 3]  # --sell ITEM --start-on-signal
    runs = draw(scenario, seed, auctions)
    children = Children()
    memory: dict[str, int] = {}
    try:
        children.start(plans)

        async def main() -> float:
            await wait_linked(plans, children, link_timeout)
            spent = await drive({p.name: p for p in plans}, runs, concurrency=concurrency, rate=rate,
                                timeout=timeout)
            await settle_ledgers(plans, 10.0)
            memory.update(children.memory_kib())
            return spent

        wall = trio.run(main)
    except (RuntimeError, trio.TooSlowError) as exc:
        return None, runs, str(exc) or f"not every node linked within {link_timeout:g} s"
    finally:
        children.stop()
    check_auctions(scenario, seed, plans, runs)
    result = summary(runs, wall, len(plans))
    if memory:
        result["memory_kib_per_node"] = round(sum(memory.values()) / len(memory))
        result["memory_kib_max"] = max(memory.values())
    return result, runs, None


def run_workload(scenario: Scenario, *, seed: int, auctions: int, concurrency: int, rate: float | None,
                 workdir: Path | None, json_out: bool, **timeouts: Any) -> int:
    """The whole ``--auctions`` mode; returns the exit code (0: every auction completed and checked)."""
    temp = workdir is None
    root = Path(tempfile.mkdtemp(prefix="peer-workload-")) if workdir is None else workdir
    root.mkdir(parents=True, exist_ok=True)
    try:
        result, runs, error = execute_workload(scenario, root, seed=seed, auctions=auctions,
                                               concurrency=concurrency, rate=rate, **timeouts)
    except KeyboardInterrupt:
        print("interrupted: every node stopped", file=sys.stderr)
        return 130
    if result is None:
        print(f"error: {error}", file=sys.stderr)
        if temp:
            print(f"logs kept in {root}", file=sys.stderr)
        return 1
    ok = result["checked_ok"] == auctions
    if json_out:
        sys.stdout.write(json.dumps({"summary": result, "auctions": [r.to_json() for r in runs]}, indent=2) + "\n")
    else:
        print(f"{result['completed']}/{auctions} completed, {result['aborted']} aborted, {result['failed']} failed; "
              f"{result['checked_ok']} match their replay and every ledger copy")
        print(f"throughput {result['throughput']} auctions/s over {result['seconds']} s at concurrency "
              f"{concurrency}; latency p50 {result['latency_p50']} s, p95 {result['latency_p95']} s, "
              f"max {result['latency_max']} s; {result['messages_per_auction']} SRA messages per auction; "
              f"node memory {result.get('memory_kib_per_node', '?')} KiB (PSS, mean)")
        for run in runs:
            if run.outcome != "completed" or not (run.checks.get("replay_matches")
                                                  and run.checks.get("ledger_identical")):
                print(f"  #{run.index} {run.item} from {run.seller}: {run.outcome} {run.error or ''} {run.checks}")
    if temp and ok:
        shutil.rmtree(root, ignore_errors=True)
    elif temp:
        print(f"logs kept in {root}", file=sys.stderr)
    return 0 if ok else 1
