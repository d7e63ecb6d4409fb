"""End to end: ``tools/launch`` starts real ``peer run`` processes on 127.0.0.1.

Bounded in time and count (3 and 20 processes).  Each run must settle, match the
replay reference on the realised tree, and leave identical, verified ledger
copies on every node.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def launch(scenario: str, tmp_path: Path, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PEER_PYTHON": sys.executable}
    return subprocess.run(
        [str(ROOT / "tools" / "launch"), str(ROOT / "scenarios" / scenario), "--headless", "--json",
         "--workdir", str(tmp_path / "run"), *extra],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )


def test_small_tree_on_real_processes(tmp_path: Path) -> None:
    proc = launch("small-tree.toml", tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = json.loads(proc.stdout)
    assert run["winner"] == "a"
    assert run["hops"] == [{"hop": 1, "seller": "s", "buyer": "a", "price": 5}]
    assert run["check"]["ok"] and run["check"]["ledger_verified"] == 3
    assert set(run) >= {"mechanism", "seller", "seed", "nodes", "hops", "winner", "utilities", "revenue", "messages"}


def test_twenty_processes_settle_and_check(tmp_path: Path) -> None:
    proc = launch("ws-20.toml", tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = json.loads(proc.stdout)
    check = run["check"]
    assert check == {**check, "ok": True, "replay_matches": True, "ledger_identical": True,
                     "ledger_verified": 20, "ledger_copies": 20}
    assert run["bad_messages"] == 0
    assert all(u >= 0 for u in run["utilities"].values())
    # Every node's own log shows it settled; the ledger directory verifies offline.
    logs = sorted((tmp_path / "run" / "logs").glob("*.ndjson"))
    assert len(logs) == 20
    verify = subprocess.run(
        [sys.executable, "-m", "peer", "ledger", "verify", str(tmp_path / "run" / "data" / "7")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_bad_scenario_exits_2_without_starting_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nseller = "s"\n[values]\ns = 0\n[graph]\nedges = [["s", "zz"]]\n')
    env = {**os.environ, "PEER_PYTHON": sys.executable}
    proc = subprocess.run([str(ROOT / "tools" / "launch"), str(bad), "--headless"], capture_output=True,
                          text=True, timeout=60, env=env, check=False)
    assert proc.returncode == 2
    assert "bad.toml" in proc.stderr and "graph.edges[0]" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the launcher forks its nodes")
def test_children_are_stopped_when_the_launch_fails(tmp_path: Path) -> None:
    # An impossible link timeout: the launch fails, and must leave no process behind.
    proc = launch("small-tree.toml", tmp_path, "--link-timeout", "0.01")
    assert proc.returncode == 1, proc.stderr[-1000:]
    assert "not every node linked" in proc.stderr, proc.stderr[-1000:]
    deadline = time.monotonic() + 10  # a SIGKILLed child can take a moment to be reaped
    while True:
        out = subprocess.run(["pgrep", "-f", str(tmp_path / "run")], capture_output=True, text=True, check=False)
        if out.stdout.strip() == "" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert out.stdout.strip() == ""


def test_qpq_stream_on_real_processes(tmp_path: Path) -> None:
    # 16 processes; every commitment and reveal crosses the signed links as origin-signed gossip.
    proc = launch("qpq-small.toml", tmp_path, "--rounds", "3", "--phase", "1.0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = json.loads(proc.stdout)
    check = run["check"]
    assert check["ok"] and check["identical"] and check["matches_simulator"], check
    assert check["copies_verified"] == check["copies"] == 16
    assert [a["round"] for a in run["allocations"]] == [0, 1, 2]


def test_verifiable_coins_on_real_processes(tmp_path: Path) -> None:
    # Every node runs with --verifiable-coins: Bids carry coins (CoinBid) and the run still checks.
    # The launcher names no auction: the id is the seller's own, read from its "announced" event.
    from peer.node.eventlog import read_all
    from peer.sra.ids import key_prefix

    proc = launch("small-tree.toml", tmp_path, "--verifiable-coins")
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = json.loads(proc.stdout)
    assert run["hops"] == [{"hop": 1, "seller": "s", "buyer": "a", "price": 5}]
    assert run["check"]["ok"] and run["check"]["ledger_verified"] == 3
    logs = {p.stem: read_all(p) for p in (tmp_path / "run" / "logs").glob("*.ndjson")}
    sent = {e.get("type") for events in logs.values() for e in events if e.get("kind") == "send"}
    assert "CoinBid" in sent and "Bid" not in sent, sent
    seller_key = next(e["key"] for e in logs["s"] if e["kind"] == "started")
    announced = [e["auction"] for e in logs["s"] if e["kind"] == "announced"]
    assert len(announced) == 1 and announced[0].startswith(key_prefix(seller_key) + "/")
