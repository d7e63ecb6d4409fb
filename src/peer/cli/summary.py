"""Summaries of several runs (``peer sim --runs K``): means with confidence intervals.

Means are exact (``Fraction`` of minor units); the interval's half-width is
Student's t at 95 % (scipy.stats), a statistic and not an amount, so it is
computed in floats and printed rounded to the money grid.  Pure: results in,
data or renderables out.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from peer.result import Amount, RunResult, amount_to_decimal

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Stat:
    """Mean, 95 % half-width (None below two runs) and range of one quantity over the runs."""

    mean: Fraction
    half_width: float | None
    low: Fraction
    high: Fraction


def stat(samples: list[Amount]) -> Stat:
    values = [Fraction(s) for s in samples]
    mean = sum(values, Fraction(0)) / len(values)
    half: float | None = None
    if len(values) >= 2:
        from scipy import stats

        variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
        sem = math.sqrt(variance / len(values))
        half = 0.0 if sem == 0 else float(stats.t.ppf((1 + CONFIDENCE) / 2, len(values) - 1) * sem)
    return Stat(mean=mean, half_width=half, low=min(values), high=max(values))


@dataclass(frozen=True)
class NodeSummary:
    node: str
    wins: Fraction  # share of runs won (the expected share for crm, which randomises the winner)
    utility: Stat


@dataclass(frozen=True)
class RunsSummary:
    mechanism: str
    seller: str
    seeds: list[int]
    revenue: Stat
    hops: Stat
    messages: Stat | None
    nodes: list[NodeSummary]  # nodes that won or gained in some run, most wins first
    statuses: dict[str, int]  # distributed runs: how many completed, aborted, stalled (empty otherwise)

    @property
    def runs(self) -> int:
        return len(self.seeds)


def summarise(results: list[RunResult]) -> RunsSummary:
    if not results:
        raise ValueError("no runs to summarise")
    first = results[0]
    wins: Counter[str] = Counter()
    win_share: dict[str, Fraction] = {}
    for run in results:
        probs = run.extra.get("win_probability")
        if probs is not None:  # crm: a distribution over winners, not one winner
            for node, p in probs.items():
                win_share[node] = win_share.get(node, Fraction(0)) + Fraction(p)
        elif run.winner is not None and run.winner != run.seller:
            wins[run.winner] += 1
    for node, count in wins.items():
        win_share[node] = win_share.get(node, Fraction(0)) + count
    interesting = set(win_share) | {n for run in results for n, u in run.utilities.items()
                                    if u and n != run.seller}
    nodes = [NodeSummary(node=n, wins=win_share.get(n, Fraction(0)) / len(results),
                         utility=stat([run.utilities.get(n, 0) for run in results]))
             for n in interesting]
    nodes.sort(key=lambda s: (-s.wins, -s.utility.mean, s.node))
    counted = [sum(run.messages.values()) for run in results if run.messages]
    return RunsSummary(
        mechanism=first.mechanism, seller=first.seller, seeds=[r.seed for r in results],
        revenue=stat([r.revenue for r in results]), hops=stat([len(r.hops) for r in results]),
        messages=stat(counted) if len(counted) == len(results) else None, nodes=nodes,
        statuses=dict(sorted(Counter(r.extra["status"] for r in results if "status" in r.extra).items())),
    )


# ---------------------------------------------------------------------------- output

def _money(x: Fraction) -> Decimal:
    return amount_to_decimal(x if x.denominator != 1 else int(x))


def _half_money(half: float | None) -> Decimal | None:
    # A statistic in whole units, on the 6-decimal money grid.
    return None if half is None else Decimal(round(half)).scaleb(-6).normalize() if half else Decimal(0)


def _count(x: Fraction) -> Decimal:
    return Decimal(x.numerator) / Decimal(x.denominator) if x.denominator != 1 else Decimal(x.numerator)


def _plain(half: float | None) -> Decimal | None:
    return None if half is None else Decimal(f"{half:.3f}").normalize() if half else Decimal(0)


def _stat_json(s: Stat, *, money: bool) -> dict[str, Any]:
    if money:
        return {"mean": _money(s.mean), "ci95": _half_money(s.half_width), "min": _money(s.low),
                "max": _money(s.high)}
    return {"mean": _count(s.mean).quantize(Decimal("0.001")).normalize(), "ci95": _plain(s.half_width),
            "min": _count(s.low), "max": _count(s.high)}


def summary_json(summary: RunsSummary) -> dict[str, Any]:
    """Amounts in whole units (exact means; ci95 is the 95 % half-width, null below two runs)."""
    return {
        "runs": summary.runs,
        "seeds": summary.seeds,
        "revenue": _stat_json(summary.revenue, money=True),
        "hops": _stat_json(summary.hops, money=False),
        "messages": None if summary.messages is None else _stat_json(summary.messages, money=False),
        "statuses": summary.statuses,
        "nodes": {n.node: {"wins": _count(n.wins).quantize(Decimal("0.000001")).normalize(),
                           "utility": _stat_json(n.utility, money=True)} for n in summary.nodes},
    }


def _pm(mean: Decimal, half: Decimal | None) -> str:
    return f"{mean}" if half is None else f"{mean} ± {half}"


def summary_view(summary: RunsSummary, *, max_rows: int = 40) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    seeds = summary.seeds
    title = f"{summary.mechanism} — seller {summary.seller}, {summary.runs} runs (seeds {seeds[0]}..{seeds[-1]})"
    totals = Table(title=Text(title), title_justify="left", caption="CI: Student t 95% confidence interval",
                   caption_justify="left")
    for col in ("quantity", "mean ± 95% CI", "min", "max"):
        totals.add_column(col, justify="left" if col == "quantity" else "right")
    rows: list[tuple[str, Stat, bool]] = [("revenue", summary.revenue, True), ("resale hops", summary.hops, False)]
    if summary.messages is not None:
        rows.append(("messages", summary.messages, False))
    for label, s, money in rows:
        cells = _stat_json(s, money=money)
        totals.add_row(label, _pm(cells["mean"], cells["ci95"]), str(cells["min"]), str(cells["max"]))
    nodes = Table(title="nodes that won or gained in some run", title_justify="left")
    for col in ("node", "won", "utility: mean ± 95% CI", "min", "max"):
        nodes.add_column(col, justify="left" if col == "node" else "right")
    for n in summary.nodes[:max_rows]:
        cells = _stat_json(n.utility, money=True)
        won = f"{float(n.wins) * 100:.1f}%"
        nodes.add_row(Text(n.node), won, _pm(cells["mean"], cells["ci95"]), str(cells["min"]), str(cells["max"]))
    parts: list[Any] = [totals, nodes]
    if summary.statuses and set(summary.statuses) != {"completed"}:
        counts = ", ".join(f"{k} {v}" for k, v in summary.statuses.items())
        parts.insert(0, Text(f"runs by status: {counts} (of {summary.runs})", style="bold"))
    if len(summary.nodes) > max_rows:
        parts.append(Text(f"… {len(summary.nodes) - max_rows} more nodes (use --json for all)"))
    parts.append(Text("one run in full: --runs 1 --seed SEED; every run: --json", style="dim"))
    return Group(*parts)
