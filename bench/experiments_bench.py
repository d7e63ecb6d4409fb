"""Benchmark: each Monte-Carlo experiment serial (one process) and pooled (every core).

Prints wall time of both and whether the results are identical, which they
must be: every run carries its own seed (peer.parallel).  The parameters are
the experiments' defaults, so this takes a few minutes on 2 cores.

    python bench/experiments_bench.py [--quick]
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

from peer.parallel import default_workers


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> int:
    quick = "--quick" in sys.argv
    from peer.experiments.report import FULL, QUICK, build_report
    from peer.qpq.exp_cheaters import run_cheaters
    from peer.qpq.exp_props import run_props
    from peer.qpq.exp_traffic import run_traffic

    cores = default_workers()
    props = dict(rounds=2_000 if quick else 10_000, warmup=200, seed=1)
    cheaters = dict(rounds=1_000 if quick else 5_000, seed=1)
    deviations = QUICK if quick else FULL
    experiments = {
        "qpq-props": lambda w: run_props([4, 8, 16, 32, 64], workers=w, **props),
        "qpq-cheaters": lambda w: run_cheaters(workers=w, **cheaters),
        "qpq-traffic": lambda w: repr(run_traffic([16, 64, 256] if quick else [16, 64, 256, 1024], workers=w)),
        # Wall-clock fields differ between runs; the outcomes must not.
        "deviations": lambda w: _outcomes(build_report(replace(deviations, workers=w))),
    }
    print(f"{'experiment':<14} {'serial s':>9} {f'pooled ({cores}) s':>14} {'speed-up':>9}  identical")
    for name, run in experiments.items():
        serial, a = timed(lambda: run(1))
        pooled, b = timed(lambda: run(cores))
        print(f"{name:<14} {serial:>9.1f} {pooled:>14.1f} {serial / pooled:>9.2f}  {a == b}")
    return 0


def _outcomes(report):  # type: ignore[no-untyped-def]
    return repr((report.devs, report.chaos))


if __name__ == "__main__":
    raise SystemExit(main())
