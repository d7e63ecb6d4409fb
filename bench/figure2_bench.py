"""Time the full `peer experiment figure2` run (10^4 samples x 10^3 CRM runs) and print its results.

    /work/venv/bin/python bench/figure2_bench.py [--out out/figure2] [--repeat 3]

Also times the scalar references on a slice and extrapolates, to show what
the vectorised evaluator saves (and measures a full scalar IDM loop, 10^4 calls).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from rich.console import Console

from peer.experiments.crm_vectorised import highest_columns
from peer.experiments.figure2 import Setup, draw_inputs, load_figure2_scenario, run_figure2, summary_table, write_outputs
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
    for label, path in paths.items():
        console.print(f"{label}: {path}", highlight=False)


if __name__ == "__main__":
    main()
