"""Faults on real processes: ``tools/launch --kill / --behaviour / --restart-after``.

Five ``peer run`` processes on 127.0.0.1.  The seller's only neighbour, a, is
certain to buy hop 1 (and then host hop 2), whatever the timing, so a crash at
"hosting" always lands on the resale path.  Each launch is bounded (the
launcher's own --timeout, and a subprocess timeout above it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from peer.ledger import LedgerStore
from peer.sra.ids import key_prefix

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = """\
name = "faults"
seller = "s"
seed = 1
[values]
s = 0
a = 2
b = 5
c = 4
d = 8
[graph]
edges = [["s", "a"], ["a", "b"], ["a", "c"], ["b", "c"], ["b", "d"], ["c", "d"]]
"""
# Timeouts that leave every level of this tree room to answer (budgets shrink 0.5 s per level).
TIMING = ["--reply-timeout", "4", "--context-timeout", "3", "--timeout", "40"]

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the launcher forks its nodes")


def launch(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    scenario = tmp_path / "faults.toml"
    scenario.write_text(SCENARIO)
    env = {**os.environ, "PEER_PYTHON": sys.executable}
    proc = subprocess.run(
        [str(ROOT / "tools" / "launch"), str(scenario), "--headless", "--json", "--workdir", str(tmp_path / "run"),
         *TIMING, *extra],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )
    try:
        run = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"no JSON (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return proc, run


def events(tmp_path: Path, node: str) -> list[dict[str, Any]]:
    from peer.node.eventlog import read_all

    return read_all(tmp_path / "run" / "logs" / f"{node}.ndjson")


def test_killed_while_gathering_then_restarted_late_completes_and_catches_up(tmp_path: Path) -> None:
    # b is SIGKILLed while it gathers inviters (a 0.5 s window, so the kill lands there) and
    # forked again 4 s later, when the auction is over.  The others time b out and complete
    # without it; b recovers its ledger (the announcement), ignores the auction it lost, and
    # its neighbours answer its summaries with the hop it missed.
    proc, run = launch(tmp_path, "--gather-window", "0.5", "--kill", "b@gathering", "--restart-after", "4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    check = run["check"]
    assert check["outcome"] == "completed" and check["ok"], check
    assert check["replay_matches"] and check["replay_basis"] in ("full", "without b")
    assert check["ledger_identical"] and check["ledger_verified"] == 5
    assert check["ledger_relations"] == {"b": "identical"}
    assert run["faults"]["killed"]["b"]["stage"] == "gathering"
    assert run["faults"]["restarted_at"]["b"] - run["faults"]["died_at"]["b"] >= 4
    kinds = [e["kind"] for e in events(tmp_path, "b")]
    assert kinds.count("started") == 2 and "recovered" in kinds
    assert any(e["kind"] == "catchup" for n in ("a", "c", "d") for e in events(tmp_path, n))
    # After the restart b refuses nothing and blames no one: lost-auction messages are ignored.
    assert "bad" not in kinds[kinds.index("recovered"):]


def test_host_crashing_with_an_unsent_entry_aborts_cleanly_and_loses_nothing(tmp_path: Path) -> None:
    # a buys hop 1 (countersigns and fsyncs it) and SIGKILLs itself on entering "hosting",
    # before its flood of the entry leaves the process.  Nobody else holds hop 1, and nobody
    # can settle: every honest node aborts after its stall bound, saying where the item is.
    # Forked again 1 s later, a recovers the entry from disk and floods it: no copy lacks it.
    # (The paper's rule: under guarded resale a buys nothing before it has hosted, and the
    # seller sells around it; tests/adversary_node/test_attacks_in_memory.py shows that.)
    proc, run = launch(tmp_path, "--behaviour", "a=crash@hosting", "--restart-after", "1",
                       "--reply-timeout", "3.5", "--context-timeout", "2.5", "--paper-resale")
    assert proc.returncode == 0, proc.stderr[-2000:]
    check = run["check"]
    assert check["outcome"] == "aborted" and check["ok"], check
    assert check["replay_basis"] == "not applicable: aborted"
    assert {r.split(":")[0] for r in check["reasons"]} == {"s", "b", "c", "d"}
    assert all("the item stays with a, who bought it in hop 1" in r for r in check["reasons"])
    assert run["hops"] == [{"hop": 1, "seller": "s", "buyer": "a", "price": 0}]
    assert check["ledger_identical"] and check["ledger_verified"] == 5
    assert check["ledger_relations"] == {"a": "identical"}
    assert run["adversary"] == {"a": ["crashing"]}
    # The entry reached the seller only from the restarted a.
    # The auction id is the seller's own (derived from its key), as it announced it.
    auction = next(e["auction"] for e in events(tmp_path, "s") if e["kind"] == "announced")
    seller_key = next(e["key"] for e in events(tmp_path, "s") if e["kind"] == "started")
    assert auction.startswith(key_prefix(seller_key) + "/")
    a_recovered = next(e for e in events(tmp_path, "a") if e["kind"] == "recovered")
    assert a_recovered["auctions"] == {auction: 2}
    with LedgerStore.open_data_dir(tmp_path / "run" / "data" / "s", read_only=True) as store:
        chain = store.chain(auction)
        assert chain is not None and len(chain.hops) == 1 and store.verify_all().ok


def test_bad_fault_specs_exit_2_before_starting_anything(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from peer.launch.cli import app

    scenario = tmp_path / "faults.toml"
    scenario.write_text(SCENARIO)
    for extra, message in ((["--kill", "zz@hosting"], "no node named 'zz'"),
                           (["--kill", "a@lunch"], "STAGE must be one of"),
                           (["--behaviour", "a=teleport"], "unknown behaviour"),
                           (["--restart-after", "1"], "--restart-after needs")):
        result = CliRunner().invoke(app, [str(scenario), "--headless", "--workdir", str(tmp_path / "run"), *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output, result.output
        assert "Traceback" not in result.output
        assert not (tmp_path / "run").exists()  # nothing planned, nothing started
