"""``ledger show`` and ``ledger verify`` on a node's data directory, offline."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peer.ledger.cli import ledger_app
from peer.ledger.entries import Announcement
from peer.ledger.records import HEADER, chain_file_name, scan
from peer.ledger.store import FraudDetected, LedgerStore

from peer.net.identity import short_name

from ._helpers import KEYS, NAMES, PK, countersign, make_chain, snapshot

CHAIN = make_chain("a1", hops=3, prices=[1_500_000, 2_000_000, 2_250_000])
OTHER = make_chain("b2", hops=1, seller=5)
runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(ledger_app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    with LedgerStore.open_data_dir(tmp_path) as store:
        for entry in (*CHAIN.entries, *OTHER.entries):
            store.append(entry)
        store.remember_names({k: v for k, v in NAMES.items() if v != "node6"})
    return tmp_path


def test_show_lists_every_hop_with_names_prices_and_signatures(data_dir: Path) -> None:
    before = snapshot(data_dir / "ledger")
    code, out = _run("show", str(data_dir))
    assert code == 0, out
    assert "auction a1" in out and "auction b2" in out and "'lamp'" in out
    for name in ("node0", "node1", "node2", "node3", "node5"):
        assert name in out
    assert short_name(bytes.fromhex(PK[6])) in out  # no name known: the short name the node's views use
    assert "1.5" in out and "2.25" in out  # minor units shown as exact amounts
    assert CHAIN.hops[2].hash[:16] in out
    assert out.count("seller ✓ buyer ✓") == 4
    assert "FRAUD" not in out
    assert snapshot(data_dir / "ledger") == before  # offline tools change nothing


def test_show_highlights_fraud_proofs(data_dir: Path) -> None:
    twin = countersign(dataclasses.replace(CHAIN.hops[1].body, buyer=PK[9], price=2_100_000))
    with LedgerStore.open_data_dir(data_dir) as store, pytest.raises(FraudDetected):
        store.append(twin)
    code, out = _run("show", str(data_dir))
    assert code == 0, out
    assert "FRAUD PROOFS" in out and "FRAUD PROOF" in out.split("FRAUD PROOFS")[0]
    (row,) = [line for line in out.splitlines() if "a1" in line and "node1" in line and "vs" in line]
    assert "buyer: node2 vs node9" in row and "price: 2 vs 2.1" in row
    code, out = _run("verify", str(data_dir))
    assert code == 0 and "1 fraud proof(s)" in out


def test_show_with_a_names_file(data_dir: Path, tmp_path: Path) -> None:
    names = tmp_path / "names.json"
    names.write_text(json.dumps({PK[6]: "frank"}))
    code, out = _run("show", str(data_dir), "--names", str(names))
    assert code == 0 and "frank" in out
    names.write_text("[1, 2]")
    assert _run("show", str(data_dir), "--names", str(names))[0] == 2


def test_verify_ok_and_accepts_the_ledger_directory_itself(data_dir: Path) -> None:
    code, out = _run("verify", str(data_dir))
    assert code == 0 and "2 auction(s), 6 entries" in out and "ok:" in out
    assert _run("verify", str(data_dir / "ledger"))[0] == 0


def test_verify_reports_damage_with_exit_1(data_dir: Path) -> None:
    path = data_dir / "ledger" / chain_file_name("a1")
    offset = scan(path.read_bytes()).records[1][0]
    raw = bytearray(path.read_bytes())
    raw[offset + HEADER.size + 3] ^= 1
    path.write_bytes(bytes(raw))
    code, out = _run("verify", str(data_dir))
    assert code == 1
    assert f"ERROR: {path.name} at offset {offset}" in out and "FAILED" in out
    code, out = _run("show", str(data_dir))
    assert code == 1 and "DAMAGED" in out  # a damaged ledger is not shown as if all were well (it exited 0)
    code, out = _run("show", str(data_dir), "--json")
    assert code == 1 and json.loads(out)["ok"] is False


def test_verify_notes_a_torn_tail_without_failing_or_truncating(data_dir: Path) -> None:
    path = data_dir / "ledger" / chain_file_name("b2")
    with open(path, "ab") as fh:
        fh.write(b"\x00\x00\x01")
    code, out = _run("verify", str(data_dir))
    assert code == 0 and "note:" in out and "would truncate 3 bytes" in out
    assert path.read_bytes().endswith(b"\x00\x00\x01")


def test_unreadable_directories_exit_2(tmp_path: Path) -> None:
    assert _run("verify", str(tmp_path / "missing"))[0] == 2
    (tmp_path / "file").write_text("x")
    assert _run("verify", str(tmp_path / "file"))[0] == 2
    code, out = _run("show", str(tmp_path))  # a directory with no ledger in it
    assert code == 2 and "no ledger directory" in out


def test_empty_ledger(tmp_path: Path) -> None:
    LedgerStore.open_data_dir(tmp_path).close()
    code, out = _run("verify", str(tmp_path))
    assert code == 0 and "0 auction(s)" in out
    assert "no auctions" in _run("show", str(tmp_path))[1]


def test_show_prints_hostile_text_literally(tmp_path: Path) -> None:
    ann = Announcement.create(KEYS[0], auction="[/bold]x", item="[red]lamp", created_at_ms=2**63 - 1)
    with LedgerStore.open_data_dir(tmp_path) as store:
        store.append(ann)
        store.remember_names({PK[0]: "[blink]eve"})
    code, out = _run("show", str(tmp_path))
    assert code == 0, out
    assert "[/bold]x" in out and "[red]lamp" in out and "[blink]eve" in out


# ----------------------------------------------------------------------------- show --json


def test_show_json_has_every_hop_with_names_exact_prices_and_signatures(data_dir: Path) -> None:
    code, out = _run("show", str(data_dir), "--json")
    assert code == 0, out
    doc = json.loads(out, parse_float=Decimal)
    assert doc["ok"] is True and doc["issues"] == [] and doc["fraud_proofs"] == [] and doc["qpq"] == []
    a1, b2 = doc["auctions"]
    assert a1["auction"] == "a1" and a1["item"] == "lamp" and a1["seller"] == {"key": PK[0], "name": "node0"}
    assert [h["price"] for h in a1["hops"]] == [Decimal("1.5"), 2, Decimal("2.25")]  # whole units, exact
    assert [h["buyer"]["name"] for h in a1["hops"]] == ["node1", "node2", "node3"]
    assert all(h["seller_signature_ok"] and h["buyer_signature_ok"] for h in a1["hops"])
    assert a1["hops"][2]["hash"] == CHAIN.hops[2].hash
    assert b2["hops"][0]["buyer"] == {"key": PK[6], "name": short_name(bytes.fromhex(PK[6]))}


def test_show_json_lists_fraud_proofs_with_culprits(data_dir: Path) -> None:
    twin = countersign(dataclasses.replace(CHAIN.hops[1].body, buyer=PK[9], price=2_100_000))
    with LedgerStore.open_data_dir(data_dir) as store, pytest.raises(FraudDetected):
        store.append(twin)
    code, out = _run("show", str(data_dir), "--json")
    assert code == 0, out  # a fraud proof is evidence kept, not damage
    doc = json.loads(out)
    (proof,) = doc["fraud_proofs"]
    assert proof["auction"] == "a1" and proof["position"] == 2
    assert {"key": PK[1], "name": "node1"} in proof["culprits"]
    assert doc["auctions"][0]["hops"][1]["fraud"] is True


def test_show_json_on_an_unreadable_directory_exits_2_with_one_line_on_stderr(tmp_path: Path) -> None:
    result = CliRunner().invoke(ledger_app, ["show", str(tmp_path / "missing"), "--json"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: cannot read a ledger") and len(result.stderr.splitlines()) == 1


def test_short_help_option(data_dir: Path) -> None:
    for command in ("show", "verify"):
        result = runner.invoke(ledger_app, [command, "-h"])
        assert result.exit_code == 0 and "Usage:" in result.output and "DATA_DIR" in result.output


def test_verify_json(data_dir: Path) -> None:
    code, out = _run("verify", str(data_dir), "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["ok"] is True and [a["entries"] for a in doc["auctions"]] == [4, 2]
    assert doc["fraud_proofs"] == 0 and doc["qpq"] == []
