"""End to end with real processes: provider processes on 127.0.0.1 (port 0) and one bid client.

Bounded: every process has a wall-clock limit and is killed in teardown.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
PEER = [sys.executable, "-m", "peer", "auctioneer"]
LIMIT = 90


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PEER, *args], cwd=cwd, capture_output=True, text=True, timeout=LIMIT, check=False)


@pytest.mark.parametrize("auction", ["double", "standard"])
def test_providers_agree_on_one_signed_outcome_that_verifies_offline(tmp_path, auction):
    setup = run("setup", str(tmp_path), "--providers", "3", "--k", "1", "--auction", auction, cwd=tmp_path)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    procs = [
        subprocess.Popen(
            [*PEER, "provider", "--key", f"provider-{i}.key", "--cluster", "cluster.json", "--dir", "addr",
             "--out", f"out{i}", "--linger", "1"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(3)
    ]
    try:
        users = "60" if auction == "double" else "12"
        client = run("bid", "--key", "client.key", "--cluster", "cluster.json", "--dir", "addr",
                     "--users", users, "--timeout", "30", "--json", cwd=tmp_path)
        assert client.returncode == 0, client.stdout + client.stderr
        report = json.loads(client.stdout)
        assert report["digest"] and not report["aborts"] and report["rejected"] == 0
        for p in procs:
            _, err = p.communicate(timeout=LIMIT)
            assert p.returncode == 0, err
        records = sorted(tmp_path.glob("out*/round-1.json"))
        assert len(records) == 3
        digests = {json.loads(r.read_text())["digest"] for r in records}
        assert digests == {report["digest"]}
        check = run("verify", *map(str, records), cwd=tmp_path)
        assert check.returncode == 0, check.stdout
        # a tampered copy does not verify
        record = json.loads(records[0].read_text())
        if record["charges"]:
            record["charges"][0][1] += 1
        else:
            record["coin"] = "00" * 32
        records[0].write_text(json.dumps(record))
        assert run("verify", str(records[0]), cwd=tmp_path).returncode == 2
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=10)
