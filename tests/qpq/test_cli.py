"""The typer apps, driven directly (the integrating engineer mounts them under ``peer``)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from peer.qpq.cli import qpq_app, qpq_experiment_app

runner = CliRunner()


def test_sim_fast_and_machines_agree(scenarios_dir: Path) -> None:
    args = ["sim", str(scenarios_dir / "qpq-small.toml"), "--rounds", "60", "--json"]
    fast = runner.invoke(qpq_app, args)
    slow = runner.invoke(qpq_app, [*args, "--mode", "machines"])
    assert fast.exit_code == 0 and slow.exit_code == 0, fast.output + slow.output
    a, b = json.loads(fast.output), json.loads(slow.output)
    assert a["ledger_head"] == b["ledger_head"] and a["flags"] == b["flags"]
    assert a["n"] == 16 and a["k"] == 4 and a["rounds"] == 60 and b["disagreements"] == 0


def test_sim_table_and_ledger(scenarios_dir: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    result = runner.invoke(qpq_app, ["sim", str(scenarios_dir / "qpq-karate.toml"), "--rounds", "30",
                                     "--ledger", str(ledger)])
    assert result.exit_code == 0, result.output
    assert "mean normalised utility" in result.output and "beta_cheater(2)" in result.output
    lines = [json.loads(x) for x in ledger.read_text().splitlines()]
    assert len(lines) == 30 and lines[1]["prev"] == lines[0]["hash"]
    from peer.ledger.keys import verify
    from peer.qpq.ledger import AllocationEntry

    for line in lines:
        entry = AllocationEntry(**{k: line[k] for k in ("stream", "round", "winner", "cluster", "value",
                                                         "transcript", "membership", "prev")})
        assert entry.hash == line["hash"]
        assert verify(line["signer"], entry.signed_bytes(), bytes.fromhex(line["signature"]))


def test_sim_bad_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[qpq]\nplayers = 4\nwindow = -1\n")
    result = runner.invoke(qpq_app, ["sim", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}: [qpq.window]" in result.output
    assert runner.invoke(qpq_app, ["sim", str(bad), "--mode", "warp"]).exit_code == 2
    assert runner.invoke(qpq_app, ["sim", str(tmp_path / "missing.toml")]).exit_code == 2


def test_experiments_write_csv_and_plots(tmp_path: Path) -> None:
    runs = {
        "qpq-props": ["--ns", "4,9", "--rounds", "300", "--warmup", "20"],
        "qpq-traffic": ["--ns", "16", "--machines-up-to", "16"],
        "qpq-cheaters": ["--n", "12", "--k", "3", "--rounds", "200", "--warmup", "20", "--cheaters", "2",
                         "--profiles", "beta_cheater(2);uniform_liar", "--window", "30"],
    }
    for command, args in runs.items():
        out = tmp_path / command
        result = runner.invoke(qpq_experiment_app, [command, *args, "--out", str(out)])
        assert result.exit_code == 0, result.output
        csvs, pngs = list(out.glob("*.csv")), list(out.glob("*.png"))
        assert csvs and pngs and all(p.stat().st_size > 0 for p in csvs + pngs)
    rows = (tmp_path / "qpq-props" / "qpq-props.csv").read_text().splitlines()
    assert rows[0].startswith("n,k,rounds") and len(rows) == 1 + 4  # n=4: k 1,2; n=9: k 1,3


def test_experiment_bad_input_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(qpq_experiment_app, ["qpq-props", "--ns", "4,x", "--out", str(tmp_path)])
    assert result.exit_code == 2
    result = runner.invoke(qpq_experiment_app, ["qpq-cheaters", "--n", "8", "--k", "8", "--out", str(tmp_path)])
    assert result.exit_code == 2


def test_apps_mount_under_peer_without_warnings() -> None:
    import warnings

    import typer

    root, experiment = typer.Typer(), typer.Typer()

    @experiment.command()
    def figure2() -> None:
        """An existing experiment."""

    experiment.add_typer(qpq_experiment_app)
    root.add_typer(experiment, name="experiment")
    root.add_typer(qpq_app, name="qpq")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        help_text = runner.invoke(root, ["experiment", "--help"]).output
        assert "qpq-props" in help_text and "figure2" in help_text
        assert "sim" in runner.invoke(root, ["qpq", "--help"]).output


def test_sim_on_an_sra_scenario_says_to_use_peer_sim(scenarios_dir: Path) -> None:
    # It used to say "[seller] unknown key"; the reverse case (peer sim on a QPQ file) already had a hint.
    result = runner.invoke(qpq_app, ["sim", str(scenarios_dir / "small-tree.toml")])
    assert result.exit_code == 2
    assert "unknown key" not in result.stderr
    assert "SRA scenario" in result.stderr and "`peer sim`" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_sim_mode_lists_its_choices(scenarios_dir: Path) -> None:
    result = runner.invoke(qpq_app, ["sim", str(scenarios_dir / "qpq-small.toml"), "--mode", "warp"])
    assert result.exit_code == 2
    assert "fast" in result.stderr and "machines" in result.stderr
    assert "[fast|machines]" in runner.invoke(qpq_app, ["sim", "-h"]).stdout


def test_run_seed_changes_the_draws_but_not_the_clusters(scenarios_dir: Path, tmp_path: Path) -> None:
    # As --seed's help says: qpq-karate's clusters come from the scenario's seed, not the run seed.
    heads, memberships = set(), set()
    for seed in ("1", "2"):
        ledger = tmp_path / f"{seed}.jsonl"
        result = runner.invoke(qpq_app, ["sim", str(scenarios_dir / "qpq-karate.toml"), "--rounds", "20",
                                         "--seed", seed, "--ledger", str(ledger), "--json"])
        assert result.exit_code == 0, result.output
        heads.add(json.loads(result.stdout)["ledger_head"])
        memberships |= {json.loads(line)["membership"] for line in ledger.read_text().splitlines()}
    assert len(heads) == 2 and len(memberships) == 1
