"""End to end: the distributed auctioneer on real ``peer run --provider`` processes (127.0.0.1, port 0).

Four provider nodes (k = 1) find each other through the cluster's address
directory and run scheduled rounds; the many-users bid client submits two
rounds, a user node bids with ``peer bid --wait``; every provider's records
are identical and verify offline.  Then one provider is stopped (SIGSTOP):
the others output ⊥ naming it, never an outcome.  Bounded: every process has
a wall-clock limit and is killed in teardown.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
PEER = [sys.executable, "-m", "peer"]
LIMIT = 60


def peer(*args: str, cwd: Path, timeout: float = LIMIT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PEER, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def start(cwd: Path, key: str, data: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PEER, "run", "--port", "0", "--key", key, "--name", data, "--data-dir", data, "--no-tui",
         "--log-json", f"{data}.ndjson", *extra],
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def records(cwd: Path, data: str) -> dict[int, dict]:
    path = cwd / data / "auctioneer" / "rounds.ndjson"
    if not path.exists():
        return {}
    return {r["round"]: r for r in map(json.loads, path.read_text().splitlines())}


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


OWN = ("phase_started_s", "cpu_s", "recorded_at", "recorder", "prev")  # each provider's own timings, name and chain link


def test_provider_nodes_record_identical_verified_rounds_and_a_silent_one_gives_bottom(tmp_path: Path) -> None:
    setup = peer("auctioneer", "setup", ".", "--nodes", "--providers", "4", "--k", "1", "--interval", "3",
                 "--bid-window", "1.5", "--phase-timeout", "2", "--users", "1", cwd=tmp_path)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    cluster = json.loads((tmp_path / "cluster.json").read_text())
    keys = {e.split("=")[0]: e.split("#")[1] for e in cluster["providers"]}
    names = [f"provider-{i}" for i in range(4)]
    procs = [start(tmp_path, f"{n}.key", n, "--provider", "cluster.json") for n in names]
    user = start(tmp_path, "user-0.key", "alice")
    try:
        assert wait_for(lambda: len(list((tmp_path / "addr").glob("*.addr"))) == 4, 60), "providers did not start"
        # the many-users client: two scheduled rounds, closed as soon as the bids are in
        client = peer("auctioneer", "bid", "--key", "client.key", "--cluster", "cluster.json", "--users", "60",
                      "--rounds", "2", "--timeout", "20", "--json", cwd=tmp_path)
        assert client.returncode == 0, client.stdout + client.stderr
        reports = [json.loads(line) for line in client.stdout.splitlines()]
        assert len(reports) == 2 and all(r["digest"] and not r["aborts"] and not r["rejected"] for r in reports)
        # a user node's own bid, on its own signed links to every provider
        bid = peer("bid", "--data-dir", "alice", "--cluster", "cluster.json", "--value", "1.2", "--quantity", "1",
                   "--wait", "--timeout", "20", "--json", cwd=tmp_path)
        assert bid.returncode == 0, bid.stdout + bid.stderr
        mine = json.loads(bid.stdout)
        assert mine["acknowledged"] == 4 and "digest" in mine["outcome"]
        wanted = {r["round"]: r["digest"] for r in reports} | {mine["round"]: mine["outcome"]["digest"]}
        assert wait_for(lambda: all(set(wanted) <= set(records(tmp_path, n)) for n in names), 15)
        copies = [records(tmp_path, n) for n in names]
        for round_no, digest in wanted.items():
            held = [{k: v for k, v in c[round_no].items() if k not in OWN} for c in copies]
            assert all(h == held[0] for h in held) and held[0]["digest"] == digest
        verify = peer("auctioneer", "verify", *names, cwd=tmp_path)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        listing = peer("auctioneer", "rounds", "--data-dir", "provider-0", "--json", cwd=tmp_path)
        assert listing.returncode == 0 and all(r["verifies"] for r in json.loads(listing.stdout)["rounds"])
        status = peer("status", "--data-dir", "provider-0", cwd=tmp_path)
        assert status.returncode == 0 and "auctioneer provider: double auction, k = 1" in status.stdout

        # provider-3 goes silent: the others output ⊥ naming it, and no outcome
        procs[3].send_signal(signal.SIGSTOP)
        client = peer("auctioneer", "bid", "--key", "client.key", "--cluster", "cluster.json", "--users", "30",
                      "--timeout", "8", "--connect-timeout", "2", "--json", cwd=tmp_path)
        assert client.stdout, client.stderr
        report = json.loads(client.stdout)
        assert client.returncode == 1 and report["digest"] is None
        assert len(report["aborts"]) == 3 and keys["provider-3"][:12] not in report["aborts"]
        silent_round = report["round"]
        assert wait_for(lambda: all(silent_round in records(tmp_path, n) for n in names[:3]), 15)
        for n in names[:3]:
            r = records(tmp_path, n)[silent_round]
            assert r["output"] == "bottom" and keys["provider-3"] in r["culprits"]
        procs[3].send_signal(signal.SIGCONT)
    finally:
        for p in [*procs, user]:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.terminate()
        for p in [*procs, user]:
            try:
                p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate(timeout=10)
