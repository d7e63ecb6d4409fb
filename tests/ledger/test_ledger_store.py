"""The on-disk store: round trip, durability order, recovery, damage, fraud proofs."""

from __future__ import annotations

import dataclasses
import errno
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer.ledger.codec import encode_record
from peer.ledger.entries import InvalidEntry
from peer.ledger.records import FRAUD_FILE, HEADER, chain_file_name, frame, scan
from peer.ledger.store import FraudDetected, IntegrityError, LedgerStore, StoreError

from ._helpers import PK, countersign, make_chain, snapshot

CHAIN = make_chain("a1", hops=3)
OTHER = make_chain("b2", hops=2, seller=4)


def _fill(path: Path, *chains: object) -> None:
    with LedgerStore(path) as store:
        for chain in chains:
            for entry in chain.entries:  # type: ignore[attr-defined]
                assert store.append(entry)


def _file(path: Path, auction: str = "a1") -> Path:
    return path / chain_file_name(auction)


def test_round_trip(tmp_path: Path) -> None:
    _fill(tmp_path, CHAIN, OTHER)
    with LedgerStore(tmp_path) as store:
        assert store.chains() == [CHAIN, OTHER]
        assert store.chain("a1") == CHAIN and store.chain("zz") is None
        report = store.verify_all()
        assert report.ok and [a.entries for a in report.auctions] == [4, 3]
        assert store.append(CHAIN.hops[0]) is False  # the same entry again is a no-op
        assert store.append_announcement(CHAIN.announcement) is False


def test_open_data_dir_uses_the_ledger_subdirectory(tmp_path: Path) -> None:
    with LedgerStore.open_data_dir(tmp_path) as store:
        store.append_announcement(CHAIN.announcement)
        store.append_hop(CHAIN.hops[0])
    assert _file(tmp_path / "ledger").exists()


def test_invalid_append_is_rejected_and_changes_nothing(tmp_path: Path) -> None:
    _fill(tmp_path, CHAIN)
    before = snapshot(tmp_path)
    with LedgerStore(tmp_path) as store:
        with pytest.raises(InvalidEntry, match="unknown auction"):
            store.append(OTHER.hops[0])
        with pytest.raises(InvalidEntry, match="buyer signature"):
            store.append(dataclasses.replace(countersign(CHAIN.next_body(PK[7], 900)), buyer_sig=bytes(64)))
        with pytest.raises(InvalidEntry, match="gap"):
            store.append(make_chain("a1", hops=5).hops[4])
        assert store.chain("a1") == CHAIN
    assert snapshot(tmp_path) == before


def test_fsync_happens_before_append_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_write, real_fsync = os.write, os.fsync
    with LedgerStore(tmp_path) as store:
        store.append(CHAIN.announcement)
        record = frame(encode_record(CHAIN.hops[0]))

        def write(fd: int, data: bytes) -> int:
            events.append("write")
            return real_write(fd, data)

        def fsync(fd: int) -> None:
            # At fsync time the whole record has been handed to the OS, and the
            # in-memory chain (what the caller may act on) has not moved yet.
            on_disk = _file(tmp_path).read_bytes()
            events.append("fsync" + ("+record" if on_disk.endswith(record) else ""))
            assert store.chain("a1") == make_chain(hops=0)
            real_fsync(fd)

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)
        assert store.append(CHAIN.hops[0])
        events.append("returned")
        assert store.chain("a1") == make_chain(hops=1)
    # the record first, then the head file that acknowledges it, then the return
    assert events == ["write", "fsync+record", "fsync+record", "returned"]


def test_new_file_also_fsyncs_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[bool] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.path.isdir(f"/proc/self/fd/{fd}")),
                                                 real_fsync(fd))[1])
    with LedgerStore(tmp_path) as store:  # a new directory: its heads mark, fsync'd with the directory
        store.append(CHAIN.announcement)  # creates the files: chain fsync, head fsync, then directory fsync
        store.append(CHAIN.hops[0])  # existing files: chain and head fsync only
    assert synced == [False, True, False, False, True, False, False]


def test_failed_fsync_undoes_the_write_and_refuses_more(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(tmp_path, make_chain(hops=1))
    size = _file(tmp_path).stat().st_size
    with LedgerStore(tmp_path) as store:
        def broken(fd: int) -> None:
            raise OSError(errno.EIO, "I/O error")

        with monkeypatch.context() as m:
            m.setattr(os, "fsync", broken)
            with pytest.raises(StoreError, match="write failed"):
                store.append(CHAIN.hops[1])
        assert store.chain("a1") == make_chain(hops=1)
        assert _file(tmp_path).stat().st_size == size
        with pytest.raises(StoreError, match="cannot persist"):  # until writable() has re-read the disk
            store.append(CHAIN.hops[1])
        assert not store.healthy
        assert store.writable() and store.healthy
        assert store.chain("a1") == make_chain(hops=1)
    with LedgerStore(tmp_path) as store:
        assert store.append(CHAIN.hops[1])
        assert store.verify_all().ok


def test_second_writer_is_locked_out_but_readers_are_not(tmp_path: Path) -> None:
    with LedgerStore(tmp_path):
        with pytest.raises(StoreError, match="in use"):
            LedgerStore(tmp_path)
        reader = LedgerStore(tmp_path, read_only=True)
        with pytest.raises(StoreError, match="read-only"):
            reader.append(CHAIN.announcement)
    with pytest.raises(StoreError, match="no ledger directory"):
        LedgerStore(tmp_path / "missing", read_only=True)


# ------------------------------------------------------------------ recovery


def _torn_variants() -> dict[str, bytes]:
    record = frame(encode_record(CHAIN.hops[2]))
    damaged = bytearray(record)
    damaged[-1] ^= 0xFF
    return {
        "partial header": record[:HEADER.size - 3],
        "partial body": record[:-10],
        "last record checksum fails": bytes(damaged),
        "zero-filled tail": record[:50] + bytes(200),
        "only zeros": bytes(HEADER.size + 7),
    }


@pytest.mark.parametrize("kind", list(_torn_variants()))
def test_torn_tail_is_truncated_and_the_rest_verifies(tmp_path: Path, kind: str) -> None:
    _fill(tmp_path, make_chain(hops=2), OTHER)
    good = _file(tmp_path).read_bytes()
    with open(_file(tmp_path), "ab") as fh:
        fh.write(_torn_variants()[kind])

    # A read-only open reports the tail and leaves the file alone.
    reader = LedgerStore(tmp_path, read_only=True)
    assert reader.chain("a1") == make_chain(hops=2)
    assert [i.reason for i in reader.issues] == [f"torn tail: would truncate {len(_torn_variants()[kind])} bytes"]
    assert reader.verify_all().ok
    assert _file(tmp_path).read_bytes() != good

    with LedgerStore(tmp_path) as store:
        assert _file(tmp_path).read_bytes() == good
        assert store.issues[0].torn and "truncated" in store.issues[0].reason
        report = store.verify_all()
        assert report.ok and "torn tail" in report.lines()[1]
        assert store.chains() == [make_chain(hops=2), OTHER]
        assert store.append(CHAIN.hops[2])  # appending after recovery works
    with LedgerStore(tmp_path) as store:
        assert store.chain("a1") == CHAIN and store.issues == []


def test_crash_while_creating_a_file_leaves_no_chain(tmp_path: Path) -> None:
    _file(tmp_path).write_bytes(frame(encode_record(CHAIN.announcement))[:20])
    with LedgerStore(tmp_path) as store:
        assert store.chains() == [] and store.verify_all().ok
        store.append(CHAIN.announcement)
        assert store.chain("a1") == make_chain(hops=0)


def _records(path: Path) -> list[int]:
    return [offset for offset, _ in scan(path.read_bytes()).records]


@pytest.mark.parametrize("where", ["body", "length", "checksum"])
def test_damage_in_the_middle_is_reported_not_dropped(tmp_path: Path, where: str) -> None:
    _fill(tmp_path, CHAIN, OTHER)
    path = _file(tmp_path)
    offsets = _records(path)
    raw = bytearray(path.read_bytes())
    at = {"body": offsets[2] + HEADER.size + 5, "length": offsets[2] + 1, "checksum": offsets[2] + 20}[where]
    raw[at] ^= 0x40
    path.write_bytes(bytes(raw))
    size = len(raw)

    with LedgerStore(tmp_path) as store:
        assert path.stat().st_size == size  # nothing truncated
        report = store.verify_all()
        assert not report.ok
        (status,) = [a for a in report.auctions if a.auction == "a1"]
        assert status.entries == 2 and status.problem and "integrity error" in status.problem
        assert any(f"offset {offsets[2]}" in line and "ERROR" in line for line in report.lines())
        assert store.chain("a1") == make_chain(hops=1)  # the verified prefix is still readable
        with pytest.raises(IntegrityError, match="damaged"):
            store.append(CHAIN.hops[2])
        store.append(countersign(OTHER.next_body(PK[9], 500)))  # other auctions go on


def test_a_valid_record_that_breaks_the_chain_is_an_integrity_error(tmp_path: Path) -> None:
    _fill(tmp_path, make_chain(hops=1))
    skipped = make_chain(hops=3).hops[2]  # checksums fine, but hop 3 after hop 1
    with open(_file(tmp_path), "ab") as fh:
        fh.write(frame(encode_record(skipped)))
    with LedgerStore(tmp_path) as store:
        (issue,) = store.issues
        assert not issue.torn and "cannot follow position 1" in issue.reason
        assert not store.verify_all().ok


def test_a_chain_file_in_the_wrong_place_is_reported(tmp_path: Path) -> None:
    _fill(tmp_path, CHAIN)
    _file(tmp_path).rename(_file(tmp_path, "zz"))
    with LedgerStore(tmp_path) as store:
        assert store.chains() == []
        report = store.verify_all()
        assert not report.ok
        problems = {a.file: a.problem for a in report.auctions}
        assert all(a.auction is None for a in report.auctions)
        assert "belongs in another file" in str(problems[_file(tmp_path, "zz").name])
        # ... and the head file left behind says the real chain file is gone: lost, not silently absent.
        assert "4 acknowledged entries missing" in str(problems[_file(tmp_path).name])


# -------------------------------------------------------------- fraud proofs


def test_conflicting_append_keeps_a_fraud_proof_and_never_overwrites(tmp_path: Path) -> None:
    _fill(tmp_path, CHAIN)
    chain_bytes = _file(tmp_path).read_bytes()
    twin = countersign(dataclasses.replace(CHAIN.hops[1].body, buyer=PK[9], price=250))
    with LedgerStore(tmp_path) as store:
        with pytest.raises(FraudDetected) as info:
            store.append(twin)
        assert info.value.proof.first == CHAIN.hops[1] and info.value.proof.second == twin
        with pytest.raises(FraudDetected):
            store.append(twin)  # reported again, stored once
    assert _file(tmp_path).read_bytes() == chain_bytes
    with LedgerStore(tmp_path) as store:
        assert store.chain("a1") == CHAIN
        (proof,) = store.fraud_proofs()
        assert proof.second == twin and store.verify_all().fraud_proofs == 1


def test_damaged_fraud_log_is_reported(tmp_path: Path) -> None:
    _fill(tmp_path, CHAIN)
    not_a_proof = frame(encode_record(CHAIN.hops[0]))
    (tmp_path / FRAUD_FILE).write_bytes(not_a_proof + not_a_proof)
    with LedgerStore(tmp_path) as store:
        assert not store.verify_all().ok
        assert any("only fraud proofs" in i.reason for i in store.issues)


def test_remember_names(tmp_path: Path) -> None:
    with LedgerStore(tmp_path) as store:
        store.remember_names({PK[0]: "alice"})
        store.remember_names({PK[1]: "bob"})
        assert store.names() == {PK[0]: "alice", PK[1]: "bob"}


# ------------------------------------------------- properties of the framing

LOG = [frame(encode_record(e)) for e in (*CHAIN.entries, *make_chain("a1", hops=6).hops[3:])]
ENDS = [sum(len(r) for r in LOG[: i + 1]) for i in range(len(LOG))]
PROPERTY = settings(max_examples=200, deadline=None)


@PROPERTY
@given(cut=st.integers(0, ENDS[-1]), zeros=st.integers(0, 300))
def test_any_crash_prefix_recovers_without_damage(cut: int, zeros: int) -> None:
    # What a crash can leave: a prefix of what was written, maybe zero-extended.
    data = b"".join(LOG)[:cut] + bytes(zeros)
    result = scan(data)
    complete = sum(1 for end in ENDS if end <= cut)
    assert result.damage is None
    assert [body for _, body in result.records] == [r[HEADER.size:] for r in LOG[:complete]]
    assert result.good_end + result.torn == len(data)


@PROPERTY
@given(at=st.integers(0, ENDS[-2] - 1), flip=st.integers(1, 255))
def test_any_damaged_byte_before_the_last_record_is_damage(at: int, flip: int) -> None:
    raw = bytearray(b"".join(LOG))
    raw[at] ^= flip
    result = scan(bytes(raw))
    hit = next(i for i, end in enumerate(ENDS) if at < end)
    assert result.damage is not None and f"offset {result.good_end}" in result.damage
    assert len(result.records) == hit and result.torn == 0
