"""End to end: a three-way tie under ``--verifiable-coins`` on real processes (``tools/launch``, 127.0.0.1).

The seller's hop goes to the buyer its identity's tie coin picks, and the
launcher's replay check, which signs the same coins with the identities it
made, agrees.  Bounded: 4 processes, 120 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from peer.launch.plan import launch_identity
from peer.node.eventlog import read_all
from peer.scenario.load import load_scenario
from peer.sra.coins import coin_message, tie_purpose, tie_winner

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = """name = "tie-three"
seller = "s"
seed = 1
[values]
s = 0
a = 5
b = 5
c = 5
[graph]
edges = [["s", "a"], ["s", "b"], ["s", "c"]]
"""


def test_a_tie_on_real_processes_follows_the_sellers_coin_and_passes_the_check(tmp_path: Path) -> None:
    path = tmp_path / "tie-three.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    env = {**os.environ, "PEER_PYTHON": sys.executable}
    proc = subprocess.run(
        [str(ROOT / "tools" / "launch"), str(path), "--headless", "--json", "--workdir", str(tmp_path / "run"),
         "--verifiable-coins"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = json.loads(proc.stdout)
    assert run["check"]["ok"] and run["check"]["replay_matches"], run["check"]
    scenario = load_scenario(path)
    ids = {n: launch_identity(scenario, 1, n) for n in "sabc"}
    logs = read_all(tmp_path / "run" / "logs" / "s.ndjson")
    (auction,) = [e["auction"] for e in logs if e["kind"] == "announced"]
    coin = ids["s"].sign(coin_message(auction, tie_purpose(1)))
    pick = tie_winner(coin, [ids[n].public_hex for n in "abc"])
    assert run["hops"][0]["buyer"] == next(n for n in "abc" if ids[n].public_hex == pick)
    assert run["hops"][0]["price"] == 5
