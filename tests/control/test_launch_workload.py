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
