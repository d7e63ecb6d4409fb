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
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from rich.console import Console
from rich.live import Live

from peer.launch.linger import close_view
from peer.launch.plan import NodePlan, plan_nodes
from peer.launch.processes import Children
from peer.launch.stream_monitor import StreamMonitor
from peer.ledger import LedgerStore
from peer.money import parse_money
from peer.node.control import socket_path
from peer.node.eventlog import read_all
from peer.reference.replay import replay_run
from peer.result import Hop, NodeReport, RunResult
from peer.scenario.model import Scenario
from peer.tui.stream_view import stream_view

POLL = 0.2
DRAW_EVERY = 0.25  # seconds between two dashboard frames


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


def draw_runs(scenario: Scenario, seed: int, count: int) -> list[AuctionRun]:
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
    name_of = {p.key_hex: name for name, p in plans.items()}  # a seller knows only its neighbours' names
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
            run.winner = name_of.get(str(out.get("winner")), out.get("winner_name"))
            run.price, run.hops = out.get("price"), out.get("hops", 0)
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


def cpu_seconds(children: Children) -> float:
    """User + system CPU of every live node process so far (Linux /proc), in seconds.

    Wall time on a shared, loaded machine says little; CPU seconds per auction, summed over
    the nodes, is what bounds throughput: with C cores, at most C / that many auctions/s.
    """
    total = 0
    for proc in children.procs.values():
        pid = proc if isinstance(proc, int) else proc.pid  # a forked node's pid, or an exec'd node's Popen
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


class Dashboard:
    """The live terminal view of a workload: a rich ``Live`` without its refresh thread (we draw
    from a trio task) and the monitor it draws from, which ``execute_workload`` attaches."""

    def __init__(self, console: Console) -> None:
        self.live = Live(console=console, auto_refresh=False, transient=False)
        self.monitor: StreamMonitor | None = None

    async def show(self) -> None:
        """Redraw from the logs until cancelled."""
        while True:
            self.draw()
            await trio.sleep(DRAW_EVERY)

    def draw(self, footer: str | None = None) -> None:
        if self.monitor is None:
            return
        self.monitor.poll()
        try:
            self.live.update(stream_view(self.monitor.snapshot(), height=self.live.console.size.height,
                                         footer=footer), refresh=True)
        except OSError:  # the terminal went away: the run goes on, its summary decides the exit code
            pass


def execute_workload(scenario: Scenario, root: Path, *, seed: int, auctions: int, concurrency: int,
                     rate: float | None, gather_window: float, reply_timeout: float, context_timeout: float,
                     confirm_timeout: float | None, paper_resale: bool, link_timeout: float,
                     timeout: float, verifiable_coins: bool = False, dashboard: Dashboard | None = None,
                     ) -> tuple[dict[str, Any] | None, list[AuctionRun], str | None]:
    """Run the network and the auctions in ``root``; (summary, runs, None) or (None, runs, error).

    With a ``dashboard``, it (:func:`peer.tui.stream_view.stream_view`) follows the stream;
    it is started once the nodes are forked and left on screen for the caller to close.
    """
    plans = plan_nodes(scenario, root, seed=seed, gather_window=gather_window, reply_timeout=reply_timeout,
                       context_timeout=context_timeout, confirm_timeout=confirm_timeout, paper_resale=paper_resale,
                       verifiable_coins=verifiable_coins)
    for plan in plans:  # no sale at start-up: the launcher sells through the control sockets
        if "--sell" in plan.argv:
            i = plan.argv.index("--sell")
            del plan.argv[i:i + 3]  # --sell ITEM --start-on-signal
    runs = draw_runs(scenario, seed, auctions)
    children = Children()
    memory: dict[str, int] = {}
    cpu: list[float] = []
    monitor = StreamMonitor(plans, runs, title=f"{scenario.name} (seed {seed})", concurrency=concurrency)
    try:
        children.start(plans)
        if dashboard is not None:
            dashboard.monitor = monitor
            dashboard.live.start()  # after the fork: the children must not inherit a live terminal view

        async def stream() -> float:
            await wait_linked(plans, children, link_timeout)
            monitor.status = "running"
            cpu.append(cpu_seconds(children))
            spent = await drive({p.name: p for p in plans}, runs, concurrency=concurrency, rate=rate,
                                timeout=timeout)
            monitor.stopped = time.monotonic()
            monitor.status = "settling ledgers"
            await settle_ledgers(plans, 10.0)
            cpu.append(cpu_seconds(children))
            memory.update(children.memory_kib())
            monitor.status = "checking"
            return spent

        async def main() -> float | str:
            # The dashboard runs beside the stream; the stream's own failures come back as a
            # message (raised inside the nursery they would arrive wrapped in an ExceptionGroup).
            async with trio.open_nursery() as nursery:
                if dashboard is not None:
                    nursery.start_soon(dashboard.show)
                try:
                    return await stream()
                except (RuntimeError, trio.TooSlowError) as exc:
                    return str(exc) or f"not every node linked within {link_timeout:g} s"
                finally:
                    nursery.cancel_scope.cancel()

        outcome = trio.run(main)
    finally:
        children.stop()
    if isinstance(outcome, str):
        return None, runs, outcome
    wall = outcome
    if dashboard is not None:
        dashboard.draw()
    check_auctions(scenario, seed, plans, runs)
    result = summary(runs, wall, len(plans))
    if memory:
        result["memory_kib_per_node"] = round(sum(memory.values()) / len(memory))
        result["memory_kib_max"] = max(memory.values())
    if len(cpu) == 2 and auctions:
        per = (cpu[1] - cpu[0]) / auctions
        result["cpu_seconds_per_auction"] = round(per, 3)  # summed over every node process
        result["cpu_bound_per_core"] = round(1 / per, 3) if per > 0 else None  # auctions/s one core allows
    return result, runs, None


def run_workload(scenario: Scenario, *, seed: int, auctions: int, concurrency: int, rate: float | None,
                 workdir: Path | None, json_out: bool, headless: bool = True, linger: float = 0.0,
                 **timeouts: Any) -> int:
    """The whole ``--auctions`` mode; returns the exit code (0: every auction completed and checked).

    Unless ``headless`` (or ``json_out``), a live dashboard follows the stream and stays on
    screen for ``linger`` seconds (or until a key) once every auction is checked.
    """
    temp = workdir is None
    root = Path(tempfile.mkdtemp(prefix="peer-workload-")) if workdir is None else workdir
    root.mkdir(parents=True, exist_ok=True)
    dashboard = None if headless or json_out else Dashboard(Console())
    interrupted = False
    try:
        result, runs, error = execute_workload(scenario, root, seed=seed, auctions=auctions,
                                               concurrency=concurrency, rate=rate, dashboard=dashboard, **timeouts)
    except* KeyboardInterrupt:  # Ctrl-C inside trio's nurseries arrives wrapped in an exception group
        interrupted = True
    if interrupted:
        if dashboard is not None:
            dashboard.live.stop()
        print("interrupted: every node stopped", file=sys.stderr)
        if temp:
            shutil.rmtree(root, ignore_errors=True)
        return 130
    if dashboard is not None:
        if dashboard.monitor is not None and result is not None:
            dashboard.monitor.status = f"done: {result['checked_ok']}/{auctions} checked"
            dashboard.draw()
        close_view(dashboard.live, result is not None, linger, dashboard.draw, "summary")
    if result is None:
        print(f"error: {error}", file=sys.stderr)
        if temp:
            _keep_logs(root)
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
              f"node memory {result.get('memory_kib_per_node', '?')} KiB (PSS, mean); "
              f"{result.get('cpu_seconds_per_auction', '?')} CPU s per auction (all nodes)")
        for run in runs:
            if run.outcome != "completed" or not (run.checks.get("replay_matches")
                                                  and run.checks.get("ledger_identical")):
                print(f"  #{run.index} {run.item} from {run.seller}: {run.outcome} {run.error or ''} {run.checks}")
    if temp and ok:
        shutil.rmtree(root, ignore_errors=True)
    elif temp:
        _keep_logs(root)
    return 0 if ok else 1


def _keep_logs(root: Path) -> None:
    """A failed run in a temporary directory: keep logs and ledgers to look at, never the private keys."""
    shutil.rmtree(root / "keys", ignore_errors=True)
    print(f"logs kept in {root} (keys removed)", file=sys.stderr)
