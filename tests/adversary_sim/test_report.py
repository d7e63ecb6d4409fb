"""``peer experiment deviations --quick``: every kind and chaos setting is run and nothing stalls."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peer.cli.app import app
from peer.experiments.adversaries import KIND_NAMES, KINDS, pick_deviators
from peer.experiments.report import CHAOS_SETTINGS, QUICK, build_report, cases
from peer.experiments.report_output import render, write_csv
from peer.sim.run import simulate


@pytest.fixture(scope="module")
def report():  # type: ignore[no-untyped-def]
    return build_report(QUICK)


def test_quick_report_covers_every_kind_and_setting_and_never_stalls(report) -> None:  # type: ignore[no-untyped-def]
    rows = {r["kind"]: r for r in report.kind_rows()}
    assert list(rows) == KIND_NAMES
    for name, row in rows.items():
        assert row["stalled/bug"] == 0 and row["ledger bad"] == 0, name
    for name in ("shade", "inflate", "aggregate", "sybil-2", "false-reserve", "silent@allocation", "grief"):
        assert rows[name]["runs"] > 0, name
    assert rows["aggregate"]["mean gain"] == 0 and rows["aggregate"]["gains"] == 0  # inert
    # Guarded resale: a false reserve is caught whenever it could cost anyone but the liar.
    assert rows["false-reserve"]["honest IR broken"] == 0
    for name in ("grief", "crash@hop:2", "silent@allocation", "crash@hosting+restart"):
        assert rows[name]["honest IR broken"] == 0, name
    chaos = {r["setting"]: r for r in report.chaos_rows()}
    assert list(chaos) == list(CHAOS_SETTINGS)
    for name, row in chaos.items():
        assert row["stalled/bug"] == 0 and row["ledger bad"] == 0 and row["runs"] > 0, name
        assert row["completed"] + row["aborted"] == row["runs"]
    assert chaos["dup 50%"]["same outcome"] == 1


def test_report_writes_csv_and_renders(report, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths = write_csv(report, tmp_path)
    with paths["deviations"].open() as f:
        assert [r["kind"] for r in csv.DictReader(f)] == KIND_NAMES
    with paths["runs"].open() as f:
        assert sum(1 for _ in csv.DictReader(f)) == len(report.devs)
    assert len(render(report)) >= 2


def test_deviators_come_from_the_resale_path_first() -> None:
    case = cases(QUICK)[0]
    honest, _ = simulate(case.scenario, seed=0)
    path = {h.buyer for h in honest.hops}
    import random

    for kind in KINDS:
        chosen = pick_deviators(honest, kind, 3, random.Random(1))
        assert chosen and chosen[0] in path and honest.seller not in chosen
        assert len(set(chosen)) == len(chosen) and (not kind.on_path or set(chosen) <= path)


def test_cli_quick(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["experiment", "deviations", "--quick", "--out", str(tmp_path)],
                             env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert out.exit_code == 0, out.output
    assert "false-reserve" in out.output and (tmp_path / "chaos.csv").exists()
