"""``peer sim --auctions N --concurrency C``: concurrent auctions sharing the simulator's nodes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from peer.scenario.load import load_scenario
from peer.sim.workload import simulate_workload

ROOT = Path(__file__).resolve().parents[2]


def test_concurrent_auctions_all_complete_and_match_their_replay() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "ws-20.toml")
    result = simulate_workload(scenario, seed=5, auctions=20, concurrency=5)
    s = result["summary"]
    assert s["completed"] == s["replay_matches"] == 20 and s["refused_invitations"] == 0
    assert len({a["seller"] for a in result["auctions"]}) > 1
    assert simulate_workload(scenario, seed=5, auctions=20, concurrency=5) == result  # seeded


def test_a_tight_capacity_shows_in_refusals_and_smaller_auctions() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "ws-20.toml")
    tight = simulate_workload(scenario, seed=5, auctions=20, concurrency=8, capacity=1)["summary"]
    assert tight["completed"] == tight["replay_matches"] == 20
    assert tight["refused_invitations"] > 0 and tight["mean_participants"] < 20


def test_peer_sim_auctions_json() -> None:
    out = subprocess.run([sys.executable, "-m", "peer", "sim", str(ROOT / "scenarios" / "small-tree.toml"),
                          "--auctions", "4", "--concurrency", "2", "--json"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["summary"]["completed"] == 4
