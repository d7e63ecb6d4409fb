"""``peer experiment deviations``: what each strategic, malicious or faulty behaviour does to SRA.

For every graph of the set (the shipped SRA scenarios and seeded random
connected graphs) and every run seed, the report runs the auction honestly,
then once per (behaviour kind, deviator) with the SAME seed, and once per
chaos setting.  Per kind it reports the deviator's utility against truthful
play (the empirical check of ex-post IC, and of IR for everyone else), who
caught it and with what evidence, and how the auctions ended; per chaos
setting, how the auctions ended and whether every honest ledger stayed intact.

Utilities are always computed with true values.  A Sybil's utility is the sum
over its identities.  To compare graphs with different money scales, the
utility columns are in units of the scenario's highest value (``top``).

A deviant run without faults that does not complete would be a simulator bug
(``simulate`` raises); it is counted under ``bug``, with stalls.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from peer.errors import ScenarioError
from peer.experiments.adversaries import BY_NAME, KIND_NAMES, Kind, Situation, pick_deviators
from peer.experiments.deviation_instances import random_connected
from peer.money import SCALE
from peer.result import RunResult
from peer.scenario.load import load_scenario
from peer.scenario.model import Scenario, explicit_scenario
from peer.sim.chaos import parse_chaos
from peer.sim.network import SimNetwork
from peer.sim.run import SimulationError, default_config, simulate

# label -> (chaos spec, whether the nodes' margins cover its delays)
CHAOS_SETTINGS: dict[str, tuple[str, bool]] = {
    "drop 1%": ("drop=0.01", True),
    "drop 5%": ("drop=0.05", True),
    "drop 20%": ("drop=0.2", True),
    "drop 10% stage 3 only": ("drop=0.1,stages=allocation", True),
    "drop 10% settlement only": ("drop=0.1,stages=settlement", True),
    "dup 10%": ("dup=0.1", True),
    "dup 50%": ("dup=0.5", True),
    "delay U[0,0.5]": ("delay=0.5", True),
    "delay U[0,3]": ("delay=3", True),
    "delay U[0,3], margins for 1": ("delay=3", False),
    "reorder 20%": ("reorder=0.2", True),
    "mixed 5/5/0.5/10%": ("drop=0.05,dup=0.05,delay=0.5,reorder=0.1", True),
}


@dataclass(frozen=True)
class ReportConfig:
    random_graphs: int = 32
    random_nodes: tuple[int, int] = (6, 16)
    seeds: int = 12
    deviators: int = 3
    big: int = 100  # graphs with more nodes: a quarter of the seeds and one deviator per kind
    scenarios: bool = True  # include the shipped scenarios
    kinds: tuple[str, ...] = tuple(KIND_NAMES)
    chaos: tuple[str, ...] = tuple(CHAOS_SETTINGS)
    workers: int = 1
    guarded: bool = True  # guarded resale (False: the paper's literal stage 3)
    verifiable_coins: bool = False  # parent choices by verifiable coins (peer.sra.coins)


FULL = ReportConfig()
QUICK = ReportConfig(random_graphs=3, random_nodes=(5, 9), seeds=2, deviators=1, scenarios=False)


@dataclass(frozen=True)
class Case:
    label: str
    scenario: Scenario


def scenario_dir() -> Path:
    """``scenarios/`` of the working directory, else the one next to the source tree."""
    here = Path.cwd() / "scenarios"
    return here if here.is_dir() else Path(__file__).resolve().parents[3] / "scenarios"


def cases(config: ReportConfig) -> list[Case]:
    """The graph set, in a fixed order: shipped SRA scenarios (those that load), then random graphs."""
    out: list[Case] = []
    seen: set[tuple[object, ...]] = set()
    if config.scenarios:
        for path in sorted(scenario_dir().glob("*.toml"), key=lambda p: (p.stem.startswith("attack-"), p.stem)):
            try:
                scenario = load_scenario(path).with_behaviours({})  # the attack-* files' graphs, played honestly
            except ScenarioError:
                continue  # not an SRA scenario (QPQ's)
            edges = tuple(sorted(tuple(sorted(e)) for e in scenario.graph.edges))
            key = (scenario.seller, edges, tuple(sorted(scenario.values.items())))
            if key not in seen:  # attack-faults.toml is karate-club.toml again
                seen.add(key)
                out.append(Case(path.stem, scenario))
    rng = random.Random("report/graphs")
    lo, hi = config.random_nodes
    for k in range(config.random_graphs):
        graph = random_connected(rng.randint(lo, hi), rng)
        values = {str(n): rng.randint(0, 20) * SCALE for n in graph.nodes}  # few levels: ties happen
        values["0"] = 0
        edges = [(str(u), str(v)) for u, v in graph.edges]
        out.append(Case(f"random-{k}", explicit_scenario(edges, values, seller="0", seed=k, name=f"random-{k}")))
    return out


# ------------------------------------------------------------------ one (graph, seed)


@dataclass(frozen=True)
class DevRecord:
    kind: str
    graph: str
    seed: int
    node: str
    behaviour: str
    top: int
    truthful: int  # the deviator's utility in the honest run
    deviant: int  # ... in the deviant run (summed over its identities)
    status: str  # completed | aborted | stalled | bug
    reason: str
    min_honest: int  # the lowest utility of any other node in the deviant run
    detections: tuple[str, ...]  # checks that refused one of the deviator's messages
    rejected: bool  # some other node's machine rejected a message of the deviator
    ledger_ok: bool

    @property
    def gain(self) -> int:
        return self.deviant - self.truthful


@dataclass(frozen=True)
class ChaosRecord:
    setting: str
    graph: str
    seed: int
    status: str
    reason: str
    ledger_ok: bool
    same_outcome: bool  # same resale path and winner as the fault-free run
    min_honest: int
    top: int
    dropped: int


def _run(scenario: Scenario, seed: int, report: ReportConfig, **kwargs: object) -> tuple[RunResult, SimNetwork]:
    """``simulate`` in rounds mode with the report's resale rule and coins."""
    if not report.verifiable_coins:
        return simulate(scenario, seed=seed, guarded=report.guarded, **kwargs)  # type: ignore[arg-type]
    chaos = kwargs.get("chaos")
    sra = kwargs.pop("config", None) or default_config(
        scenario, "rounds", None, max_transit=1.0 + (chaos.max_extra if chaos is not None and chaos.active else 0.0))
    sra = dataclasses.replace(sra, verifiable_coins=True)  # type: ignore[arg-type]
    return simulate(scenario, seed=seed, guarded=report.guarded, config=sra, **kwargs)  # type: ignore[arg-type]


def _describe(b: object) -> str:
    fields = getattr(b, "__dataclass_fields__", {})
    parts = [f"{k}={getattr(b, k)!r}" for k, f in fields.items() if getattr(b, k) != f.default]
    return ", ".join(parts)


def _deviant_record(
    kind: Kind, case: Case, seed: int, honest: RunResult, node: str, top: int, config: ReportConfig
) -> DevRecord | None:
    scenario = case.scenario
    rng = random.Random(f"report/make/{case.label}/{seed}/{kind.name}/{node}")
    situation = Situation(node, scenario.values[node], top, honest, tuple(scenario.neighbours(node)), rng)
    behaviour = kind.make(situation)
    if behaviour is None:
        return None
    try:
        result, network = _run(scenario.with_behaviours({node: behaviour}), seed, config, checks=kind.checks)
    except SimulationError as exc:
        return DevRecord(kind.name, case.label, seed, node, _describe(behaviour), top, int(honest.utilities[node]),
                         int(honest.utilities[node]), "bug", str(exc)[:120], 0, (), False, False)
    ids = set(result.extra.get("sybils", {}).get(node, [node]))
    stats = network.stats
    return DevRecord(
        kind.name, case.label, seed, node, _describe(behaviour), top,
        truthful=int(honest.utilities[node]),
        deviant=sum(int(result.utilities[i]) for i in ids),
        status=result.extra["status"],
        reason=result.extra.get("reason") or "",
        min_honest=min(int(u) for n, u in result.utilities.items() if n not in ids),
        detections=tuple(sorted({d.check for d in stats.detections if d.against in ids and d.by not in ids})),
        rejected=any(s in ids and r not in ids for (r, _), s in zip(stats.rejected, stats.refused_from)),
        ledger_ok=result.extra["ledger"]["ok"],
    )


def _chaos_record(label: str, case: Case, seed: int, honest: RunResult, top: int, config: ReportConfig) -> ChaosRecord:
    spec, covered = CHAOS_SETTINGS[label]
    chaos = parse_chaos(spec)
    sra = None if covered else default_config(case.scenario, "rounds", None)
    try:
        result, network = _run(case.scenario, seed, config, chaos=chaos, config=sra)
    except SimulationError as exc:  # never: chaos runs are not strict
        return ChaosRecord(label, case.label, seed, "bug", str(exc)[:120], False, False, 0, top, 0)
    return ChaosRecord(
        label, case.label, seed, result.extra["status"], result.extra.get("reason") or "",
        result.extra["ledger"]["ok"],
        (result.hops, result.winner) == (honest.hops, honest.winner),
        min(int(u) for u in result.utilities.values()), top, result.extra.get("chaos", {}).get("dropped", 0),
    )


def run_case(args: tuple[Case, int, ReportConfig]) -> tuple[list[DevRecord], list[ChaosRecord]]:
    """Every kind and chaos setting on one (graph, seed)."""
    case, seed, config = args
    honest, _ = _run(case.scenario, seed, config)
    top = max(1, max(case.scenario.values.values()))
    big = case.scenario.graph.number_of_nodes() > config.big
    devs: list[DevRecord] = []
    for name in config.kinds:
        kind = BY_NAME[name]
        pick_rng = random.Random(f"report/pick/{case.label}/{seed}/{name}")
        for node in pick_deviators(honest, kind, 1 if big else config.deviators, pick_rng):
            record = _deviant_record(kind, case, seed, honest, node, top, config)
            if record is not None:
                devs.append(record)
    chaos = [_chaos_record(label, case, seed, honest, top, config) for label in config.chaos]
    return devs, chaos


def tasks(config: ReportConfig) -> list[tuple[Case, int, ReportConfig]]:
    out = []
    for case in cases(config):
        n = case.scenario.graph.number_of_nodes()
        seeds = config.seeds if n <= config.big else max(1, config.seeds // 4)
        out.extend((case, case.scenario.seed + s, config) for s in range(seeds))
    return out


# ------------------------------------------------------------------ aggregation


@dataclass
class Report:
    config: ReportConfig
    graphs: int
    devs: list[DevRecord] = field(default_factory=list)
    chaos: list[ChaosRecord] = field(default_factory=list)
    seconds: float = 0.0

    def kind_rows(self) -> list[dict[str, object]]:
        rows = []
        for name in self.config.kinds:
            rs = [r for r in self.devs if r.kind == name]
            rows.append(_kind_row(BY_NAME[name], rs))
        return rows

    def chaos_rows(self) -> list[dict[str, object]]:
        return [_chaos_row(label, [r for r in self.chaos if r.setting == label]) for label in self.config.chaos]


def _rel(amount: Fraction | int, top: int) -> Fraction:
    return Fraction(amount) / top


def _kind_row(kind: Kind, rs: list[DevRecord]) -> dict[str, object]:
    n = len(rs)
    statuses = Counter(r.status for r in rs)
    best = max(rs, key=lambda r: (_rel(r.gain, r.top), r.gain), default=None)
    evidence = Counter(c for r in rs for c in r.detections)
    reasons = Counter(r.reason for r in rs if r.status == "aborted")
    return {
        "kind": kind.name, "group": kind.group, "runs": n,
        "completed": statuses["completed"], "aborted": statuses["aborted"],
        "stalled/bug": statuses["stalled"] + statuses["bug"],
        "mean u truthful": _mean([_rel(r.truthful, r.top) for r in rs]),
        "mean u deviant": _mean([_rel(r.deviant, r.top) for r in rs]),
        "mean gain": _mean([_rel(r.gain, r.top) for r in rs]),
        "max gain": None if best is None else _rel(best.gain, best.top),
        "gains": _share(sum(r.gain > 0 for r in rs), n),
        "loses": _share(sum(r.gain < 0 for r in rs), n),
        "min honest u": None if not rs else min(_rel(r.min_honest, r.top) for r in rs),
        "honest IR broken": sum(r.min_honest < 0 for r in rs),
        "detected": _share(sum(bool(r.detections) for r in rs), n),
        "evidence": " ".join(f"{c}:{k}" for c, k in sorted(evidence.items())) or "-",
        "rejected": _share(sum(r.rejected for r in rs), n),
        "ledger bad": sum(not r.ledger_ok for r in rs),
        "abort reasons": " ".join(f"{c}:{k}" for c, k in reasons.most_common()) or "-",
        "best": None if best is None or best.gain <= 0 else best,
    }


def _chaos_row(label: str, rs: list[ChaosRecord]) -> dict[str, object]:
    n = len(rs)
    statuses = Counter(r.status for r in rs)
    reasons = Counter(r.reason for r in rs if r.status == "aborted")
    return {
        "setting": label, "chaos": CHAOS_SETTINGS[label][0] + ("" if CHAOS_SETTINGS[label][1] else " (margin 1.5)"),
        "runs": n, "completed": statuses["completed"], "aborted": statuses["aborted"],
        "stalled/bug": statuses["stalled"] + statuses["bug"],
        "same outcome": _share(sum(r.same_outcome for r in rs), n),
        "ledger bad": sum(not r.ledger_ok for r in rs),
        "min honest u": None if not rs else min(_rel(r.min_honest, r.top) for r in rs),
        "honest IR broken": sum(r.min_honest < 0 for r in rs),
        "abort reasons": " ".join(f"{c}:{k}" for c, k in reasons.most_common()) or "-",
    }


def _mean(xs: list[Fraction]) -> Fraction | None:
    return sum(xs, Fraction(0)) / len(xs) if xs else None


def _share(k: int, n: int) -> Fraction | None:
    return Fraction(k, n) if n else None


def build_report(config: ReportConfig = FULL, progress: Callable[[int, int], None] | None = None) -> Report:
    """Run everything (in ``config.workers`` processes) and collect the records."""
    start = time.perf_counter()
    todo = tasks(config)
    report = Report(config, len({t[0].label for t in todo}))
    if config.workers > 1:
        with ProcessPoolExecutor(config.workers) as pool:
            parts = pool.map(run_case, todo, chunksize=1)
            for done, (devs, chaos) in enumerate(parts, start=1):
                report.devs += devs
                report.chaos += chaos
                if progress:
                    progress(done, len(todo))
    else:
        for done, task in enumerate(todo, start=1):
            devs, chaos = run_case(task)
            report.devs += devs
            report.chaos += chaos
            if progress:
                progress(done, len(todo))
    report.seconds = time.perf_counter() - start
    return report
