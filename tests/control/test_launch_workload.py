"""``tools/launch SCENARIO --auctions N``: a stream of auctions on real processes, each checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_workload_of_concurrent_auctions_completes_and_checks(tmp_path: Path) -> None:
    env = {**os.environ, "PEER_PYTHON": sys.executable}
    proc = subprocess.run(
        [str(ROOT / "tools" / "launch"), str(ROOT / "scenarios" / "small-tree.toml"), "--headless", "--json",
         "--auctions", "6", "--concurrency", "3", "--workdir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    summary = out["summary"]
    assert summary["completed"] == summary["checked_ok"] == 6 and summary["nodes"] == 3
    assert summary["latency_p50"] <= summary["latency_p95"] <= summary["latency_max"]
    assert len({a["auction"] for a in out["auctions"]}) == 6
    for auction in out["auctions"]:
        assert auction["checks"]["replay_matches"] and auction["checks"]["ledger_identical"]
        assert auction["checks"]["ledger_verified"] == 3
    sellers = {a["seller"] for a in out["auctions"]}
    assert len(sellers) > 1  # drawn by the seed from every node


@pytest.mark.slow
def test_the_dashboard_follows_the_stream_and_ends_on_every_outcome(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from peer.launch.workload import Dashboard, execute_workload
    from peer.scenario.load import load_scenario

    scenario = load_scenario(ROOT / "scenarios" / "small-tree.toml")
    screen = io.StringIO()
    dashboard = Dashboard(Console(file=screen, width=80, height=24, color_system=None, force_terminal=False))
    result, runs, error = execute_workload(
        scenario, tmp_path / "run", seed=scenario.seed, auctions=4, concurrency=2, rate=None, gather_window=0.2,
        reply_timeout=60.0, context_timeout=30.0, confirm_timeout=None, paper_resale=False, link_timeout=60.0,
        timeout=120.0, dashboard=dashboard)
    assert error is None and result is not None and result["checked_ok"] == 4
    assert result["cpu_seconds_per_auction"] > 0
    assert dashboard.monitor is not None
    snap = dashboard.monitor.snapshot()
    assert (snap.completed, snap.aborted, snap.failed, sum(snap.in_flight.values())) == (4, 0, 0, 0)
    assert snap.linked == 3 and snap.p50 is not None and snap.p95 is not None
    assert {row.item for row in snap.last} == {r.item for r in runs}
    assert all(row.winner in scenario.graph.nodes for row in snap.last)  # scenario names, not key prefixes
    dashboard.live.stop()  # off a terminal, rich prints the last frame when the view stops
    frame = screen.getvalue()
    assert "4/4  completed 4  aborted 0" in frame and "last outcomes" in frame
    assert max(len(line) for line in frame.splitlines()) <= 80
