"""Money is written one way in every output: whole units, exact decimals (never raw minor units)."""

from __future__ import annotations

import csv
from pathlib import Path

from peer.experiments.report import KIND_NAMES, QUICK, ChaosRecord, DevRecord, Report
from peer.experiments.report_output import describe, write_csv

RECORD = DevRecord(kind=KIND_NAMES[0], graph="g", seed=3, node="a", behaviour="x", top=8_000_000,
                   truthful=1_500_000, deviant=2_250_000, status="completed", reason="", min_honest=-250_000,
                   detections=(), rejected=False, ledger_ok=True)
CHAOS = ChaosRecord(setting=QUICK.chaos[0], graph="g", seed=3, status="completed", reason="", ledger_ok=True,
                    same_outcome=True, min_honest=0, top=8_000_000, dropped=2)


def test_largest_gain_line_is_in_whole_units() -> None:
    # It read "utility 1500000 -> 2250000 (gain 750000 minor units, ...)".
    line = describe(RECORD)
    assert "utility 1.5 -> 2.25 (gain 0.75, 0.094 of top)" in line
    assert "minor units" not in line and "1500000" not in line


def test_per_run_csvs_are_in_whole_units(tmp_path: Path) -> None:
    report = Report(config=QUICK, graphs=1, devs=[RECORD], chaos=[CHAOS])
    paths = write_csv(report, tmp_path)
    with paths["runs"].open() as f:
        (row,) = list(csv.DictReader(f))
    assert (row["top"], row["truthful"], row["deviant"], row["gain"], row["min_honest"]) == (
        "8", "1.5", "2.25", "0.75", "-0.25")
    with paths["chaos-runs"].open() as f:
        (row,) = list(csv.DictReader(f))
    assert (row["top"], row["min_honest"]) == ("8", "0")
