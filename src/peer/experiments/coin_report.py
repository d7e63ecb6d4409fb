"""``peer experiment deviations``' parent-choice kinds with the private coin and with verifiable coins.

The same runner as ``peer experiment deviations`` (:func:`peer.experiments.report.build_report`,
the shipped SRA scenarios and the seeded random graphs, 12 run seeds each),
restricted to the three parent-choice kinds and no chaos, once per coin
setting.  Until the CLI carries ``--verifiable-coins`` (a hook for the CLI's
owner: ``ReportConfig.verifiable_coins``), this is the command that measures it.

Run: ``python -m peer.experiments.coin_report [--seeds 12] [--workers 1] [--paper-resale] [--kinds K ...]``.
``--kinds shade context-low`` measures the kinds whose gains come through a
host's tie-break (docs/findings.md, Counterexample C), which verifiable coins
also decide.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace

from peer.experiments.report import FULL, build_report

PARENT_KINDS = ("parent-choice", "parent-choice-omit", "parent-choice-silent")
COLUMNS = ("runs", "completed", "gains", "loses", "mean gain", "max gain", "rejected", "honest IR broken")


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    try:
        return f"{float(value):.4g}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=FULL.seeds)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--paper-resale", action="store_true")
    parser.add_argument("--kinds", nargs="+", default=list(PARENT_KINDS), help="deviation kinds (default: parent choice)")
    args = parser.parse_args(argv)
    print("coins       kind                   " + "  ".join(f"{c:>10}" for c in COLUMNS))
    for verifiable in (False, True):
        config = replace(FULL, kinds=tuple(args.kinds), chaos=(), seeds=args.seeds, workers=args.workers,
                         guarded=not args.paper_resale, verifiable_coins=verifiable)
        report = build_report(config)
        for row in report.kind_rows():
            cells = "  ".join(f"{_fmt(row[c]):>10}" for c in COLUMNS)
            print(f"{'verifiable' if verifiable else 'private':<11} {row['kind']:<22} {cells}")
    print("(gains, loses, rejected: shares of the runs; mean and max gain in units of the graph's top value)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
