"""``peer experiment mirage``: every mechanism against every strategy, over seeds, and the paper's claims checked.

Per seed the job stream is drawn once; each mechanism (A1, A2, A2+MIP,
A2+rules) is run with all users truthful and then with the scenario's
strategists playing S1, S2, S3 and S4, so a strategy's gain is measured
against the same users bidding truthfully in the same world.

Measured per run: the strategists' realised true value, what they paid (bids
and fees) and their surplus; allocative efficiency (true value delivered over
the hindsight bound of :mod:`peer.mirage.offline`); winning durations;
utilisation and median node-hour prices per hour (the paper's Figures 1 and 3).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from peer.mirage.agents import STRATEGIES
from peer.mirage.model import MECHANISMS, Rules
from peer.mirage.offline import hindsight_bound
from peer.mirage.scenario import MirageScenario
from peer.mirage.simulate import RunResult, run
from peer.mirage.workload import draw_jobs, peak_factor, strategists_of
from peer.money import SCALE

MECHANISM_ORDER = ("A1", "A2", "A2+MIP", "A2+rules")


@dataclass(frozen=True)
class Row:
    seed: int
    mechanism: str
    strategy: str
    efficiency: float
    delivered: int  # minor units of true value
    bound: int
    value: int  # strategists' realised true value
    paid: int  # strategists' payments and fees
    node_hours: int  # strategists'
    surplus_gain: int  # strategists' surplus minus theirs when truthful
    value_gain: int
    mean_hours_peak: float  # mean duration of blocks won during peaks
    backfill_node_hours: int  # node-hours the strategists won with S4's low backfill bids
    utilisation: float
    mip_rounds: int
    mip_wins: int
    refused: int


@dataclass
class Report:
    scenario: MirageScenario
    seeds: tuple[int, ...]
    rows: list[Row] = field(default_factory=list)
    runs: dict[tuple[int, str, str], RunResult] = field(default_factory=dict)  # kept for the plots (first seed)
    seconds: float = 0.0

    def mean(self, mechanism: str, strategy: str, attr: str) -> float:
        vals = [getattr(r, attr) for r in self.rows if r.mechanism == mechanism and r.strategy == strategy]
        return statistics.fmean(vals) if vals else float("nan")

    def values(self, mechanism: str, strategy: str, attr: str) -> list[float]:
        return [getattr(r, attr) for r in self.rows if r.mechanism == mechanism and r.strategy == strategy]


def mechanisms_for(scenario: MirageScenario) -> list[Rules]:
    """The four mechanisms; A2+rules charges the scenario's fee (whole units) per bid."""
    out = []
    for name in MECHANISM_ORDER:
        rules = MECHANISMS[name]
        if name == "A2+rules":
            rules = replace(rules, fee=scenario.fee * SCALE)
        out.append(replace(rules, mip_time_limit_ms=500))
    return out


def run_experiment(scenario: MirageScenario, seeds: tuple[int, ...],
                   progress: Callable[[str], None] | None = None) -> Report:
    started = time.perf_counter()
    report = Report(scenario, seeds)
    for seed in seeds:
        world = replace(scenario, seed=seed)
        jobs = draw_jobs(world)
        bound = hindsight_bound(jobs, world.nodes, world.rounds + 71)
        strategists = strategists_of(world)
        for rules in mechanisms_for(world):
            base: RunResult | None = None
            for strategy in STRATEGIES:
                result = run(world, rules, strategy, jobs)
                if base is None:
                    base = result
                report.rows.append(_row(world, seed, result, base, strategists, bound))
                if seed == seeds[0]:
                    report.runs[(seed, rules.name, strategy)] = result
                if progress is not None:
                    progress(f"seed {seed} {rules.name} {strategy}")
    report.seconds = time.perf_counter() - started
    return report


def _row(s: MirageScenario, seed: int, r: RunResult, base: RunResult, users: list[str], bound: int) -> Row:
    def value(x: RunResult) -> int:
        return sum(x.realised.get(u, 0) for u in users)

    def paid(x: RunResult) -> int:
        return sum(x.spent.get(u, 0) for u in users)

    peak_hours = [a.hours for _, a, _ in r.allocations if peak_factor(s, a.start)[0] > 1]
    node_hours = sum(a.nodes * a.hours for _, a, st in r.allocations if st)
    used = sum(a.nodes * max(0, min(a.end, s.rounds) - a.start) for _, a, _ in r.allocations)  # within the run
    return Row(
        seed=seed, mechanism=r.mechanism, strategy=r.strategy,
        efficiency=r.delivered / bound if bound else 1.0, delivered=r.delivered, bound=bound,
        value=value(r), paid=paid(r), node_hours=node_hours,
        surplus_gain=(value(r) - paid(r)) - (value(base) - paid(base)), value_gain=value(r) - value(base),
        mean_hours_peak=statistics.fmean(peak_hours) if peak_hours else float("nan"),
        backfill_node_hours=sum(a.nodes * a.hours for _, a, st in r.allocations if st and is_backfill(a.bid_id)),
        utilisation=used / (s.nodes * s.rounds), mip_rounds=r.mip_rounds, mip_wins=r.mip_wins, refused=r.refused,
    )


def is_backfill(bid_id: str) -> bool:
    """Whether a bid is one of S4's low backfill bids (``agents.S4Sandwich`` names them ``<job>/f<i>.<hour>``)."""
    return bid_id.rpartition("/")[2].startswith("f")


def hourly(result: RunResult, rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """(utilisation, median node-hour price) per hour, as the paper computes Figures 1 and 3.

    A node-hour allocated to a bid of value v for n nodes and k hours is priced
    v / nk; an unallocated one 0; the median is over all nodes for that hour.
    """
    cap = result.capacity
    used = np.zeros(rounds, dtype=np.int64)
    per_hour: list[list[tuple[float, int]]] = [[] for _ in range(rounds)]
    for _, a, _ in result.allocations:
        price = a.price / SCALE / (a.nodes * a.hours)
        for h in range(a.start, min(a.end, rounds)):
            used[h] += a.nodes
            per_hour[h].append((price, a.nodes))
    median = np.zeros(rounds)
    for h, items in enumerate(per_hour):
        items.sort()
        need, seen = (cap + 1) // 2, cap - sum(n for _, n in items)  # zeros first
        if seen >= need:
            continue
        for price, n in items:
            seen += n
            if seen >= need:
                median[h] = price
                break
    return used / cap, median


def winning_durations(result: RunResult) -> list[tuple[int, int]]:
    """(round won, hours) of every winning block: the duration-over-time series."""
    return [(r, a.hours) for r, a, _ in result.allocations]


@dataclass(frozen=True)
class Claim:
    text: str
    holds: bool
    evidence: str


def check_claims(report: Report) -> list[Claim]:
    """The paper's claims, each against the means over seeds."""
    m = report.mean
    claims = []
    a1_t, a1_s3 = m("A1", "truthful", "mean_hours_peak"), m("A1", "S3", "mean_hours_peak")
    a2_t, a2_s3 = m("A2", "truthful", "mean_hours_peak"), m("A2", "S3", "mean_hours_peak")
    claims.append(Claim(
        "S3 drives winning durations down under A1 and not under A2",
        a1_s3 < 0.8 * a1_t and a2_s3 >= 0.8 * a2_t,
        f"mean winning block in peaks: A1 {a1_t:.1f} h truthful vs {a1_s3:.1f} h with S3; "
        f"A2 {a2_t:.1f} h vs {a2_s3:.1f} h",
    ))
    g = {k: m(k, "S4", "surplus_gain") / SCALE for k in MECHANISM_ORDER}
    fill = {k: m(k, "S4", "backfill_node_hours") for k in MECHANISM_ORDER}

    def s4(k: str) -> str:
        return f"{k}: surplus gain {g[k]:+.1f}, {fill[k]:.0f} node-hours won by backfill bids"

    claims.append(Claim("S4 pays under greedy clearing (A1, A2)", g["A1"] > 0 and g["A2"] > 0,
                        f"{s4('A1')}; {s4('A2')}"))
    claims.append(Claim("S4 stops paying under the MIP", g["A2+MIP"] <= 0, f"{s4('A2+MIP')} (greedy {s4('A2')})"))
    claims.append(Claim("S4 stops paying under the rules (one bid, no overlap, fee)",
                        g["A2+rules"] <= 0 and fill["A2+rules"] == 0, s4("A2+rules")))
    e = {s: m("A1", s, "efficiency") for s in ("truthful", "S1", "S2")}
    claims.append(Claim(
        "S1 and S2 cost efficiency under open bids (A1)",
        e["S1"] < e["truthful"] and e["S2"] < e["truthful"],
        "A1 efficiency: " + ", ".join(f"{k} {v:.3f}" for k, v in e.items()),
    ))
    return claims
