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
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import networkx as nx
import trio
from rich.console import Console
from rich.live import Live
from rich.console import Group

from peer.errors import ScenarioError
from peer.launch.workdir import run_in_workdir
from peer.launch.plan import NodePlan, free_ports
from peer.launch.linger import close_view, stdout_closed as _stdout_closed
from peer.launch.processes import Children
from peer.net.identity import Identity
from peer.node.eventlog import Tail
from peer.node.qpq_shell import PHASES, QpqPlan, read_allocations, setup_for, warm
from peer.qpq.router import run_machines
from peer.result import dumps
from peer.tui.qpq_view import AllocationRow, ClusterRow, QpqSnapshot, qpq_view


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
    def __init__(self, plans: list[NodePlan], degrees: dict[str, int], clusters: dict[str, tuple[str, ...]] | None = None,
                 phase: float = 1.0) -> None:
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
        # For the dashboard (peer.tui.qpq_view).
        self.clusters = dict(clusters or {p.name: (p.name,) for p in plans})
        self.cluster_of = {m: c for c, members in self.clusters.items() for m in members}
        self.phase = phase
        self.round_length = PHASES * phase + phase / 2  # as peer.node.qpq_shell.QpqPlan.round_length
        self.start_at: float | None = None  # wall clock of round 0's start (the coordinator's kickoff)
        self.alloc_cluster: dict[int, str] = {}
        self.flag_witnesses: dict[tuple[int, int, str, str], set[str]] = {}  # (round, level, member, reason)
        self.flags_by_cluster: Counter[str] = Counter()
        self._counted_round: int | None = None
        self.level_counts: Counter[tuple[str, str, str]] = Counter()  # (cluster, scope, type) this round

    def current(self, now: float | None = None) -> tuple[int | None, int | None]:
        """The round in progress and its phase, from the kickoff's start time and the phase length."""
        if self.start_at is None:
            return None, None
        since = (time.time() if now is None else now) - self.start_at
        if since < 0:
            return None, None
        r = int(since // self.round_length)
        return r, min(PHASES, int((since - r * self.round_length) // self.phase))

    def poll(self) -> None:
        r, _ = self.current()
        if r != self._counted_round:
            self._counted_round = r
            self.level_counts.clear()  # commitments and reveals are shown per round
        for name, tail in self.tails.items():
            for e in tail.read_new():
                kind = e.get("kind")
                if kind == "started":
                    self.started.add(name)
                elif kind == "link":
                    (self.links[name].add if e.get("up") else self.links[name].discard)(str(e.get("peer")))
                elif kind == "waiting":
                    self.waiting = True
                elif kind == "qpq_kickoff" and e.get("start") is not None:
                    self.start_at = float(e["start"])
                elif kind == "qpq_round":
                    self.rounds_done[name] += 1
                    r = int(e["round"])
                    self.round_seconds[r] = max(self.round_seconds.get(r, 0.0), float(e.get("seconds", 0.0)))
                    if e.get("winner"):
                        self.allocations[int(e["round"])] = str(e["winner"])
                elif kind == "qpq_alloc":
                    self.alloc_cluster[int(e.get("round", -1))] = str(e.get("cluster") or "")
                elif kind == "qpq_flag":
                    self.flags[str(e.get("reason"))] += 1
                    # Every member that sees a fault flags it: count each fault once, with its witnesses.
                    member = str(e.get("member"))
                    key = (int(e.get("round", 0)), int(e.get("level", 0)), member, str(e.get("reason")))
                    if key not in self.flag_witnesses:
                        self.flags_by_cluster[self.cluster_of.get(member, member)] += 1
                    self.flag_witnesses.setdefault(key, set()).add(name)
                elif kind == "send":
                    self.sends += 1
                    if e.get("type") in ("Commit", "Reveal"):
                        scope = "all" if e.get("peer") == "all" else "cluster"
                        self.level_counts[(self.cluster_of.get(name, "?"), scope, str(e["type"]))] += 1
                elif kind == "final":
                    self.finals[name] = e

    def linked(self) -> bool:
        return len(self.started) == len(self.tails) and all(
            len(self.links[n]) >= d for n, d in self.degrees.items())

    def snapshot(self, title: str, rounds: int, elapsed: float) -> QpqSnapshot:
        done = min(self.rounds_done.values(), default=0) if len(self.rounds_done) == len(self.tails) else 0
        r, phase = self.current()
        wins = Counter(self.cluster_of.get(w, "?") for w in self.allocations.values())
        rows = [ClusterRow(cluster=c, members=list(members),
                           commits=self.level_counts[(c, "cluster", "Commit")],
                           reveals=self.level_counts[(c, "cluster", "Reveal")],
                           winner_commits=self.level_counts[(c, "all", "Commit")],
                           winner_reveals=self.level_counts[(c, "all", "Reveal")],
                           flags=self.flags_by_cluster[c], wins=wins[c])
                for c, members in self.clusters.items()]
        allocations = [AllocationRow(round=k, winner=self.allocations.get(k, ""),
                                     cluster=self.alloc_cluster.get(k, self.cluster_of.get(self.allocations.get(k, ""), "")),
                                     seconds=self.round_seconds.get(k))
                       for k in sorted(set(self.allocations) | set(self.round_seconds))]
        linked = sum(1 for n, d in self.degrees.items() if len(self.links[n]) >= d)
        return QpqSnapshot(title=title, nodes=len(self.tails), linked=linked, rounds=rounds,
                           round=None if r is None else min(r, rounds - 1) if done < rounds else rounds - 1,
                           phase=phase if done < rounds else None, rounds_done=done, clusters=rows,
                           allocations=allocations, flags=self._flag_lines(), messages=self.sends,
                           elapsed=elapsed)

    def _flag_lines(self, last: int = 3) -> list[str]:
        lines = []
        for (r, level, member, reason), witnesses in list(self.flag_witnesses.items())[-last:]:
            where = "cluster" if level == 0 else "winner"
            lines.append(f"round {r + 1}, {where} level: {member} {reason.replace('_', ' ')} "
                         f"(seen by {len(witnesses)} node{'s' if len(witnesses) != 1 else ''})")
        return lines

    def view(self, title: str, rounds: int, elapsed: float, *, height: int | None = None,
             footer: str | None = None) -> Group:
        return qpq_view(self.snapshot(title, rounds, elapsed), height=height, footer=footer)


def launch_qpq(scenario: Path, *, rounds: int, phase: float, headless: bool, json_out: bool,
               workdir: Path | None, link_timeout: float, timeout: float, linger: float = 0.0) -> int:
    err = Console(stderr=True, soft_wrap=True)
    return run_in_workdir("peer-launch-qpq-", workdir, err,
                          lambda root: _launch(scenario, root, err, rounds=rounds, phase=phase, headless=headless, json_out=json_out,
                                        link_timeout=link_timeout, timeout=timeout, linger=linger))


def _launch(scenario: Path, root: Path, err: Console, *, rounds: int, phase: float, headless: bool, json_out: bool,
            link_timeout: float, timeout: float, linger: float) -> int:
    console = Console(stderr=json_out)
    try:
        setup, plans = plan_qpq(scenario, root, rounds=rounds, phase=phase)
    except ScenarioError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    assert setup.graph is not None
    watch = QpqWatch(plans, {n: setup.graph.degree(n) for n in setup.membership.nodes},
                     dict(setup.membership.clusters), phase=phase)
    children = Children()
    timing: dict[str, float] = {}
    code = 0
    live = None if headless or json_out else Live(console=console, auto_refresh=False)

    def draw(now: float, footer: str | None = None) -> None:
        if live is not None:
            live.update(watch.view(setup.name, rounds, now, height=console.size.height, footer=footer), refresh=True)

    async def run() -> None:
        t0 = time.monotonic()
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
            draw(now)
            await trio.sleep(0.1)

    try:
        children.start(plans)
        if live is not None:
            live.start()
        trio.run(run)
    except RuntimeError as exc:
        err.print(f"error: {exc}", markup=False)
        code = 1
    except KeyboardInterrupt:
        code = 130
    finally:
        children.stop()
    close_view(live, code == 0, linger, lambda footer: draw(timing.get("done", 0.0), footer=footer), "check")
    if code:
        return code
    report = check_qpq(setup, plans, rounds)
    report["timing"] = {k: round(v, 3) for k, v in timing.items()}
    if watch.round_seconds:
        # From a round's start to the moment the last node recorded its allocation.
        report["timing"]["round_seconds_max"] = round(max(watch.round_seconds.values()), 3)
        report["timing"]["round_seconds_mean"] = round(sum(watch.round_seconds.values()) / len(watch.round_seconds), 3)
    report["timing"]["phase"] = phase
    report["flags"] = dict(watch.flags)
    try:
        if json_out:
            sys.stdout.write(dumps(report) + "\n")
            sys.stdout.flush()
        else:
            if live is None:
                console.print(watch.view(setup.name, rounds, timing.get("done", 0.0)))
            c = report["check"]
            console.print(f"check {'ok' if c['ok'] else 'FAILED'}: {c['copies_verified']}/{c['copies']} allocation "
                          f"copies verified, identical: {c['identical']}, equal to the simulator: "
                          f"{c['matches_simulator']}")
            for problem in c["problems"]:
                console.print(f"  - {problem}", markup=False)
            console.file.flush()
    except (OSError, SystemExit):
        _stdout_closed()
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
