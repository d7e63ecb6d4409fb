"""End to end, as a person would: three ``peer run`` processes started by hand, driven with the control commands.

``peer run`` x3 (no --sell, port 0), then ``peer sell lamp --wait`` on A, then
``peer sell book`` on B and ``peer sell pen`` on C at the same time; every
``peer status`` shows all three auctions and balances that agree and sum to
zero.  Real processes and websockets on 127.0.0.1, bounded in time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

PEER = [sys.executable, "-m", "peer"]
LIMIT = 60.0  # seconds for any one command


def peer(*args: str, timeout: float = LIMIT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PEER, *args], capture_output=True, text=True, timeout=timeout, check=False)


def keygen(path: Path) -> str:
    out = peer("keygen", "--out", str(path))
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[0]


def start(name: str, root: Path, value: str, neighbours: str) -> subprocess.Popen[str]:
    with open(root / f"{name}.out", "w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [*PEER, "run", "--port", "0", "--key", str(root / f"{name}.key"), "--name", name, "--value", value,
             "--neighbours", neighbours, "--data-dir", str(root / name), "--log-json", str(root / f"{name}.ndjson"),
             "--no-tui", "--gather-window", "0.05", "--reply-timeout", "10", "--context-timeout", "10"],
            stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def status(root: Path, name: str) -> dict:
    deadline = time.monotonic() + LIMIT
    while True:
        out = peer("status", "--data-dir", str(root / name), "--json")
        if out.returncode == 0:
            return json.loads(out.stdout)
        assert out.returncode == 3 and time.monotonic() < deadline, out.stderr  # 3: not up yet
        time.sleep(0.2)


def wait_linked(root: Path, name: str, count: int) -> dict:
    deadline = time.monotonic() + LIMIT
    while True:
        s = status(root, name)
        if sum(link["up"] for link in s["links"]) == count:
            return s
        assert time.monotonic() < deadline, s["links"]
        time.sleep(0.2)


@pytest.mark.slow
def test_three_nodes_started_by_hand_sell_in_turn_and_at_once(tmp_path: Path) -> None:
    keys = {n: keygen(tmp_path / f"{n}.key") for n in "ABC"}
    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(start("A", tmp_path, "3", f"B=#{keys['B']},C=#{keys['C']}"))
        a = status(tmp_path, "A")
        assert a["neighbour_string"] == f"A={a['listen']}#{keys['A']}"
        procs.append(start("B", tmp_path, "5", f"{a['neighbour_string']},C=#{keys['C']}"))
        b = status(tmp_path, "B")
        procs.append(start("C", tmp_path, "8", f"{a['neighbour_string']},{b['neighbour_string']}"))
        for name in "ABC":
            wait_linked(tmp_path, name, 2)

        lamp = peer("sell", "lamp", "--data-dir", str(tmp_path / "A"), "--wait", "--timeout", "50")
        assert lamp.returncode == 0, lamp.stderr
        assert "lamp: sold to C at 5 after 1 hop(s)" in lamp.stdout  # C values it most, pays B's bid

        both = [subprocess.Popen([*PEER, "sell", item, "--data-dir", str(tmp_path / name), "--wait", "--json",
                                  "--timeout", "50"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for name, item in (("B", "book"), ("C", "pen"))]
        results = []
        for proc in both:
            out, err = proc.communicate(timeout=LIMIT)
            assert proc.returncode == 0, err
            results.append(json.loads(out)["outcome"])
        assert [r["outcome"] for r in results] == ["completed", "completed"]
        assert results[0]["winner_name"] == "C"  # book from B: C (8) over A (3)

        seen = {}
        for name in "ABC":
            s = status(tmp_path, name)
            seen[name] = s
            assert len(s["recent"]) == 3 and s["in_flight"] == []
            assert {o["item"] for o in s["recent"]} == {"lamp", "book", "pen"}
        assert len({json.dumps(s["balances"], sort_keys=True) for s in seen.values()}) == 1  # copies agree
        assert sum(Decimal(v) for v in seen["A"]["balances"].values()) == 0
        assert Decimal(seen["A"]["balance"]) == 5  # A sold the lamp at 5 and bought nothing

        human = peer("status", "--data-dir", str(tmp_path / "B"))
        assert human.returncode == 0 and "give neighbours: B=ws://127.0.0.1:" in human.stdout
        bad = peer("value", "set", "lamp", "abc", "--data-dir", str(tmp_path / "B"))
        assert bad.returncode == 2 and bad.stderr.startswith("error: amount:") and bad.stderr.count("\n") == 1
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
