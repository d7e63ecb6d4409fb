"""Traffic per resource: what the running system sends, beside Prop. 11's formulas.

For each n, plain QPQ (k = 1) and multilevel (k = round(sqrt(n))) run a few
all-honest rounds; the counts come from the broadcasts the run made (the fast
path, whose counts the tests check against the machines'; ``machines_up_to``
also runs the machines and records their counts).  Then a sweep over k shows
where the measured optimum falls against sqrt(n) and against the formula's
exact optimum sqrt(n^2/(n+1)).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from peer.parallel import map_runs
from peer.qpq.clusters import default_k
from peer.qpq.exp_common import new_figure, population, write_csv
from peer.qpq.fast import run_fast
from peer.qpq.gof import GofConfig
from peer.qpq.result import QpqRun
from peer.qpq.router import run_machines
from peer.qpq.traffic import direct_values, mqpq_values, optimal_k

_CHEAP = GofConfig(test="off", window=1)  # traffic does not depend on the test


@dataclass(frozen=True)
class TrafficRow:
    n: int
    k: int
    rounds: int
    paper_values: int  # the relay model's formula
    relay_values: float  # the same model, counted from the run's reveals
    direct_values: float  # values peer's direct frames carry
    direct_frames: float  # commits + reveals, one frame per recipient
    formula_direct_values: int
    machines_frames: float  # the machine run's frames (nan when not run)
    reduction_vs_qpq: float  # paper's V_QPQ / V_mQPQ at this k


def traffic_run(n: int, k: int, *, rounds: int, seed: int, machines: bool = False) -> tuple[QpqRun, QpqRun | None]:
    setup = population(n, k, seed=seed, rounds=rounds, gof=_CHEAP, name=f"traffic-n{n}-k{k}")
    return run_fast(setup), (run_machines(setup) if machines else None)


def traffic_row(fast: QpqRun, machines: QpqRun | None) -> TrafficRow:
    m = fast.setup.membership
    sizes = [m.size(c) for c in m.ids]
    per = fast.traffic.per_round(fast.rounds)
    return TrafficRow(
        n=m.n, k=m.k, rounds=fast.rounds, paper_values=mqpq_values(sizes), relay_values=per["relay_values"],
        direct_values=per["values"], direct_frames=per["frames"], formula_direct_values=direct_values(sizes),
        machines_frames=machines.traffic.per_round(machines.rounds)["frames"] if machines else float("nan"),
        reduction_vs_qpq=mqpq_values([m.n]) / mqpq_values(sizes),
    )


def k_grid(n: int, points: int = 24) -> list[int]:
    """k values for the sweep: every k up to 64, then a geometric grid, always with sqrt(n)'s neighbours."""
    if n <= 64:
        return list(range(1, n + 1))
    grid = {max(1, min(n, round(n ** (j / points)))) for j in range(points + 1)}
    root = math.sqrt(n)
    grid |= {k for k in range(int(root) - 3, int(root) + 5) if 1 <= k <= n}
    return sorted(grid)


def run_traffic(
    ns: Sequence[int], *, rounds: int = 2, seed: int = 1, machines_up_to: int = 256,
    progress: Callable[[str], None] | None = None, workers: int | None = 1, dask: str | None = None,
) -> tuple[list[TrafficRow], list[TrafficRow]]:
    """(QPQ vs multilevel rows, k-sweep rows); the runs are independent, so ``workers``
    processes (or a Dask cluster) run them with results identical to a serial run."""
    tasks: list[tuple[str, int, int, int, int, bool]] = []
    for n in ns:
        tasks += [("compare", n, k, rounds, seed, n <= machines_up_to) for k in sorted({1, default_k(n)})]
        tasks += [("sweep", n, k, 1, seed, False) for k in k_grid(n)]

    def done(count: int, _total: int) -> None:
        if progress is not None:
            kind, n, k = tasks[count - 1][:3]
            progress(f"n={n} k={k}" if kind == "compare" else f"sweep n={n} k={k}")

    rows = map_runs(_traffic_task, tasks, workers=workers, dask=dask, label="qpq-traffic", on_done=done)
    compare = [row for task, row in zip(tasks, rows) if task[0] == "compare"]
    sweep = [row for task, row in zip(tasks, rows) if task[0] == "sweep"]
    return compare, sweep


def _traffic_task(task: tuple[str, int, int, int, int, bool]) -> TrafficRow:
    _, n, k, rounds, seed, machines = task
    return traffic_row(*traffic_run(n, k, rounds=rounds, seed=seed, machines=machines))


def sweep_optimum(sweep: list[TrafficRow], n: int, metric: str = "relay_values") -> int:
    rows = [r for r in sweep if r.n == n]
    return min(rows, key=lambda r: (getattr(r, metric), r.k)).k


def write_traffic(compare: list[TrafficRow], sweep: list[TrafficRow], out: Path) -> dict[str, Path]:
    paths = {"csv": out / "qpq-traffic.csv", "sweep_csv": out / "qpq-traffic-sweep.csv", "png": out / "qpq-traffic.png"}
    write_csv(compare, paths["csv"])
    write_csv(sweep, paths["sweep_csv"])
    fig, (left, right) = new_figure(12, 4.8, panels=2)
    ns = sorted({r.n for r in compare})
    for multilevel, colour in ((False, "tab:red"), (True, "tab:blue")):
        sel = sorted((r for r in compare if (r.k > 1) == multilevel), key=lambda r: r.n)
        label = "multilevel, k=round(√n)" if multilevel else "QPQ (k=1)"
        left.plot([r.n for r in sel], [r.paper_values for r in sel], "-", color=colour, lw=1, label=f"{label}: formula")
        left.plot([r.n for r in sel], [r.relay_values for r in sel], "o", color=colour, mfc="none",
                  label=f"{label}: relay values counted")
        left.plot([r.n for r in sel], [r.direct_frames for r in sel], "x", color=colour, label=f"{label}: direct frames")
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xticks(ns, [str(n) for n in ns])
    left.set_xlabel("players n")
    left.set_ylabel("per resource")
    left.set_title("Traffic per resource (Prop. 11)")
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=7)
    for n, colour in zip(sorted({r.n for r in sweep}), ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")):
        sel = [r for r in sweep if r.n == n]
        right.plot([r.k for r in sel], [r.relay_values / r.n ** 1.5 for r in sel], ".-", color=colour, lw=1,
                   label=f"n={n}: optimum k={sweep_optimum(sweep, n)}")
        right.axvline(math.sqrt(n), color=colour, ls=":", lw=1)
    right.set_xscale("log")
    right.set_xlabel("clusters k (dotted: √n)")
    right.set_ylabel("relay values / n^1.5")
    right.set_title("Sweep over k: the optimum sits at √n")
    right.grid(alpha=0.3, which="both")
    right.legend(fontsize=8)
    fig.savefig(paths["png"], dpi=120)
    return paths


def optimum_summary(sweep: list[TrafficRow]) -> list[dict[str, float]]:
    out = []
    for n in sorted({r.n for r in sweep}):
        out.append({"n": n, "sqrt_n": math.sqrt(n), "formula_optimum": optimal_k(n),
                    "measured_optimum_relay": sweep_optimum(sweep, n, "relay_values"),
                    "measured_optimum_frames": sweep_optimum(sweep, n, "direct_frames")})
    return out
