"""Props. 7 and 8: an honest player's mean normalised utility against 1/(n+1), a test-failing one's against 1/(2n).

Each run has n players; a quarter of them (at least one, spread over the
clusters) are ``beta_cheater(beta)`` with a large beta, whose declarations
sit so close to 1 that the KS test rejects every one of them once their window
holds ``min_history`` values: from then on they are the paper's "player whose
values do not pass the test" and get the pseudo-random replacement.  Rounds
before ``warmup`` are not measured.  Both plain QPQ (k = 1) and multilevel
(k = round(sqrt(n))) are run on the same seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from peer.parallel import map_runs
from peer.qpq.clusters import default_k
from peer.qpq.exp_common import mean_se, new_figure, population, spread, write_csv
from peer.qpq.fast import run_fast
from peer.qpq.gof import GofConfig
from peer.qpq.preferences import Profile
from peer.qpq.result import QpqRun


@dataclass(frozen=True)
class PropsRow:
    n: int
    k: int
    rounds: int
    measured: int
    honest_players: int
    honest_mean: float
    honest_se: float
    honest_theory: float  # Prop. 7: 1/(n+1)
    failing_players: int
    failing_mean: float
    failing_se: float
    failing_theory: float  # Prop. 8: 1/(2n)
    failing_replaced_share: float  # of the failing players' measured declarations, the share replaced
    honest_replaced_share: float  # honest declarations replaced (the test's false positives)


def props_run(n: int, k: int, *, rounds: int, warmup: int, seed: int, beta: float, gof: GofConfig) -> QpqRun:
    failing = {i: Profile("beta_cheater", beta) for i in spread(max(1, n // 4), n)}
    setup = population(n, k, seed=seed, rounds=rounds, gof=gof, special=failing, name=f"props-n{n}-k{k}")
    return run_fast(setup, measure_from=warmup)


def props_row(run: QpqRun) -> PropsRow:
    groups = run.by_profile()
    honest = groups.get("honest", [])
    failing = [x for spec, nodes in groups.items() if spec != "honest" for x in nodes]
    n = run.setup.membership.n
    h_mean, h_se = mean_se(run.group_series(honest))
    f_mean, f_se = mean_se(run.group_series(failing))
    measured = run.measured_rounds

    def replaced_share(nodes: list[str]) -> float:
        # Replacements are counted over all rounds; the warm-up's are accepted by construction.
        return sum(run.replaced[x] for x in nodes) / max(1, len(nodes) * measured)

    return PropsRow(
        n=n, k=run.setup.membership.k, rounds=run.rounds, measured=measured,
        honest_players=len(honest), honest_mean=h_mean, honest_se=h_se, honest_theory=1 / (n + 1),
        failing_players=len(failing), failing_mean=f_mean, failing_se=f_se, failing_theory=1 / (2 * n),
        failing_replaced_share=replaced_share(failing), honest_replaced_share=replaced_share(honest),
    )


def run_props(
    ns: Sequence[int], *, rounds: int, warmup: int, seed: int, beta: float = 20.0, gof: GofConfig | None = None,
    progress: Callable[[str], None] | None = None, workers: int | None = 1, dask: str | None = None,
) -> list[PropsRow]:
    gof = gof or GofConfig()
    if warmup < gof.min_history:
        raise ValueError("warmup must be at least min_history (before that nobody is tested)")
    tasks = [(n, k, rounds, warmup, seed, beta, gof) for n in ns for k in sorted({1, default_k(n)})]

    def done(count: int, _total: int) -> None:
        if progress is not None:
            progress(f"n={tasks[count - 1][0]} k={tasks[count - 1][1]}")

    return map_runs(_props_task, tasks, workers=workers, dask=dask, label="qpq-props", on_done=done)


def _props_task(task: tuple[int, int, int, int, int, float, GofConfig]) -> PropsRow:
    n, k, rounds, warmup, seed, beta, gof = task
    return props_row(props_run(n, k, rounds=rounds, warmup=warmup, seed=seed, beta=beta, gof=gof))


def write_props(rows: list[PropsRow], out: Path) -> dict[str, Path]:
    paths = {"csv": out / "qpq-props.csv", "png": out / "qpq-props.png"}
    write_csv(rows, paths["csv"])
    fig, ax = new_figure(7.5, 4.8)
    ns = sorted({r.n for r in rows})
    ax.plot(ns, [1 / (n + 1) for n in ns], "k-", lw=1, label="Prop. 7: 1/(n+1)")
    ax.plot(ns, [1 / (2 * n) for n in ns], "k--", lw=1, label="Prop. 8: 1/(2n)")
    for multilevel, marker in ((False, "o"), (True, "s")):
        sel = [r for r in rows if (r.k > 1) == multilevel]
        if not sel:
            continue
        tag = "multilevel k=√n" if multilevel else "QPQ k=1"
        ax.errorbar([r.n for r in sel], [r.honest_mean for r in sel], yerr=[2 * r.honest_se for r in sel],
                    fmt=marker, color="tab:blue", mfc="none" if multilevel else None, label=f"honest, {tag}")
        ax.errorbar([r.n for r in sel], [r.failing_mean for r in sel], yerr=[2 * r.failing_se for r in sel],
                    fmt=marker, color="tab:red", mfc="none" if multilevel else None, label=f"test-failing, {tag}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("players n")
    ax.set_ylabel("mean normalised utility per resource")
    ax.set_title("Props. 7 and 8: measured (±2 s.e.) against the paper")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.savefig(paths["png"], dpi=120)
    return paths
