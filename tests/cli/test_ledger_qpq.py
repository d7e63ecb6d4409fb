"""``peer ledger verify|show`` on a QPQ node's data directory: the allocation chain is checked too.

They used to report ``no auctions`` / ``0 auction(s) ... ok`` and never open ``qpq/``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from typer.testing import CliRunner

from peer.cli.app import app
from peer.cli.qpq_chain import check_stream
from peer.ledger.store import LedgerStore
from peer.node.qpq_shell import read_allocations
from peer.qpq.fast import run_fast
from peer.qpq.ledger import sign_allocation
from peer.qpq.scenario import load_qpq_scenario
from peer.qpq.setup import QpqSetup

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
KEY = SigningKey(hashlib.sha256(b"cli-qpq-node").digest())
OTHER = SigningKey(hashlib.sha256(b"cli-qpq-other").digest())
ROUNDS = 30


def _line(entry: object, key: SigningKey = KEY) -> str:
    signed = sign_allocation(key, entry)  # type: ignore[arg-type]
    return json.dumps({**signed.entry.to_json(), "signer": signed.signer, "signature": signed.signature.hex()})


@pytest.fixture(scope="module")
def setup() -> QpqSetup:
    return load_qpq_scenario(SCENARIOS / "qpq-small.toml")


@pytest.fixture
def node_dir(tmp_path: Path, setup: QpqSetup) -> Path:
    """What a QPQ node leaves: an empty SRA ledger and its signed allocation file (as QpqShell.record writes)."""
    LedgerStore.open_data_dir(tmp_path).close()
    run = run_fast(setup, rounds=ROUNDS)
    (tmp_path / "qpq").mkdir()
    lines = [_line(e) for e in run.entries]
    (tmp_path / "qpq" / f"{setup.stream}.ndjson").write_text("\n".join(lines) + "\n")
    return tmp_path


def _file(node_dir: Path, setup: QpqSetup) -> Path:
    return node_dir / "qpq" / f"{setup.stream}.ndjson"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["ledger", *args], env={"COLUMNS": "200", "NO_COLOR": "1"})
    return result.exit_code, result.output


def test_verify_checks_the_qpq_allocation_chain(node_dir: Path, setup: QpqSetup) -> None:
    code, out = invoke("verify", str(node_dir))
    assert code == 0, out
    assert f"qpq stream {setup.stream}" in out and f"{ROUNDS} allocation(s), rounds 0..{ROUNDS - 1}" in out
    assert "1 QPQ allocation chain(s) verify" in out
    # The node's own reader (which knows the plan) agrees with the offline check.
    entries, problems = read_allocations(_file(node_dir, setup), setup, KEY.verify_key.encode().hex())
    assert problems == [] and len(entries) == ROUNDS


def test_verify_fails_on_a_changed_allocation(node_dir: Path, setup: QpqSetup) -> None:
    path = _file(node_dir, setup)
    lines = path.read_text().splitlines()
    data = json.loads(lines[7])
    data["winner"] = "p00" if data["winner"] != "p00" else "p01"
    lines[7] = json.dumps(data)
    path.write_text("\n".join(lines) + "\n")
    code, out = invoke("verify", str(node_dir))
    assert code == 1, out
    assert "round 7: signature does not verify" in out and "FAILED" in out
    code, out = invoke("show", str(node_dir))
    assert code == 1 and "DAMAGED" in out


def test_verify_fails_on_a_removed_round_even_if_every_line_is_signed(node_dir: Path, setup: QpqSetup) -> None:
    path = _file(node_dir, setup)
    lines = path.read_text().splitlines()
    del lines[3]
    path.write_text("\n".join(lines) + "\n")
    code, out = invoke("verify", str(node_dir))
    assert code == 1 and "entry 3 is for round 4" in out


def test_verify_fails_on_a_copy_signed_by_two_keys(node_dir: Path, setup: QpqSetup) -> None:
    path = _file(node_dir, setup)
    run = run_fast(setup, rounds=ROUNDS)
    lines = path.read_text().splitlines()
    lines[5] = _line(run.entries[5], OTHER)
    path.write_text("\n".join(lines) + "\n")
    code, out = invoke("verify", str(node_dir))
    assert code == 1 and "signed by 2 different keys" in out


def test_a_torn_last_line_is_a_note(node_dir: Path, setup: QpqSetup) -> None:
    path = _file(node_dir, setup)
    with path.open("a") as fh:
        fh.write('{"stream": "resou')
    code, out = invoke("verify", str(node_dir))
    assert code == 0, out
    assert "torn tail" in out


def test_show_json_and_tables_include_the_stream(node_dir: Path, setup: QpqSetup) -> None:
    code, out = invoke("show", str(node_dir), "--json")
    assert code == 0, out
    (stream,) = json.loads(out)["qpq"]
    assert stream["stream"] == setup.stream and stream["allocations"] == ROUNDS and stream["ok"] is True
    assert stream["signers"][0]["key"] == KEY.verify_key.encode().hex()
    assert [r["round"] for r in stream["rounds"]] == list(range(ROUNDS))
    code, out = invoke("show", str(node_dir))
    assert code == 0 and f"qpq stream {setup.stream}" in out and "showing the last 20" in out


def test_a_directory_of_allocation_files_only(node_dir: Path) -> None:
    code, out = invoke("verify", str(node_dir / "qpq"))
    assert code == 0 and "QPQ allocation chain(s) verify" in out


@pytest.mark.parametrize("garbage", ["[1, 2]\n", '{"round": true}\n', "\x00\x01\n", '{"stream": 1}\n',
                                     "[" * 5000 + "\n"])
def test_hostile_lines_are_problems_not_crashes(garbage: str) -> None:
    report = check_stream(garbage + garbage, "x.ndjson")
    assert not report.ok and report.problems[0].startswith("line 1: unreadable")


def test_verify_json(node_dir: Path, setup: QpqSetup) -> None:
    code, out = invoke("verify", str(node_dir), "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["ok"] is True and doc["auctions"] == [] and doc["issues"] == []
    (stream,) = doc["qpq"]
    assert stream["allocations"] == ROUNDS and "rounds" not in stream
    path = _file(node_dir, setup)
    path.write_text(path.read_text().replace('"round": 2,', '"round": 9,', 1))
    code, out = invoke("verify", str(node_dir), "--json")
    assert code == 1 and json.loads(out)["ok"] is False
