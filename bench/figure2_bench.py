"""Time the full `peer experiment figure2` run (10^4 samples x 10^3 CRM runs) and print its results.

    /work/venv/bin/python bench/figure2_bench.py [--out out/figure2] [--repeat 3]

Also times the scalar references on a slice and extrapolates, to show what
the vectorised evaluator saves (and measures a full scalar IDM loop, 10^4
calls), and the distributed-SRA series on its own against scalar replay_stage3.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from rich.console import Console

from peer.experiments.crm_vectorised import highest_columns
import numpy as np

from peer.experiments.figure2 import (
    Setup,
    Totals,
    accumulate_distributed,
    draw_inputs,
    draw_run_seeds,
    load_figure2_scenario,
    run_figure2,
    summary_table,
    vcg_neighbours_revenue,
    write_outputs,
)
from peer.experiments.sra_distributed import evaluate_exact, replay_row
from peer.reference.crm import crm_on_tree
from peer.reference.idm import idm_outcome


def scalar_seconds(setup: Setup, samples: int) -> tuple[float, float]:
    """Seconds per scalar crm_on_tree call (one sample, one tree) and per scalar idm_outcome call."""
    layout = setup.layout
    values = draw_inputs(setup, samples, 1, seed=99)[0]
    profiles = [{n: int(values[r, i]) for i, n in enumerate(layout.nodes)} for r in range(samples)]
    rng = random.Random(0)
    started = time.perf_counter()
    for vals in profiles:
        for parents in setup.crm.trees:
            crm_on_tree(layout.adjacency, layout.seller, vals, parents, rng)
    per_crm = (time.perf_counter() - started) / (samples * len(setup.crm.trees))
    started = time.perf_counter()
    for vals in profiles:
        idm_outcome(layout.graph, layout.seller, vals, rng)
    per_idm = (time.perf_counter() - started) / samples
    return per_crm, per_idm


def distributed_breakdown(setup: Setup, values: np.ndarray, run_seeds: np.ndarray, console: Console) -> None:
    """Per realised tree of the distributed SRA: revenue, who buys first, how often the highest value wins.

    Also: rows whose revenue is below VCG among the seller's neighbours (Prop. 5.4), and
    P(the item ends with the highest-value buyer) for the three series (CRM exact over all its trees).
    """
    trees = setup.realised_trees
    if trees is None:
        console.print("distributed SRA: trees are sampled, no per-tree breakdown")
        return
    layout, rounds = setup.layout, setup.rounds
    names = layout.nodes
    k = len(trees)
    rows = np.repeat(values, k, axis=0)
    out, _ = evaluate_exact(rounds, rows, np.tile(trees, (len(values), 1)), np.repeat(run_seeds, k))
    z, _ = highest_columns(values, layout.buyers)
    first_level = [c for c in layout.buyers if setup.depths[names[c]] == 1]
    choosers = [c for c in layout.buyers if len(rounds.inviters[c]) > 1]
    tree_of_row = np.arange(len(rows)) % k
    for t in range(k):
        mine = tree_of_row == t
        label = " ".join(f"{names[c]}<-{names[trees[t, c]]}" for c in choosers)
        firsts = ", ".join(f"{names[c]} {np.mean(out.path[mine, 1] == c):.3f}" for c in first_level)
        wins = ", ".join(
            f"{names[c]} {np.mean(out.winner[mine] == c):.3f}" for c in first_level
        )
        console.print(
            f"  tree {t} ({label}): revenue {out.revenue[mine].mean() / 1e6:.4f}; first buyer: {firsts}; "
            f"keeps the item: {wins}; highest value wins {np.mean(out.winner[mine] == z):.3f}",
            highlight=False,
        )
    split = "; ".join(
        f"{names[c]} {out.utilities[out.winner == c, c].sum() / len(rows) / 1e6:.4f} keeping + "
        f"{out.utilities[out.winner != c, c].sum() / len(rows) / 1e6:.4f} reselling"
        for c in first_level
    )
    console.print(f"  expected utility of the seller's neighbours: {split}", highlight=False)
    vcg = np.repeat(vcg_neighbours_revenue(setup, values), k)
    crm_hits = sum(int((setup.crm.evaluate(values, z, t).winner == z).sum()) for t in range(len(setup.crm.trees)))
    idm_hits = int((setup.idm.evaluate(values, z).winner == z).sum())
    console.print(
        f"  (sample, tree) rows with revenue below VCG among neighbours: {int((out.revenue < vcg).sum())} "
        f"of {len(rows)} "
        f"(equal: {int((out.revenue == vcg).sum())}).  P(highest value ends with the item): CRM "
        f"{crm_hits / (len(values) * len(setup.crm.trees)):.3f} (exact over its trees), distributed "
        f"{np.mean(out.winner == np.repeat(z, k)):.3f}, IDM {idm_hits / len(values):.3f}",
        highlight=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("out/figure2"))
    args = parser.parse_args()

    console = Console()
    scenario = load_figure2_scenario(None)
    times = []
    result = None
    for _ in range(args.repeat):
        result = run_figure2(scenario, samples=args.samples, runs=args.runs, seed=args.seed)
        times.append(result.seconds)
    assert result is not None
    started = time.perf_counter()
    paths = write_outputs(result, args.out)
    write_seconds = time.perf_counter() - started

    setup = Setup.from_scenario(scenario)
    per_crm, per_idm = scalar_seconds(setup, 200)
    # The scalar IDM loop in full, since 10^4 calls is a feasible alternative to vectorising.
    values = draw_inputs(setup, args.samples, 1, seed=args.seed)[0]
    z, _ = highest_columns(values, setup.layout.buyers)
    started = time.perf_counter()
    rng = random.Random(0)
    for r in range(args.samples):
        vals = {n: int(values[r, i]) for i, n in enumerate(setup.layout.nodes)}
        idm_outcome(setup.layout.graph, setup.layout.seller, vals, rng)
    idm_loop = time.perf_counter() - started
    started = time.perf_counter()
    setup.idm.evaluate(values, z)
    idm_vec = time.perf_counter() - started

    # The distributed-SRA series alone: vectorised over every (sample, realised tree), and scalar replay_stage3.
    run_seeds = draw_run_seeds(args.samples, args.seed)
    dist_times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        totals = Totals.zeros(len(setup.layout.nodes))
        accumulate_distributed(setup, values, run_seeds, args.runs, 0, args.samples, totals)
        dist_times.append(time.perf_counter() - started)
    trees = setup.realised_trees
    if trees is None:
        trees = setup.rounds.sample_trees(np.random.default_rng(0), 8)
    started = time.perf_counter()
    for r in range(200):
        for tree in trees:
            replay_row(setup.rounds, values[r], tree, int(run_seeds[r]))
    per_replay = (time.perf_counter() - started) / (200 * len(trees))
    per_sample = setup.distributed_runs(args.runs)

    console.print(summary_table(result))
    console.print(
        f"full run ({args.samples} samples x {args.runs} runs, {result.trees} trees, seed {args.seed}): "
        f"median {statistics.median(times):.3f} s over {args.repeat} "
        f"(min {min(times):.3f}, max {max(times):.3f}); writing CSV/PNG/JSON {write_seconds:.3f} s",
        highlight=False,
    )
    console.print(
        f"scalar crm_on_tree: {per_crm * 1e6:.1f} us/call -> {per_crm * args.samples * args.runs / 60:.1f} min "
        f"for {args.samples * args.runs:.0e} per-run calls, {per_crm * args.samples * result.trees:.1f} s "
        f"for the {args.samples} x {result.trees} distinct (sample, tree) pairs",
        highlight=False,
    )
    console.print(
        f"IDM: scalar loop of {args.samples} idm_outcome calls {idm_loop:.2f} s "
        f"({per_idm * 1e6:.0f} us/call); vectorised {idm_vec * 1e3:.1f} ms",
        highlight=False,
    )
    console.print(
        f"distributed SRA alone ({args.samples} x {per_sample} (sample, tree) rows): median "
        f"{statistics.median(dist_times) * 1e3:.0f} ms; scalar replay_stage3 {per_replay * 1e6:.0f} us/call -> "
        f"{per_replay * args.samples * per_sample:.1f} s for the same rows",
        highlight=False,
    )
    console.print("distributed SRA per realised tree (same draws):", highlight=False)
    distributed_breakdown(setup, values, run_seeds, console)
    for label, path in paths.items():
        console.print(f"{label}: {path}", highlight=False)


if __name__ == "__main__":
    main()
