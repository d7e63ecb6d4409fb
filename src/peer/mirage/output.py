"""The experiment's outputs: CSV files, the plots (matplotlib Agg) and the console tables."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

import numpy as np
from rich.table import Table

from peer.mirage.agents import STRATEGIES
from peer.mirage.experiment import MECHANISM_ORDER, Claim, Report, hourly, winning_durations
from peer.money import SCALE


def write_csv(report: Report, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"summary": out / "summary.csv", "allocations": out / "allocations.csv", "hourly": out / "hourly.csv"}
    with paths["summary"].open("w", newline="") as f:
        rows = [asdict(r) for r in report.rows]
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with paths["allocations"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["seed", "mechanism", "strategy", "round", "bid", "user", "strategist", "start", "hours", "nodes",
                    "price"])
        for (seed, mech, strat), result in report.runs.items():
            for rnd, a, by_strategist in result.allocations:
                w.writerow([seed, mech, strat, rnd, a.bid_id, a.user, int(by_strategist), a.start, a.hours, a.nodes,
                            f"{a.price / SCALE:.6f}"])
    with paths["hourly"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["seed", "mechanism", "strategy", "hour", "utilisation", "median_price"])
        for (seed, mech, strat), result in report.runs.items():
            util, price = hourly(result, report.scenario.rounds)
            for h in range(report.scenario.rounds):
                w.writerow([seed, mech, strat, h, f"{util[h]:.4f}", f"{price[h]:.6g}"])
    return paths


def write_plots(report: Report, out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    seed = report.seeds[0]
    rounds = report.scenario.rounds
    days = np.arange(rounds) / 24
    paths: dict[str, Path] = {}

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for mech in MECHANISM_ORDER:
        util, price = hourly(report.runs[(seed, mech, "truthful")], rounds)
        ax1.plot(days, 100 * _smooth(util, 24), label=mech, lw=1)
        ax2.semilogy(days, np.where(price > 0, price, np.nan), ".", ms=2, label=mech)
    _shade_peaks(report, ax1)
    _shade_peaks(report, ax2)
    ax1.set_ylabel("utilisation (%), 24 h mean")
    ax1.set_title("Fig. 1 shape: testbed utilisation (all truthful)")
    ax1.legend(fontsize=8)
    ax2.set_ylabel("median node-hour price")
    ax2.set_xlabel("day")
    ax2.set_title("Fig. 3 shape: median node-hour clearing price")
    fig.tight_layout()
    paths["utilisation_prices"] = out / "utilisation_prices.png"
    fig.savefig(paths["utilisation_prices"], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, mech in zip(axes, ("A1", "A2")):
        for strat, style in (("truthful", "-"), ("S3", "--")):
            series = winning_durations(report.runs[(seed, mech, strat)])
            ax.plot(*_daily_mean(series, rounds), style, label=strat, lw=1.5)
        _shade_peaks(report, ax)
        ax.set_title(f"{mech}: mean winning block per day")
        ax.set_xlabel("day")
        ax.legend()
    axes[0].set_ylabel("hours")
    fig.tight_layout()
    paths["durations"] = out / "durations.png"
    fig.savefig(paths["durations"], dpi=110)
    plt.close(fig)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.2
    x = np.arange(len(STRATEGIES))
    for i, mech in enumerate(MECHANISM_ORDER):
        gains = [report.mean(mech, s, "surplus_gain") / SCALE for s in STRATEGIES]
        effs = [report.mean(mech, s, "efficiency") for s in STRATEGIES]
        ax1.bar(x + (i - 1.5) * width, gains, width, label=mech)
        ax2.bar(x + (i - 1.5) * width, effs, width, label=mech)
    for ax, title in ((ax1, "strategists' surplus gain over truthful"), (ax2, "efficiency (vs hindsight bound)")):
        ax.set_xticks(x, STRATEGIES)
        ax.set_title(title)
        ax.axhline(0, color="k", lw=0.5)
    ax1.legend(fontsize=8)
    fig.tight_layout()
    paths["gains_efficiency"] = out / "gains_efficiency.png"
    fig.savefig(paths["gains_efficiency"], dpi=110)
    plt.close(fig)
    return paths


def _smooth(x: np.ndarray, k: int) -> np.ndarray:
    return np.convolve(x, np.ones(k) / k, mode="same")


def _daily_mean(series: list[tuple[int, int]], rounds: int) -> tuple[np.ndarray, np.ndarray]:
    n_days = (rounds + 23) // 24
    total, count = np.zeros(n_days), np.zeros(n_days)
    for r, h in series:
        total[r // 24] += h
        count[r // 24] += 1
    with np.errstate(invalid="ignore"):
        return np.arange(n_days) + 0.5, np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _shade_peaks(report: Report, ax) -> None:
    for start, end, _ in report.scenario.workload.peaks:
        ax.axvspan(start, end, color="orange", alpha=0.12, lw=0)


def summary_table(report: Report) -> Table:
    table = Table(title=f"Mirage, {report.scenario.name}: means over seeds {list(report.seeds)} "
                        f"({report.scenario.weeks:g} weeks of hourly rounds, {report.seconds:.0f} s)")
    for col in ("mechanism", "strategy", "efficiency", "surplus gain", "value gain", "peak block h", "backfill nh",
                "utilisation", "MIP won/ran", "refused"):
        table.add_column(col, justify="left" if col in ("mechanism", "strategy") else "right")
    for mech in MECHANISM_ORDER:
        for strat in STRATEGIES:
            m = report.mean
            table.add_row(
                mech, strat, f"{m(mech, strat, 'efficiency'):.3f}", f"{m(mech, strat, 'surplus_gain') / SCALE:+.1f}",
                f"{m(mech, strat, 'value_gain') / SCALE:+.1f}", f"{m(mech, strat, 'mean_hours_peak'):.1f}",
                f"{m(mech, strat, 'backfill_node_hours'):.0f}",
                f"{m(mech, strat, 'utilisation'):.2f}",
                f"{m(mech, strat, 'mip_wins'):.0f}/{m(mech, strat, 'mip_rounds'):.0f}", f"{m(mech, strat, 'refused'):.0f}",
                end_section=strat == STRATEGIES[-1],
            )
    return table


def claims_table(claims: list[Claim]) -> Table:
    table = Table(title="The paper's claims, as measured")
    table.add_column("claim")
    table.add_column("measured")
    table.add_column("evidence")
    for c in claims:
        table.add_row(c.text, "[green]holds[/]" if c.holds else "[red]refuted[/]", c.evidence)
    return table
