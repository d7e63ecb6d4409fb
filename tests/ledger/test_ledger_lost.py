"""#15.9: acknowledged entries that go missing are reported as lost, never cut, and come back by merge.

Before head files, cutting a chain file at a record boundary left a shorter
chain that verified ("ok"), and a flipped byte in the last record (a
countersigned, acknowledged hop) was reported as a torn tail, verify exited 0,
and the next writable open truncated it.  Each test below fails on that code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peer.ledger.cli import ledger_app
from peer.ledger.heads import Head, head_path, read_head, write_head
from peer.ledger.records import HEADER, LOST_SUFFIX, chain_file_name, scan
from peer.ledger.store import LedgerStore

from ._helpers import make_chain

CHAIN = make_chain("a1", hops=3)
OTHER = make_chain("b2", hops=2, seller=4)


def _fill(path: Path) -> None:
    with LedgerStore(path) as store:
        for entry in (*CHAIN.entries, *OTHER.entries):
            assert store.append(entry)


def _file(path: Path) -> Path:
    return path / chain_file_name("a1")


def _boundaries(path: Path) -> list[int]:
    return [offset for offset, _ in scan(_file(path).read_bytes()).records]


def _verify_cli(data_dir: Path) -> tuple[int, str]:
    result = CliRunner().invoke(ledger_app, ["verify", str(data_dir)], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def _recover(store: LedgerStore) -> None:
    """What anti-entropy does: a peer's copy of the chain, merged."""
    result = store.merge(CHAIN.entries)
    assert not result.rejected and not result.fraud_proofs


@pytest.mark.parametrize("keep", range(len(CHAIN.entries)))
def test_cut_at_every_record_boundary_is_lost_and_recovered(tmp_path: Path, keep: int) -> None:
    ledger = tmp_path / "ledger"
    _fill(ledger)
    cut = _boundaries(ledger)[keep]  # keep `keep` whole records, drop the rest
    with open(_file(ledger), "r+b") as fh:
        fh.truncate(cut)
    before = _file(ledger).read_bytes()

    code, out = _verify_cli(tmp_path)
    assert code == 1 and "LOST" in out and f"{len(CHAIN.entries) - keep} acknowledged entr" in out, out
    with LedgerStore(ledger, read_only=True) as ro:
        report = ro.verify_all()
        assert not report.ok and len(report.lost) == 1 and report.lost[0].file == _file(ledger).name

    with LedgerStore(ledger) as store:
        assert _file(ledger).read_bytes() == before  # nothing cut, nothing rewritten
        assert store.is_lost("a1") and [lost.have for lost in store.lost()] == [keep]
        assert not store.verify_all().ok
        _recover(store)
        assert not store.is_lost("a1") and store.chain("a1") == CHAIN
        assert store.verify_all().ok
    assert _verify_cli(tmp_path)[0] == 0
    assert read_head(head_path(_file(ledger))) == Head(CHAIN.length, CHAIN.head.digest)


@pytest.mark.parametrize("where", ["header", "digest", "body", "last"])
def test_a_flipped_byte_in_the_last_record_is_lost_not_torn(tmp_path: Path, where: str) -> None:
    ledger = tmp_path / "ledger"
    _fill(ledger)
    last = _boundaries(ledger)[-1]
    raw = bytearray(_file(ledger).read_bytes())
    at = {"header": last + 2, "digest": last + 10, "body": last + HEADER.size + 5, "last": len(raw) - 1}[where]
    raw[at] ^= 0x40
    _file(ledger).write_bytes(bytes(raw))

    code, out = _verify_cli(tmp_path)
    assert code != 0, out
    assert "torn" not in out
    with LedgerStore(ledger) as store:
        assert store.is_lost("a1") and not store.is_damaged("a1")
        kept = _file(ledger).with_name(_file(ledger).name + LOST_SUFFIX)
        assert kept.read_bytes() == bytes(raw[last:])  # set aside, not dropped
        _recover(store)
        assert store.chain("a1") == CHAIN and store.verify_all().ok
    assert _verify_cli(tmp_path)[0] == 0


def test_lost_survives_a_crash_during_recovery(tmp_path: Path) -> None:
    """While recovering, the head file keeps naming what was acknowledged."""
    ledger = tmp_path / "ledger"
    _fill(ledger)
    with open(_file(ledger), "r+b") as fh:
        fh.truncate(_boundaries(ledger)[1])
    with LedgerStore(ledger) as store:
        store.merge(CHAIN.entries[:2])  # one entry back, the rest still missing ("crash" here)
        assert store.is_lost("a1")
    with LedgerStore(ledger) as store:
        assert store.is_lost("a1") and store.lost()[0].have == 2
        _recover(store)
        assert store.verify_all().ok


def test_a_whole_chain_file_removed_is_lost_and_recovered(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    _fill(ledger)
    _file(ledger).unlink()
    assert _verify_cli(tmp_path)[0] == 1
    with LedgerStore(ledger) as store:
        assert store.chain("a1") is None and store.is_lost("a1")
        _recover(store)
        assert store.chain("a1") == CHAIN and store.verify_all().ok


def test_a_never_acknowledged_torn_append_is_still_a_torn_tail(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    _fill(ledger)
    whole = _file(ledger).read_bytes()
    last = _boundaries(ledger)[-1]
    # The head names 3 entries: the 4th was being appended when the node crashed.
    os.remove(head_path(_file(ledger)))
    write_head(head_path(_file(ledger)), Head(3, CHAIN.at(2).digest))  # type: ignore[union-attr]
    _file(ledger).write_bytes(whole[:last + 30])
    code, out = _verify_cli(tmp_path)
    assert code == 0 and "torn tail" in out, out
    with LedgerStore(ledger) as store:
        assert _file(ledger).read_bytes() == whole[:last]
        assert not store.lost() and store.chain("a1").length == 3  # type: ignore[union-attr]


def test_a_record_made_durable_just_before_a_crash_is_kept(tmp_path: Path) -> None:
    """Crash after the record's fsync, before the head's: the entry is whole and verifies."""
    ledger = tmp_path / "ledger"
    _fill(ledger)
    os.remove(head_path(_file(ledger)))
    write_head(head_path(_file(ledger)), Head(3, CHAIN.at(2).digest))  # type: ignore[union-attr]
    with LedgerStore(ledger) as store:
        assert store.chain("a1") == CHAIN and not store.issues
    assert read_head(head_path(_file(ledger))) == Head(4, CHAIN.head.digest)


def test_a_ledger_written_before_head_files_gets_them_on_open(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    _fill(ledger)
    for name in (chain_file_name("a1"), chain_file_name("b2")):
        os.remove(head_path(ledger / name))
    with LedgerStore(ledger) as store:
        assert store.verify_all().ok
    assert read_head(head_path(_file(ledger))) == Head(4, CHAIN.head.digest)


def test_a_torn_head_slot_falls_back_to_the_other(tmp_path: Path) -> None:
    path = tmp_path / "x.head"
    write_head(path, Head(3, "ab" * 32))
    write_head(path, Head(4, "cd" * 32))
    raw = bytearray(path.read_bytes())
    raw[4] ^= 1  # slot 0 (count 4) torn
    path.write_bytes(bytes(raw))
    assert read_head(path) == Head(3, "ab" * 32)


def test_mid_file_damage_stays_damage_and_keeps_its_head(tmp_path: Path) -> None:
    """Damage followed by more records needs an operator: frozen, and the head is not rewritten."""
    ledger = tmp_path / "ledger"
    _fill(ledger)
    head_before = head_path(_file(ledger)).read_bytes()
    second = _boundaries(ledger)[1]
    raw = bytearray(_file(ledger).read_bytes())
    raw[second + HEADER.size + 3] ^= 1
    _file(ledger).write_bytes(bytes(raw))
    with LedgerStore(ledger) as store:
        assert store.is_damaged("a1") and not store.is_lost("a1")
        assert store.merge(CHAIN.entries).accepted == []
    assert head_path(_file(ledger)).read_bytes() == head_before
    assert _file(ledger).read_bytes() == bytes(raw)
    assert _verify_cli(tmp_path)[0] == 1
