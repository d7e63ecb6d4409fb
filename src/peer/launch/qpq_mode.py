"""``tools/launch`` for a QPQ scenario: a resource stream over real node processes.

Same machinery as an SRA launch (forked ``peer run`` children, NDJSON logs, a
live dashboard, every child stopped on exit), with a QPQ plan per node.  The
coordinator (the first member) floods the signed kickoff once every node is
linked.  At the end every node's allocation file must verify (chain and its
own signatures), all copies must be identical, and they must equal the
simulator's allocations for the same scenario, round by round.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import networkx as nx
import trio
from rich.console import Console
from rich.live import Live
from rich.table import Table

from peer.errors import ScenarioError
from peer.launch.plan import NodePlan, free_ports
from peer.launch.processes import Children
from peer.net.identity import Identity
from peer.node.eventlog import Tail
from peer.node.qpq_shell import QpqPlan, read_allocations, setup_for, warm
from peer.qpq.router import run_machines
from peer.result import dumps


def is_qpq_scenario(path: Path) -> bool:
    try:
        return "qpq" in tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False  # the SRA loader reports the problem properly


def plan_qpq(scenario: Path, root: Path, *, rounds: int, phase: float) -> tuple[Any, list[NodePlan]]:
    probe = setup_for(QpqPlan(scenario=scenario.resolve(), me="?", keys={}, rounds=rounds, phase=phase, coordinator="?"))
    warm(probe)  # before the fork: every child inherits the clustering and the KS tables
    if probe.graph is None:
        raise ScenarioError(str(scenario), "graph", "a launched QPQ scenario needs a [graph]: nodes link to neighbours")
    names = list(probe.membership.nodes)
    ids = {n: Identity.from_seed(hashlib.sha256(f"peer/launch-qpq/{probe.name}/{probe.seed}/{n}".encode()).digest())
           for n in names}
    keys = {n: i.public_hex for n, i in ids.items()}
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    for sub in ("keys", "data", "logs", "plans"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    coordinator = names[0]
    scoped = all(nx.is_connected(probe.graph.subgraph(members)) for members in probe.membership.clusters.values())
    plans = []
    for name in names:
        key_path = root / "keys" / f"{name}.key"
        if not key_path.exists():
            ids[name].save(key_path)
        plan_path = root / "plans" / f"{name}.json"
        QpqPlan(scenario=scenario.resolve(), me=name, keys=keys, rounds=rounds, phase=phase,
                coordinator=coordinator, scoped=scoped).dump(plan_path)
        neighbours = ",".join(f"{nb}=ws://127.0.0.1:{ports[nb]}#{keys[nb]}" for nb in sorted(probe.graph.neighbors(name)))
        argv = ["run", "--port", str(ports[name]), "--key", str(key_path), "--name", name,
                "--neighbours", neighbours, "--data-dir", str(root / "data" / name),
                "--log-json", str(root / "logs" / f"{name}.ndjson"), "--qpq-plan", str(plan_path), "--no-tui"]
        if name == coordinator:
            argv.append("--start-on-signal")
        plans.append(NodePlan(name=name, identity=ids[name], port=ports[name], key_path=key_path,
                              data_dir=root / "data" / name, log_path=root / "logs" / f"{name}.ndjson",
                              out_path=root / "logs" / f"{name}.out", argv=argv))
    return probe, plans


class QpqWatch:
    def __init__(self, plans: list[NodePlan], degrees: dict[str, int]) -> None:
        self.tails = {p.name: Tail(p.log_path) for p in plans}
        self.degrees = degrees
        self.links: dict[str, set[str]] = {p.name: set() for p in plans}
        self.started: set[str] = set()
        self.waiting = False
        self.rounds_done: Counter[str] = Counter()
        self.wins: Counter[str] = Counter()
        self.flags: Counter[str] = Counter()
        self.allocations: dict[int, str] = {}
        self.finals: dict[str, dict[str, Any]] = {}
        self.sends = 0
        self.round_seconds: dict[int, float] = {}  # round -> from its start to the last node's allocation

    def poll(self) -> None:
        for name, tail in self.tails.items():
            for e in tail.read_new():
                kind = e.get("kind")
                if kind == "started":
                    self.started.add(name)
                elif kind == "link":
                    (self.links[name].add if e.get("up") else self.links[name].discard)(str(e.get("peer")))
                elif kind == "waiting":
                    self.waiting = True
                elif kind == "qpq_round":
                    self.rounds_done[name] += 1
                    r = int(e["round"])
                    self.round_seconds[r] = max(self.round_seconds.get(r, 0.0), float(e.get("seconds", 0.0)))
                    if e.get("winner"):
                        self.allocations[int(e["round"])] = str(e["winner"])
                elif kind == "qpq_flag":
                    self.flags[str(e.get("reason"))] += 1
                elif kind == "send":
                    self.sends += 1
                elif kind == "final":
                    self.finals[name] = e

    def linked(self) -> bool:
        return len(self.started) == len(self.tails) and all(
            len(self.links[n]) >= d for n, d in self.degrees.items())

    def view(self, title: str, rounds: int, elapsed: float) -> Table:
        table = Table(title=f"{title}: QPQ, {len(self.tails)} nodes, t={elapsed:5.1f}s", title_justify="left")
        table.add_column("round")
        table.add_column("winner")
        done = min(self.rounds_done.values(), default=0) if len(self.rounds_done) == len(self.tails) else 0
        for r in sorted(self.allocations)[-10:]:
            table.add_row(str(r), self.allocations[r])
        table.caption = (f"rounds done on every node: {done}/{rounds}   linked: "
                         f"{sum(1 for n, d in self.degrees.items() if len(self.links[n]) >= d)}/{len(self.tails)}   "
                         f"flags: {dict(self.flags)}   messages sent: {self.sends}")
        return table


def launch_qpq(scenario: Path, *, rounds: int, phase: float, headless: bool, json_out: bool,
               workdir: Path | None, link_timeout: float, timeout: float, linger: float = 0.0) -> int:
    err = Console(stderr=True, soft_wrap=True)
    console = Console(stderr=json_out)
    root = Path(tempfile.mkdtemp(prefix="peer-launch-qpq-")) if workdir is None else workdir
    root.mkdir(parents=True, exist_ok=True)
    try:
        setup, plans = plan_qpq(scenario, root, rounds=rounds, phase=phase)
    except ScenarioError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    assert setup.graph is not None
    watch = QpqWatch(plans, {n: setup.graph.degree(n) for n in setup.membership.nodes})
    children = Children()
    timing: dict[str, float] = {}
    code = 0

    async def run() -> None:
        t0 = time.monotonic()
        live = None if headless or json_out else Live(console=console, auto_refresh=False)
        if live is not None:
            live.start()
        try:
            signalled = False
            while True:
                watch.poll()
                now = time.monotonic() - t0
                if not signalled and now > link_timeout:  # first: late linking still missed it
                    raise RuntimeError(f"not every node linked within {link_timeout:g} s")
                if not signalled and watch.linked() and watch.waiting:
                    timing["linked"] = now
                    children.signal(plans[0].name, signal.SIGUSR1)
                    signalled = True
                if signalled and len(watch.finals) == len(plans):
                    timing["done"] = now
                    return
                if children.dead():
                    name, c = next(iter(children.dead().items()))
                    raise RuntimeError(f"node {name} exited with code {c}")
                if signalled and now - timing["linked"] > timeout:
                    raise RuntimeError(f"the stream did not finish within {timeout:.0f} s")
                if live is not None:
                    live.update(watch.view(setup.name, rounds, now), refresh=True)
                await trio.sleep(0.1)
        finally:
            if live is not None:
                live.stop()

    try:
        children.start(plans)
        trio.run(run)
    except RuntimeError as exc:
        err.print(f"error: {exc}", markup=False)
        code = 1
    except KeyboardInterrupt:
        code = 130
    finally:
        children.stop()
    if code:
        err.print(f"logs kept in {root}", markup=False)
        return code
    report = check_qpq(setup, plans, rounds)
    report["timing"] = {k: round(v, 3) for k, v in timing.items()}
    if watch.round_seconds:
        # From a round's start to the moment the last node recorded its allocation.
        report["timing"]["round_seconds_max"] = round(max(watch.round_seconds.values()), 3)
        report["timing"]["round_seconds_mean"] = round(sum(watch.round_seconds.values()) / len(watch.round_seconds), 3)
    report["timing"]["phase"] = phase
    report["flags"] = dict(watch.flags)
    if json_out:
        sys.stdout.write(dumps(report) + "\n")
    else:
        console.print(watch.view(setup.name, rounds, timing.get("done", 0.0)))
        c = report["check"]
        console.print(f"check {'ok' if c['ok'] else 'FAILED'}: {c['copies_verified']}/{c['copies']} allocation copies "
                      f"verified, identical: {c['identical']}, equal to the simulator: {c['matches_simulator']}")
        for problem in c["problems"]:
            console.print(f"  - {problem}", markup=False)
    if workdir is None and report["check"]["ok"]:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if report["check"]["ok"] else 1


def check_qpq(setup: Any, plans: list[NodePlan], rounds: int) -> dict[str, Any]:
    expected = run_machines(setup, rounds=rounds).entries
    problems: list[str] = []
    copies: dict[str, tuple[str, ...]] = {}
    verified = 0
    for plan in plans:
        if not setup.profile(plan.name).takes_part:
            continue
        path = plan.data_dir / "qpq" / f"{setup.stream}.ndjson"
        entries, issues = read_allocations(path, setup, plan.identity.public_hex)
        if issues:
            problems.append(f"{plan.name}: {'; '.join(issues[:2])}")
        else:
            verified += 1
        copies[plan.name] = tuple(e.hash for e in entries)
    identical = len(set(copies.values())) == 1
    if not identical:
        problems.append("nodes recorded different allocations")
    first = next(iter(copies.values()), ())
    matches = list(first) == [e.hash for e in expected]
    if not matches:
        problems.append("the allocations differ from the simulator's for the same scenario")
    return {
        "mechanism": "qpq", "scenario": setup.name, "rounds": rounds, "stream": setup.stream,
        "allocations": [{"round": e.round, "winner": e.winner, "cluster": e.cluster} for e in expected[: len(first)]],
        "check": {"ok": not problems, "copies": len(copies), "copies_verified": verified, "identical": identical,
                  "matches_simulator": matches, "problems": problems},
    }
