"""The SRA paper's Sec. 5.2 experiment (its Figures 3 and 4): SRA's CRM, distributed SRA and IDM on its graph.

Each of ``samples`` value profiles draws every buyer's value from the paper's
U[0.1 + 0.1 d, 0.6 + 0.1 d] (d = depth) on the minor-unit grid.  Per profile:

* SRA (its centralized reduction, CRM) is run ``runs`` times, each run on
  one uniformly random spanning tree.  The trees are enumerated, so a run is
  a uniform tree index; we draw the per-tree counts of the ``runs`` indices
  directly (a multinomial: the same distribution as ``runs`` uniform draws
  tallied) and weight tree k's outcome by its count, so the work is
  samples x trees walks instead of samples x runs.
* The distributed SRA (rounds mode, :mod:`peer.experiments.sra_distributed`)
  is evaluated exactly over the trees it can realise: every node's parent is
  one of its inviters (its neighbours one level up), each picked uniformly, so
  every combination of inviter choices is one equally likely tree.  They are
  enumerated and each weighted 1 when there are at most
  :data:`~peer.experiments.sra_distributed.MAX_ENUMERATED`; otherwise each
  sample gets ``runs`` uniformly sampled combinations.  A sample's run seed
  (drawn per sample) breaks stage-3 ties as a distributed run with that seed
  would, and seeds the sampled combinations.
* IDM is run once (it is deterministic given the graph and the highest bidder).

The highest bidder is chosen uniformly among tied highest values, afresh in
every CRM run (as :func:`peer.reference.crm.crm` does per tree) and once per
IDM run.  Ties are rare (values are drawn from ~5 x 10^5 grid points) but handled.

All totals are exact integers (minor units, counts); Fractions and Decimals
come only at the end, floats only for the chart.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import networkx as nx
import numpy as np
from numpy.typing import NDArray
from rich.table import Table

from peer.experiments.crm_vectorised import CrmTables, IdmTables, IntArray, Layout, Outcomes, highest_columns
from peer.experiments.sra_distributed import MAX_ENUMERATED, RoundsRelation, evaluate_exact
from peer.reference.crm import probability
from peer.result import amount_to_decimal, dumps
from peer.scenario.load import load_scenario, parse_scenario
from peer.scenario.model import Scenario
from peer.scenario.values import depth_bounds

DEFAULT_SCENARIO = Path("scenarios/paper-figure2.toml")

# A copy of scenarios/paper-figure2.toml (a test keeps them equal), so that
# `peer experiment figure2` works from any directory and from an installed wheel.
PACKAGED_SCENARIO = """\
name = "paper-figure2"
seller = "s"
seed = 1
description = "SRA paper Sec. 5.2 graph (edges reconstructed), values U[0.1+0.1d, 0.6+0.1d]"

[graph]
nodes = ["s", "a", "b", "c", "d", "e", "f", "g", "h", "i"]
edges = [
  ["s", "a"], ["s", "b"],
  ["a", "c"], ["a", "d"], ["b", "d"],
  ["c", "e"], ["d", "e"], ["d", "f"],
  ["e", "g"], ["e", "h"], ["f", "h"], ["f", "i"],
]

[value_model]
kind = "depth"
"""

CSV_COLUMNS = (
    "buyer", "depth", "sra_win_probability", "sra_expected_utility", "idm_win_probability", "idm_expected_utility",
    "sra_distributed_win_probability", "sra_distributed_expected_utility",
)

Progress = Callable[[int], None]


def load_figure2_scenario(path: Path | None) -> Scenario:
    """``path`` if given; else scenarios/paper-figure2.toml under the current directory; else the packaged copy."""
    if path is not None:
        return load_scenario(path)
    if DEFAULT_SCENARIO.is_file():
        return load_scenario(DEFAULT_SCENARIO)
    return parse_scenario(PACKAGED_SCENARIO, source="<packaged paper-figure2>")


@dataclass(frozen=True)
class Setup:
    """Everything that depends on the graph only, computed once."""

    layout: Layout
    depths: dict[str, int]
    reserve: int
    crm: CrmTables
    idm: IdmTables
    rounds: RoundsRelation
    realised_trees: NDArray[np.intp] | None  # every tree the distributed SRA can realise; None: too many, sampled

    @classmethod
    def from_scenario(cls, scenario: Scenario, *, max_enumerated: int = MAX_ENUMERATED) -> Setup:
        layout = Layout(scenario.graph, scenario.seller)
        depths = dict(nx.single_source_shortest_path_length(layout.graph, scenario.seller))
        rounds = RoundsRelation.from_layout(layout)
        trees = rounds.enumerate_trees() if rounds.combinations <= max_enumerated else None
        return cls(
            layout, depths, scenario.values.get(scenario.seller, 0), CrmTables(layout), IdmTables(layout), rounds, trees
        )

    def distributed_runs(self, runs: int) -> int:
        """Distributed-SRA evaluations per sample: every realisable tree once, or ``runs`` sampled ones."""
        return runs if self.realised_trees is None else len(self.realised_trees)

    @property
    def buyers(self) -> list[str]:
        """Buyers in the paper's order: by depth, then name."""
        names = [self.layout.nodes[c] for c in self.layout.buyers]
        return sorted(names, key=lambda n: (self.depths[n], n))


def draw_values(setup: Setup, samples: int, rng: np.random.Generator) -> IntArray:
    """(samples, columns) values: each buyer U[0.1+0.1d, 0.6+0.1d] on the integer grid; the seller's reserve."""
    layout = setup.layout
    values = np.zeros((samples, len(layout.nodes)), dtype=np.int64)
    values[:, layout.column[layout.seller]] = setup.reserve
    for col in layout.buyers:  # column order is fixed (sorted ids): part of what a seed means
        low, high = depth_bounds(setup.depths[layout.nodes[col]])
        values[:, col] = rng.integers(low, high, size=samples, endpoint=True, dtype=np.int64)
    return values


@dataclass(frozen=True)
class CrmTasks:
    """Weighted CRM work: task t walks row ``rows[t]`` with highest bidder ``z[t]`` on tree k, ``counts[t, k]`` times.

    An untied row is one task whose counts sum to ``runs``; a row with c tied
    highest values is c tasks (one per candidate) whose counts together sum to ``runs``.
    """

    rows: NDArray[np.intp]
    z: NDArray[np.intp]
    counts: IntArray  # (tasks, trees)


def draw_crm_tasks(setup: Setup, values: IntArray, runs: int, rng: np.random.Generator) -> CrmTasks:
    trees = len(setup.crm.trees)
    first, tied = highest_columns(values, setup.layout.buyers)
    counts = rng.multinomial(runs, np.full(trees, 1 / trees), size=len(values)).astype(np.int64)
    single = tied.sum(axis=1) == 1
    rows = [np.flatnonzero(single)]
    zs = [first[single]]
    weights = [counts[single]]
    for row in np.flatnonzero(~single):
        # Each run draws its tree and its tie-break independently: uniform over (tree, candidate).
        candidates = np.flatnonzero(tied[row])
        cells = trees * len(candidates)
        split = rng.multinomial(runs, np.full(cells, 1 / cells)).astype(np.int64).reshape(trees, len(candidates))
        for i, cand in enumerate(candidates):
            rows.append(np.array([row]))
            zs.append(np.array([cand]))
            weights.append(split[:, i][None, :])
    all_rows = np.concatenate(rows)
    order = np.argsort(all_rows, kind="stable")
    return CrmTasks(all_rows[order], np.concatenate(zs)[order], np.concatenate(weights)[order])


def draw_idm_choices(setup: Setup, values: IntArray, rng: np.random.Generator) -> NDArray[np.intp]:
    """IDM's highest bidder per row, uniform among ties."""
    first, tied = highest_columns(values, setup.layout.buyers)
    z = first.copy()
    for row in np.flatnonzero(tied.sum(axis=1) > 1):
        z[row] = rng.choice(np.flatnonzero(tied[row]))
    return z


@dataclass
class Totals:
    """Exact running sums over evaluations of one mechanism (one column per node)."""

    wins: IntArray
    utility: IntArray
    revenue: int = 0
    evaluations: int = 0

    @classmethod
    def zeros(cls, columns: int) -> Totals:
        return cls(np.zeros(columns, dtype=np.int64), np.zeros(columns, dtype=np.int64))

    def add(self, outcomes: Outcomes, weights: IntArray) -> None:
        np.add.at(self.wins, outcomes.winner, weights)
        self.utility += weights @ outcomes.utilities
        self.revenue += int(weights @ outcomes.revenue)
        self.evaluations += int(weights.sum())


@dataclass(frozen=True)
class MechanismResult:
    """One mechanism's exact totals; probabilities and expectations are ratios of them."""

    wins: dict[str, int]  # evaluations in which the node ended with the item (the seller: kept it)
    utility: dict[str, int]  # summed utility, minor units
    revenue: int  # summed seller revenue, minor units
    evaluations: int

    @classmethod
    def from_totals(cls, totals: Totals, nodes: list[str]) -> MechanismResult:
        return cls(
            {n: int(totals.wins[i]) for i, n in enumerate(nodes)},
            {n: int(totals.utility[i]) for i, n in enumerate(nodes)},
            totals.revenue,
            totals.evaluations,
        )

    def win_probability(self, node: str) -> Fraction:
        return Fraction(self.wins[node], self.evaluations)

    def expected_utility(self, node: str) -> Fraction:
        """Minor units."""
        return Fraction(self.utility[node], self.evaluations)

    def expected_revenue(self) -> Fraction:
        return Fraction(self.revenue, self.evaluations)

    def expected_welfare(self) -> Fraction:
        """E[value of whoever ends with the item]: payments cancel, so it is the sum of all utilities."""
        return Fraction(sum(self.utility.values()), self.evaluations)


@dataclass(frozen=True)
class Figure2Result:
    scenario: str
    seller: str
    buyers: list[str]
    depths: dict[str, int]
    samples: int
    runs: int
    seed: int
    trees: int
    tied_samples: int
    best_value_sum: int  # sum over samples of the highest buyer value (the efficient welfare)
    seconds: float
    sra: MechanismResult
    idm: MechanismResult
    distributed: MechanismResult  # the distributed SRA, rounds mode
    realised_trees: int  # trees the distributed SRA can realise (product of inviter counts)
    realised_trees_enumerated: bool  # False: ``runs`` of them sampled per sample
    replayed_rows: int  # distributed evaluations with a stage-3 tie, recomputed by replay_stage3
    vcg_neighbours_revenue_sum: int  # sum over samples of VCG-among-the-seller's-neighbours revenue (Prop. 5.4)


def draw_inputs(
    setup: Setup, samples: int, runs: int, seed: int
) -> tuple[IntArray, CrmTasks, NDArray[np.intp]]:
    """All the experiment's randomness: value samples, CRM tree counts and tie-breaks, IDM tie-breaks."""
    # Independent streams, so e.g. changing --runs leaves the value samples as they were.
    values_rng, trees_rng, idm_rng = np.random.default_rng(seed).spawn(3)
    values = draw_values(setup, samples, values_rng)
    return values, draw_crm_tasks(setup, values, runs, trees_rng), draw_idm_choices(setup, values, idm_rng)


def draw_run_seeds(samples: int, seed: int) -> NDArray[np.int64]:
    """One distributed-SRA run seed per sample, from a fourth stream (the other three stay as they were)."""
    run_rng = np.random.default_rng(seed).spawn(4)[3]
    return run_rng.integers(0, 2**63 - 1, size=samples, dtype=np.int64)


def vcg_neighbours_revenue(setup: Setup, values: IntArray) -> IntArray:
    """Per sample: the seller's revenue from a second-price auction among her neighbours only (reserve = floor).

    The rule of :func:`peer.reference.vcg.vcg_neighbours` (ties for first place do not change the price).
    """
    layout = setup.layout
    seller = layout.column[layout.seller]
    near = sorted(layout.column[n] for n in layout.adjacency[layout.seller])
    floor = values[:, seller]
    if not near:
        return np.zeros(len(values), dtype=np.int64)
    bids = np.sort(values[:, near], axis=1)
    price = np.maximum(floor, bids[:, -2]) if len(near) > 1 else floor
    return np.where(bids[:, -1] >= price, price, 0)


def accumulate_distributed(
    setup: Setup,
    values: IntArray,
    run_seeds: NDArray[np.int64],
    runs: int,
    lo: int,
    hi: int,
    totals: Totals,
    *,
    block_rows: int = 1 << 16,
) -> int:
    """Add samples lo..hi-1 to the distributed SRA's totals; returns how many rows replay_stage3 recomputed.

    Each sample is evaluated on every realisable tree (weight 1 each), or on
    ``runs`` trees sampled with a generator seeded by its run seed.
    """
    rounds = setup.rounds
    per_sample = setup.distributed_runs(runs)
    step = max(1, block_rows // per_sample)
    replayed = 0
    for start in range(lo, hi, step):
        stop = min(start + step, hi)
        if setup.realised_trees is not None:
            parents = np.tile(setup.realised_trees, (stop - start, 1))
        else:
            parents = np.concatenate(
                [rounds.sample_trees(np.random.default_rng(int(run_seeds[r])), runs) for r in range(start, stop)]
            )
        rows = np.repeat(values[start:stop], per_sample, axis=0)
        outcomes, redone = evaluate_exact(rounds, rows, parents, np.repeat(run_seeds[start:stop], per_sample))
        totals.add(outcomes, np.ones(len(rows), dtype=np.int64))
        replayed += redone
    return replayed


def accumulate(
    setup: Setup,
    values: IntArray,
    tasks: CrmTasks,
    idm_z: NDArray[np.intp],
    lo: int,
    hi: int,
    sra: Totals,
    idm: Totals,
) -> None:
    """Add samples lo..hi-1 to the totals: every CRM tree weighted by its run count, and one IDM run."""
    t_lo, t_hi = np.searchsorted(tasks.rows, [lo, hi])
    task_values = values[tasks.rows[t_lo:t_hi]]
    task_z = tasks.z[t_lo:t_hi]
    for k in range(len(setup.crm.trees)):
        sra.add(setup.crm.evaluate(task_values, task_z, k), tasks.counts[t_lo:t_hi, k])
    idm.add(setup.idm.evaluate(values[lo:hi], idm_z[lo:hi]), np.ones(hi - lo, dtype=np.int64))


def run_figure2(
    scenario: Scenario,
    *,
    samples: int = 10_000,
    runs: int = 1_000,
    seed: int = 1,
    chunk: int = 1_000,
    progress: Progress | None = None,
) -> Figure2Result:
    """Run the experiment; ``progress(n)`` is called as each n samples are done."""
    if samples < 1 or runs < 1:
        raise ValueError("samples and runs must be at least 1")
    started = time.perf_counter()
    setup = Setup.from_scenario(scenario)
    columns = len(setup.layout.nodes)
    top = max(depth_bounds(max(setup.depths.values()))[1], setup.reserve)
    if samples * max(runs, setup.distributed_runs(runs)) * top >= 2**62:  # int64 sums must not overflow
        raise ValueError("samples x runs too large for exact int64 totals")
    values, tasks, idm_z = draw_inputs(setup, samples, runs, seed)
    run_seeds = draw_run_seeds(samples, seed)
    sra, idm, distributed = Totals.zeros(columns), Totals.zeros(columns), Totals.zeros(columns)
    replayed = 0
    for lo in range(0, samples, chunk):
        hi = min(lo + chunk, samples)
        accumulate(setup, values, tasks, idm_z, lo, hi, sra, idm)
        replayed += accumulate_distributed(setup, values, run_seeds, runs, lo, hi, distributed)
        if progress is not None:
            progress(hi - lo)

    nodes = setup.layout.nodes
    return Figure2Result(
        scenario=scenario.name,
        seller=scenario.seller,
        buyers=setup.buyers,
        depths={n: setup.depths[n] for n in setup.buyers},
        samples=samples,
        runs=runs,
        seed=seed,
        trees=len(setup.crm.trees),
        tied_samples=int(np.count_nonzero(np.bincount(tasks.rows, minlength=samples) > 1)),
        best_value_sum=int(values[:, setup.layout.buyers].max(axis=1).sum()),
        seconds=time.perf_counter() - started,
        sra=MechanismResult.from_totals(sra, nodes),
        idm=MechanismResult.from_totals(idm, nodes),
        distributed=MechanismResult.from_totals(distributed, nodes),
        realised_trees=setup.rounds.combinations,
        realised_trees_enumerated=setup.realised_trees is not None,
        replayed_rows=replayed,
        vcg_neighbours_revenue_sum=int(vcg_neighbours_revenue(setup, values).sum()),
    )


# ------------------------------------------------------------------ outputs


def _units(amount: Fraction) -> Decimal:
    """Minor units to whole units (12 decimal places)."""
    return amount_to_decimal(amount)


def csv_rows(result: Figure2Result) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for b in result.buyers:
        rows.append({
            "buyer": b,
            "depth": result.depths[b],
            "sra_win_probability": probability(result.sra.wins[b], result.sra.evaluations),
            "sra_expected_utility": _units(result.sra.expected_utility(b)),
            "idm_win_probability": probability(result.idm.wins[b], result.idm.evaluations),
            "idm_expected_utility": _units(result.idm.expected_utility(b)),
            "sra_distributed_win_probability": probability(result.distributed.wins[b], result.distributed.evaluations),
            "sra_distributed_expected_utility": _units(result.distributed.expected_utility(b)),
        })
    return rows


def write_csv(result: Figure2Result, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(csv_rows(result))


def summary(result: Figure2Result) -> dict[str, object]:
    """The run's parameters and seller-side figures (revenue is not in the per-buyer CSV)."""

    def mech(m: MechanismResult) -> dict[str, object]:
        return {
            "evaluations": m.evaluations,
            "expected_revenue": _units(m.expected_revenue()),
            "seller_keeps_probability": probability(m.wins[result.seller], m.evaluations),
            "expected_welfare": _units(m.expected_welfare()),
        }

    return {
        "scenario": result.scenario,
        "seller": result.seller,
        "samples": result.samples,
        "runs": result.runs,
        "seed": result.seed,
        "spanning_trees": result.trees,
        "tied_samples": result.tied_samples,
        "seconds": round(result.seconds, 3),
        "realised_trees": result.realised_trees,
        "realised_trees_enumerated": result.realised_trees_enumerated,
        "distributed_replayed_rows": result.replayed_rows,
        "expected_highest_value": _units(Fraction(result.best_value_sum, result.samples)),
        "vcg_neighbours_expected_revenue": _units(Fraction(result.vcg_neighbours_revenue_sum, result.samples)),
        "sra": mech(result.sra),
        "sra_distributed": mech(result.distributed),
        "idm": mech(result.idm),
    }


def write_summary(result: Figure2Result, path: Path) -> None:
    path.write_text(dumps(summary(result)) + "\n", encoding="utf-8")


def mechanisms(result: Figure2Result) -> list[tuple[str, MechanismResult, str]]:
    """(label, totals, colour) of the three series, in chart and table order."""
    return [
        ("SRA (paper CRM, all spanning trees)", result.sra, "tab:blue"),
        ("SRA (distributed, rounds)", result.distributed, "tab:green"),
        ("IDM", result.idm, "tab:orange"),
    ]


def write_png(result: Figure2Result, path: Path) -> None:
    """Two grouped-bar panels like the paper's Figures 3 and 4, three bars per buyer."""
    # The object API with an explicit Agg canvas: no pyplot global state, no GUI backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    buyers = result.buyers
    x = np.arange(len(buyers))
    series = mechanisms(result)
    width = 0.8 / len(series)
    labels = [f"{b}\n(d={result.depths[b]})" for b in buyers]
    fig = Figure(figsize=(13, 5.2), layout="constrained")
    FigureCanvasAgg(fig)
    win_ax, util_ax = fig.subplots(1, 2)
    panels = (
        (win_ax, "Winning probability per buyer (cf. paper Fig. 3)", "P(win)",
         lambda m, b: float(m.win_probability(b))),
        (util_ax, "Expected utility per buyer (cf. paper Fig. 4)", "E[utility] (units)",
         lambda m, b: float(m.expected_utility(b)) / 1e6),
    )
    for ax, title, ylabel, metric in panels:
        for i, (name, mech, colour) in enumerate(series):
            offset = (i - (len(series) - 1) / 2) * width
            ax.bar(x + offset, [metric(mech, b) for b in buyers], width, label=name, color=colour)
        ax.set_xticks(x, labels)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    handles, names = win_ax.get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=len(series), frameon=False)
    sampled = "" if result.realised_trees_enumerated else f", {result.runs} sampled per value sample"
    revenues = ", ".join(
        f"{short} {float(m.expected_revenue()) / 1e6:.4f}"
        for short, m in (("CRM", result.sra), ("distributed", result.distributed), ("IDM", result.idm))
    )
    fig.suptitle(
        f"{result.scenario}: {result.samples} value samples, seed {result.seed}; CRM: {result.runs} runs each over "
        f"{result.trees} spanning trees; distributed SRA: its {result.realised_trees} realisable trees{sampled}.\n"
        f"Expected revenue: {revenues} (VCG among the seller's neighbours "
        f"{result.vcg_neighbours_revenue_sum / result.samples / 1e6:.4f})"
    )
    fig.savefig(path, dpi=120)


def write_outputs(result: Figure2Result, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "figure2.csv", "png": out / "figure2.png", "summary": out / "summary.json"}
    write_csv(result, paths["csv"])
    write_png(result, paths["png"])
    write_summary(result, paths["summary"])
    return paths


def summary_table(result: Figure2Result) -> Table:
    """A rich Table of the per-buyer results and the seller's revenue, for CRM, distributed SRA and IDM."""
    sampled = "" if result.realised_trees_enumerated else f" ({result.runs} sampled)"
    table = Table(
        title=(
            f"Sec. 5.2: {result.samples} samples; CRM {result.runs} runs over {result.trees} spanning trees; "
            f"distributed SRA over its {result.realised_trees} realisable trees{sampled}; {result.seconds:.1f} s"
        ),
        title_justify="left",
    )
    short = ("CRM", "dist", "IDM")
    mechs = (result.sra, result.distributed, result.idm)
    table.add_column("buyer", no_wrap=True)
    table.add_column("depth", justify="right")
    for header in (*(f"{s}\nP(win)" for s in short), *(f"{s}\nE(u)" for s in short)):
        table.add_column(header, justify="right")
    for b in result.buyers:
        table.add_row(
            b, str(result.depths[b]),
            *(f"{float(m.win_probability(b)):.4f}" for m in mechs),
            *(f"{float(m.expected_utility(b)) / 1e6:.4f}" for m in mechs),
        )
    table.add_section()
    table.add_row(
        f"{result.seller} (seller)", "0",
        *(f"{float(m.win_probability(result.seller)):.4f}" for m in mechs),
        *(f"{float(m.expected_revenue()) / 1e6:.4f}" for m in mechs),
    )
    table.caption = (
        "CRM = the paper's SRA (its centralized reduction); dist = the distributed SRA, rounds mode; "
        "E(u) = expected utility (units).  Seller row: P(keeps the item), expected revenue; "
        "VCG among the seller's neighbours: "
        f"{result.vcg_neighbours_revenue_sum / result.samples / 1e6:.4f}"
    )
    return table
