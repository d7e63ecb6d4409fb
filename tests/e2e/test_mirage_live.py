"""End to end: Mirage's market on real processes (``peer launch scenarios/mirage/live.toml``).

Three provider processes clear eight hourly rounds (one hour = one second) and
six user processes bid through their own nodes, over websockets on 127.0.0.1.
Each run is bounded (the launcher's own timeouts, and ``subprocess`` timeouts).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from peer.net.identity import Identity

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "mirage" / "live.toml"


def launch(workdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peer", "launch", str(SCENARIO), "--headless", "--json", "--workdir", str(workdir),
         "--timeout", "15", "--link-timeout", "45", *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )


def verify_offline(workdir: Path, providers: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peer", "mirage", "verify", "--cluster", str(workdir / "cluster.json"),
         *(str(workdir / "records" / p) for p in providers)],
        capture_output=True, text=True, timeout=30, check=False,
    )


def test_hourly_rounds_on_real_processes_leave_identical_verifying_balances(tmp_path: Path) -> None:
    proc = launch(tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads(proc.stdout)
    assert run["ok"] and run["identical"] and run["verified"] == run["copies"] == 3
    assert len(run["rounds"]) == 8 and all(r["output"] == "outcome" for r in run["rounds"])
    assert sum(len(r["allocations"]) for r in run["rounds"]) >= 5  # the users' bids really cleared
    assert len(run["balances"]) == 6
    assert sum(run["balances"].values()) == 6 * 1000 * 10**6  # a closed currency, in exact minor units
    users = {u["name"]: u for u in run["users"]}
    assert {u["strategy"] for u in users.values()} == {"truthful", "S1", "S4"}
    for name, u in users.items():  # each user's node ends on the providers' balance and its own winnings
        assert u["balance"] == run["balances"][name] and u["last_view"] == 8 and not u["views_differed"]
    assert sum(len(u["won"]) for u in users.values()) == sum(len(r["allocations"]) for r in run["rounds"])
    check = verify_offline(tmp_path / "run", ["provider-0", "provider-1", "provider-2"])
    assert check.returncode == 0 and "3/3 copies verify, identical: True" in check.stdout, check.stdout


def test_a_provider_reporting_a_wrong_result_gives_bottom_for_that_round(tmp_path: Path) -> None:
    proc = launch(tmp_path / "run", "--behaviour", "provider-1=wrong-result@4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads(proc.stdout)
    assert run["ok"] and run["identical"] and run["verified"] == run["copies"] == 2  # the honest copies
    outputs = [r["output"] for r in run["rounds"]]
    assert outputs[3] == "bottom" and run["rounds"][3]["reason"] == "data transfer: conflicting results"
    assert outputs.count("outcome") == 7  # the other rounds decide as usual
    # The deviant's own ⊥ for round 4 comes late (it waited for signatures); users took the view
    # from k+1 = 2 identical copies and bid in round 5 all the same.
    assert run["rounds"][4]["bids"] > 0
    records = tmp_path / "run" / "records"
    liar = Identity.load(tmp_path / "run" / "keys" / "provider-1.key").public_hex
    for honest in ("provider-0", "provider-2"):
        record = json.loads((records / honest / "round-4.json").read_text())
        assert record["proved"] is True and record["culprits"] == [liar]  # named, with its signed result as proof
        assert "allocations" not in record["mirage"]  # ⊥: nothing booked, nobody charged
    check = verify_offline(tmp_path / "run", ["provider-0", "provider-2"])
    assert check.returncode == 0, check.stdout


def test_a_provider_that_never_gets_the_start_exits_with_one_line(tmp_path, monkeypatch):
    """It listens on a real socket and waits on the real clock (0.3 s), hence here."""
    import peer.mirage.live_shell as shell
    from typer.testing import CliRunner

    from peer.cli.app import app
    from peer.mirage.live_config import load_live, make_cluster

    monkeypatch.setattr(shell, "START_WAIT", 0.3)  # nobody writes start.json
    scenario, params = load_live(SCENARIO)
    cluster, providers, users = make_cluster(scenario, params, str(SCENARIO))
    cluster.dump(tmp_path / "cluster.json")
    providers["provider-0"].save(tmp_path / "p0.key")
    result = CliRunner().invoke(app, ["mirage", "provider", "--key", str(tmp_path / "p0.key"), "--cluster",
                                      str(tmp_path / "cluster.json"), "--dir", str(tmp_path / "addr")])
    assert result.exit_code == 2 and "no start.json" in result.output, result.output
