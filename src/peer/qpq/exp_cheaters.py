"""Sec. VI: honest against dishonest players under the real, imperfect KS test.

For each cheating profile, ``cheaters`` players (spread over different
clusters) cheat and everybody else is honest; plain QPQ (k = 1) and
multilevel QPQ (k clusters) run on the same seeds, so on the same
preferences.  Two settings:

- *equal window*: both keep ``window`` past declarations per tested slot;
- *equal memory*: every node has the same memory budget ``window * (n/k + k)``
  values, the multilevel node's n_c + k windows; QPQ spends it on n windows,
  so its windows are k / (n/k + k) times shorter.  This is the paper's Sec.
  V-B argument for why the test is better under multilevel QPQ.

A cheater's mean normalised utility (of its *true* values) is reported next
to the honest players' and to 1/(n+1): the question is whether multilevel QPQ
leaves cheaters with less.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from dataclasses import dataclass
from pathlib import Path

from peer.parallel import map_runs
from peer.qpq.exp_common import mean_se, new_figure, population, spread, write_csv
from peer.qpq.fast import run_fast
from peer.qpq.gof import GofConfig
from peer.qpq.preferences import Profile, parse_profile

DEFAULT_PROFILES = ("beta_cheater(1.25)", "beta_cheater(1.5)", "beta_cheater(2)", "beta_cheater(3)", "uniform_liar")


@dataclass(frozen=True)
class CheaterRow:
    setting: str  # "equal-window" | "equal-memory"
    profile: str
    mechanism: str  # "qpq" | "multilevel"
    n: int
    k: int
    window: int
    measured: int
    cheaters: int
    cheater_mean: float
    cheater_se: float
    honest_mean: float
    honest_se: float
    honest_theory: float
    cheater_gain: float  # cheater_mean / honest_theory - 1: > 0 means cheating pays
    cheater_replaced_share: float
    winner_level_replaced: int


def run_cheaters(
    *, n: int = 64, k: int = 8, cheaters: int = 4, profiles: Sequence[str] = DEFAULT_PROFILES, rounds: int = 5000,
    warmup: int = 200, window: int = 100, threshold: float = 0.01, min_history: int = 10, seed: int = 1,
    progress: Callable[[str], None] | None = None, workers: int | None = 1, dask: str | None = None,
) -> list[CheaterRow]:
    """Every (setting, profile, mechanism) run; independent, so ``workers`` processes (or a Dask
    cluster) run them with results identical to a serial run."""
    if not 1 < k < n:
        raise ValueError("k must be between 2 and n-1 (k = 1 is the QPQ baseline, always run)")
    budget = window * (-(-n // k) + k)  # the multilevel node's memory, in values
    settings = {"equal-window": (window, window), "equal-memory": (max(1, budget // n), window)}
    tasks = []
    for setting, (w_qpq, w_multi) in settings.items():
        for spec in profiles:
            profile = parse_profile(spec)
            for mechanism, kk, w in (("qpq", 1, w_qpq), ("multilevel", k, w_multi)):
                tasks.append((setting, profile, mechanism, n, kk, w, cheaters, rounds, warmup,
                              GofConfig(window=w, threshold=threshold, min_history=min(min_history, w)), seed))

    def done(count: int, _total: int) -> None:
        if progress is not None:
            setting, profile, mechanism = tasks[count - 1][:3]
            progress(f"{setting} {profile.spec} {mechanism}")

    return map_runs(_one_task, tasks, workers=workers, dask=dask, label="qpq-cheaters", on_done=done)


def _one_task(task: tuple[Any, ...]) -> CheaterRow:
    return _one(*task)


def _one(setting: str, profile: Profile, mechanism: str, n: int, k: int, window: int, cheaters: int, rounds: int,
         warmup: int, gof: GofConfig, seed: int) -> CheaterRow:
    special = {i: profile for i in spread(cheaters, n)}
    setup = population(n, k, seed=seed, rounds=rounds, gof=gof, special=special, name=f"sec6-{mechanism}")
    run = run_fast(setup, measure_from=warmup)
    groups = run.by_profile()
    bad = groups.get(profile.spec, [])
    good = groups.get("honest", [])
    c_mean, c_se = mean_se(run.group_series(bad))
    h_mean, h_se = mean_se(run.group_series(good))
    theory = 1 / (n + 1)
    return CheaterRow(
        setting=setting, profile=profile.spec, mechanism=mechanism, n=n, k=k, window=window,
        measured=run.measured_rounds, cheaters=len(bad), cheater_mean=c_mean, cheater_se=c_se,
        honest_mean=h_mean, honest_se=h_se, honest_theory=theory, cheater_gain=c_mean / theory - 1,
        cheater_replaced_share=sum(run.replaced[x] for x in bad) / max(1, len(bad) * run.measured_rounds),
        winner_level_replaced=run.winner_replaced,
    )


def write_cheaters(rows: list[CheaterRow], out: Path) -> dict[str, Path]:
    paths = {"csv": out / "qpq-cheaters.csv", "png": out / "qpq-cheaters.png"}
    write_csv(rows, paths["csv"])
    settings = sorted({r.setting for r in rows}, reverse=True)
    fig, axes = new_figure(6.5 * len(settings), 4.8, panels=len(settings))
    axes = list(axes) if len(settings) > 1 else [axes]
    for ax, setting in zip(axes, settings):
        sel = [r for r in rows if r.setting == setting]
        names = list(dict.fromkeys(r.profile for r in sel))
        for offset, mechanism, colour in ((-0.2, "qpq", "tab:red"), (0.2, "multilevel", "tab:blue")):
            pts = {r.profile: r for r in sel if r.mechanism == mechanism}
            xs = [i + offset for i, _ in enumerate(names)]
            ax.bar(xs, [pts[p].cheater_mean for p in names], 0.38, yerr=[2 * pts[p].cheater_se for p in names],
                   color=colour, alpha=0.8, label=f"{mechanism} (k={pts[names[0]].k}, window {pts[names[0]].window})")
            ax.plot(xs, [pts[p].honest_mean for p in names], "_", color="k", ms=18)
        theory = sel[0].honest_theory
        ax.axhline(theory, color="k", lw=1, ls="--", label=f"honest: 1/(n+1) = {theory:.4f}")
        ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
        ax.set_ylabel("cheater's mean normalised utility (±2 s.e.)")
        ax.set_title(f"Sec. VI, {setting} (n={sel[0].n}; black ticks: honest players)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(paths["png"], dpi=120)
    return paths
