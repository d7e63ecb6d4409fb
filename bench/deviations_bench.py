"""Benchmark: the full unilateral-deviation sweep of SRA (Thm 5.3), and optionally the CRM sweep.

Runs every deviation of every buyer on every connected atlas graph with 2..6
nodes (every seller, two value profiles) plus 30 seeded random graphs with
7..9 nodes, prints the per-kind table, the smallest counterexamples and the
wall time.  Budget: 2-3 minutes on two cores.

    python bench/deviations_bench.py             # deviations sweep
    python bench/deviations_bench.py --crm       # also CRM vs SRA and Prop. 5.4 (about 1.5 min more)
    python bench/deviations_bench.py --workers 1
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from peer.experiments import crm_vs_replay, deviations

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--crm", action="store_true", help="also run the CRM-vs-SRA sweep")
    args = parser.parse_args(argv)
    console = Console(width=200)
    config = deviations.FULL if args.workers is None else replace(deviations.FULL, workers=args.workers)
    start = time.perf_counter()
    report = deviations.sweep(config)
    for item in deviations.render(report):
        console.print(item)
    console.print(f"deviation sweep: {report.instances} instances, "
                  f"{sum(s.tried for s in report.stats.values())} deviant runs, "
                  f"{report.seconds:.1f} s with {config.workers} worker(s)")
    if args.crm:
        crm = crm_vs_replay.sweep(crm_vs_replay.FULL)
        for item in crm_vs_replay.render(crm):
            console.print(item)
        console.print(crm_vs_replay.figure2_revenues(str(ROOT / "scenarios" / "paper-figure2.toml"), seed=1))
        console.print(f"CRM sweep: {crm.seconds:.1f} s")
    console.print(f"total: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
