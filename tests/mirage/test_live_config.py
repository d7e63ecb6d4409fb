"""The live run's inputs: ``[mirage.live]``, the cluster file, the launcher's options; bad input changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peer.cli.app import app
from peer.errors import ScenarioError
from peer.launch.mirage_mode import MirageLaunchError, is_mirage_live, parse_lies, plan_mirage
from peer.mirage.live_config import LiveCluster, LiveConfigError, load_live, make_cluster

LIVE = Path(__file__).resolve().parents[2] / "scenarios" / "mirage" / "live.toml"


def scenario_with(tmp_path: Path, live: str) -> Path:
    text = LIVE.read_text()
    head = text[: text.index("[mirage.live]")]
    path = tmp_path / "s.toml"
    path.write_text(head + live)
    return path


def test_the_shipped_scenario_is_a_live_one_and_the_paper_one_is_not():
    assert is_mirage_live(LIVE)
    assert not is_mirage_live(LIVE.parent / "paper.toml")
    scenario, params = load_live(LIVE)
    assert (params.providers, params.k, params.mechanism, params.rounds) == (3, 1, "A1", 8)
    assert dict(params.strategies) == {"u01": "S1", "u03": "S4"}


@pytest.mark.parametrize("live, key", [
    ("[mirage.live]\nproviders = 1\nk = 1\n", "mirage.live.providers"),
    ("[mirage.live]\nmechanism = \"A3\"\n", "mirage.live.mechanism"),
    ("[mirage.live]\nbid_window = 1.5\n", "mirage.live.bid_window"),
    ("[mirage.live]\nhour_seconds = -1\n", "mirage.live.hour_seconds"),
    ("[mirage.live]\nrounds = true\n", "mirage.live.rounds"),
    ("[mirage.live]\nturbo = 1\n", "mirage.live.turbo"),
    ("[mirage.live.strategies]\nu99 = \"S1\"\n", "mirage.live.strategies.u99"),
    ("[mirage.live.strategies]\nu01 = \"S9\"\n", "mirage.live.strategies.u01"),
])
def test_a_bad_live_table_is_refused_naming_the_key(tmp_path, live, key):
    with pytest.raises(ScenarioError, match=key.replace(".", r"\.")):
        load_live(scenario_with(tmp_path, live))


def test_the_cluster_file_round_trips_and_a_malformed_one_is_a_clear_error(tmp_path):
    scenario, params = load_live(LIVE)
    cluster, providers, users = make_cluster(scenario, params, str(LIVE))
    path = tmp_path / "cluster.json"
    cluster.dump(path)
    assert LiveCluster.load(path) == cluster
    assert len(cluster.providers) == 3 and all(len(u.slots) == 4 for u in cluster.users)
    raw = json.loads(path.read_text())
    raw["users"][0]["slots"][0] = "zz"
    path.write_text(json.dumps(raw))
    with pytest.raises(LiveConfigError, match="malformed"):
        LiveCluster.load(path)
    with pytest.raises(LiveConfigError):
        LiveCluster.load(tmp_path / "missing.json")


def test_launcher_behaviours_and_plans(tmp_path):
    assert parse_lies(["provider-1=wrong-result@4,6"], ["provider-0", "provider-1"]) == {"provider-1": "4,6"}
    for bad in ["provider-9=wrong-result@4", "provider-1=silent@4", "provider-1=wrong-result", "provider-1=wrong-result@x"]:
        with pytest.raises(MirageLaunchError):
            parse_lies([bad], ["provider-0", "provider-1"])
    live, plans = plan_mirage(LIVE, tmp_path, seed=None, behaviours=["provider-1=wrong-result@4"])
    assert [p.argv[:2] for p in plans].count(["mirage", "provider"]) == 3
    assert [p.argv[:2] for p in plans].count(["mirage", "user"]) == 6
    liar = next(p for p in plans if p.name == "provider-1")
    assert liar.argv[-2:] == ["--lie", "4"]
    assert LiveCluster.load(tmp_path / "cluster.json") == live
    assert all(p.key_path.exists() for p in plans)


def test_peer_launch_refuses_a_bad_mirage_scenario_with_exit_2(tmp_path):
    bad = scenario_with(tmp_path, "[mirage.live]\nproviders = 0\n")
    result = CliRunner().invoke(app, ["launch", str(bad), "--headless", "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 2
    assert "mirage.live.providers" in result.output
    assert not (tmp_path / "w" / "keys").exists()  # nothing was planned, nothing forked


def test_peer_mirage_commands_report_bad_input_in_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["mirage", "verify", "--cluster", str(tmp_path / "none.json"), str(tmp_path)])
    assert result.exit_code == 2 and "error" in result.output and "Traceback" not in result.output
    scenario, params = load_live(LIVE)
    cluster, providers, users = make_cluster(scenario, params, str(LIVE))
    cluster.dump(tmp_path / "cluster.json")
    users["u00"].save(tmp_path / "u00.key")
    result = runner.invoke(app, ["mirage", "provider", "--key", str(tmp_path / "u00.key"), "--cluster",
                                 str(tmp_path / "cluster.json"), "--dir", str(tmp_path / "addr")])
    assert result.exit_code == 2 and "not one of the cluster's providers" in result.output

