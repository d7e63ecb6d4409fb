"""``peer auctioneer sim`` and ``peer experiment auctioneer`` from the command line (small, seeded)."""

from __future__ import annotations

import csv

from typer.testing import CliRunner

from peer.cli.app import app

runner = CliRunner()


def test_sim_prints_every_providers_output_and_names_a_deviant():
    honest = runner.invoke(app, ["auctioneer", "sim", "--users", "30", "--providers", "3", "--k", "1"])
    assert honest.exit_code == 0, honest.output
    assert honest.output.count("decided") == 3
    bad = runner.invoke(app, ["auctioneer", "sim", "--users", "30", "--providers", "3", "--k", "1", "--deviation", "change-reveal"])
    assert bad.exit_code == 0 and "bad-reveal" in bad.output and "(proved)" in bad.output


def test_sim_refuses_bad_options_with_one_line():
    out = runner.invoke(app, ["auctioneer", "sim", "--providers", "2", "--k", "2"])
    assert out.exit_code == 2 and "need at least k+1" in out.output and "Traceback" not in out.output


def test_experiment_writes_the_csv_and_both_plots(tmp_path):
    out = runner.invoke(app, [
        "experiment", "auctioneer", "--out", str(tmp_path), "--double-users", "20,40", "--standard-users", "8",
        "--rounds", "1",
    ])
    assert out.exit_code == 0, out.output
    with (tmp_path / "auctioneer.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["series"] for r in rows} >= {"centralised", "k=3, 8 providers", "p=4 (k=1)"}
    assert all(r["outcome"] == "decided" and float(r["seconds"]) > 0 for r in rows)
    assert (tmp_path / "figure4_double.png").stat().st_size > 0
    assert (tmp_path / "figure5_standard.png").stat().st_size > 0
