"""``peer auctioneer sim`` and ``peer experiment auctioneer`` from the command line (small, seeded)."""

from __future__ import annotations

import csv
import re

from typer.testing import CliRunner

from peer.cli.app import app

runner = CliRunner()


def test_sim_prints_every_providers_output_and_names_a_deviant():
    honest = runner.invoke(app, ["auctioneer", "sim", "--users", "30", "--providers", "3", "--k", "1"])
    assert honest.exit_code == 0, honest.output
    assert honest.output.count("decided") == 3
    bad = runner.invoke(app, ["auctioneer", "sim", "--users", "30", "--providers", "3", "--k", "1", "--deviation", "change-reveal"])
    assert bad.exit_code == 0 and "bad-reveal" in bad.output and "(proved)" in bad.output
    assert "fast mode" in honest.output and "fast mode" in bad.output


def test_sim_timed_charges_each_provider_its_cpu_and_decides_the_same_outcome():
    args = ["auctioneer", "sim", "--users", "30", "--providers", "3", "--k", "1"]
    fast, timed = runner.invoke(app, args), runner.invoke(app, [*args, "--timed"])
    assert timed.exit_code == 0, timed.output
    assert "one core per provider, Ed25519" in timed.output and "fast mode" not in timed.output
    digests = re.findall(r"decided\W+([0-9a-f]{16})\s", fast.output)
    assert len(digests) == 3 and len(set(digests)) == 1
    assert timed.output.count(digests[0]) == 3  # the same outcome with full crypto


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


def test_node_provider_commands_refuse_bad_input_with_one_line(tmp_path):
    setup = runner.invoke(app, ["auctioneer", "setup", str(tmp_path), "--nodes", "--providers", "3", "--k", "1",
                                "--interval", "2", "--bid-window", "1", "--users", "1"])
    assert setup.exit_code == 0, setup.output
    cluster = tmp_path / "cluster.json"
    for args, why in [
        (["--provider", str(tmp_path / "missing.json")], "--provider"),
        (["--provider", str(cluster), "--key", str(tmp_path / "user-0.key")], "not one of the cluster's providers"),
    ]:
        key = ["--key", str(tmp_path / "provider-0.key")] if "--key" not in args else []
        out = runner.invoke(app, ["run", "--port", "0", "--no-tui", *key, *args])
        assert out.exit_code == 2 and why in out.output and "Traceback" not in out.output, out.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"providers": ["nothex"], "k": 0}')
    out = runner.invoke(app, ["run", "--port", "0", "--no-tui", "--key", str(tmp_path / "provider-0.key"),
                              "--provider", str(bad)])
    assert out.exit_code == 2 and "bad.json" in out.output
    out = runner.invoke(app, ["bid", "--data-dir", str(tmp_path / "nobody"), "--cluster", str(cluster), "--value", "1"])
    assert out.exit_code == 3 and "no node is running" in out.output
    out = runner.invoke(app, ["auctioneer", "rounds", "--data-dir", str(tmp_path / "nobody")])
    assert out.exit_code == 2 and "no auctioneer rounds recorded" in out.output
    # a torn or reordered rounds file is reported, not raised
    records = tmp_path / "d" / "auctioneer" / "rounds.ndjson"
    records.parent.mkdir(parents=True)
    records.write_text('{"round": 5, "output": "bottom", "reason": "x", "culprits": [], "proved": false}\n'
                       '{"round": 3, "output": "bottom", "reason": "y", "culprits": [], "proved": false}\n{"rou')
    out = runner.invoke(app, ["auctioneer", "rounds", "--data-dir", str(tmp_path / "d")])
    assert out.exit_code == 1 and "not append-only" in out.output and "torn tail" in out.output
