"""Durability by whose entry it is: replicas of others' entries are not fsync'd, our own are.

A replica is written to the page cache only and does not move the head file;
an entry the store's owner signed is fsync'd and named by the head before
``append``/``merge`` returns, together with every replica before it in the
file.  After an OS crash anything past the acknowledged head may have reached
the disk in any order; recovery cuts it (anti-entropy brings it back) instead
of freezing the chain as damaged.  A chain without a head file holds nothing
acknowledged once the directory is marked (``heads.HEADS_MARK``); before the
mark (a ledger from before head files) its records were all acknowledged.
The first five tests fail on the code before this rule (every merge fsync'd,
framing damage past the head frozen); the rest guard that the rule reaches
nothing that was acknowledged.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peer.ledger.cli import ledger_app
from peer.ledger.heads import HEADS_MARK, Head, head_path, read_head
from peer.ledger.records import chain_file_name, scan
from peer.ledger.store import LedgerStore

from ._helpers import PK, make_chain

CHAIN = make_chain("a1", hops=4)  # node0 announces; hop i sells node(i-1) -> node(i)
STRANGER = PK[9]  # signs nothing in CHAIN


def _file(ledger: Path) -> Path:
    return ledger / chain_file_name("a1")


def _synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the name of every file or directory fsync'd from now on."""
    names: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        names.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return names


def test_replicas_are_not_fsynced_and_do_not_move_the_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "ledger"
    with LedgerStore(ledger) as store:
        store.set_owner(STRANGER)
        synced = _synced(monkeypatch)
        assert store.merge(CHAIN.entries[:3]).accepted == list(CHAIN.entries[:3])
        assert synced == []
        assert store.chain("a1") == make_chain(hops=2)
        assert not head_path(_file(ledger)).exists()  # nothing acknowledged (a marked directory)
        assert store.verify_all().ok  # readers see the page cache


def test_an_entry_we_signed_is_durable_with_every_replica_before_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "ledger"
    with LedgerStore(ledger) as store:
        store.set_owner(PK[3])  # the buyer of hop 3
        store.merge(CHAIN.entries[:3])
        synced = _synced(monkeypatch)
        store.merge([CHAIN.hops[2]])  # our purchase, as it comes back by the ledger (guarded resale)
        # The chain file (its replicas too), its head, and the directory: the replica created
        # both files without making their names durable.
        assert synced == [_file(ledger).name, head_path(_file(ledger)).name, ledger.name]
        assert read_head(head_path(_file(ledger))) == Head(4, CHAIN.hops[2].digest)
        synced.clear()
        store.merge([CHAIN.hops[3]])  # node3 sells on: we signed it as seller, durable too
        assert synced == [_file(ledger).name, head_path(_file(ledger)).name]


def test_append_is_always_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "ledger"
    with LedgerStore(ledger) as store:
        store.merge(CHAIN.entries[:2])  # no owner: replicas
        synced = _synced(monkeypatch)
        assert store.append(CHAIN.hops[1])
        assert synced == [_file(ledger).name, head_path(_file(ledger)).name, ledger.name]
    assert read_head(head_path(_file(ledger))) == Head(3, CHAIN.hops[1].digest)


def test_opening_makes_replicas_durable_before_the_head_names_them(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A process crash keeps the page cache: the next open acknowledges what is there, fsync first."""
    ledger = tmp_path / "ledger"
    with LedgerStore(ledger) as store:
        store.merge(CHAIN.entries)
    synced = _synced(monkeypatch)
    with LedgerStore(ledger) as store:
        assert store.chain("a1") == CHAIN and not store.issues
    assert synced == [_file(ledger).name, head_path(_file(ledger)).name, ledger.name]
    assert read_head(head_path(_file(ledger))) == Head(CHAIN.length, CHAIN.head.digest)


def _zero_record(path: Path, index: int) -> bytes:
    """What a crash can leave of unsynced appends: record ``index`` never reached the disk (zeros),
    a later one did."""
    raw = bytearray(path.read_bytes())
    records = scan(bytes(raw)).records
    start = records[index][0]
    end = records[index + 1][0]
    raw[start:end] = bytes(end - start)
    path.write_bytes(bytes(raw))
    return bytes(raw)


@pytest.mark.parametrize(("owner", "keep"), [(STRANGER, 0), (PK[1], 3)])
def test_a_hole_past_the_head_is_cut_and_refetched(tmp_path: Path, owner: str, keep: int) -> None:
    ledger = tmp_path / "ledger"
    with LedgerStore(ledger) as store:
        store.set_owner(owner)  # PK[1] bought hop 1 and sold hop 2: entries 0..2 are durable
        store.merge(CHAIN.entries)
    assert (read_head(head_path(_file(ledger))) or Head(0, "")).count == keep
    _zero_record(_file(ledger), keep)  # the first record past the head is a hole, later ones are whole
    result = CliRunner().invoke(ledger_app, ["verify", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "past the acknowledged head" in result.output, result.output
    with LedgerStore(ledger) as store:
        chain = store.chain("a1")
        assert (chain.length if chain else 0) == keep and not store.lost()
        assert not store.is_damaged("a1") and store.verify_all().ok
        store.merge(CHAIN.entries)  # anti-entropy
        assert store.chain("a1") == CHAIN and store.verify_all().ok


def test_a_hole_in_an_acknowledged_prefix_is_still_damage(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    with LedgerStore(ledger) as store:
        store.set_owner(PK[3])
        store.merge(CHAIN.entries)  # hops 3 and 4 are ours: everything is acknowledged
    raw = _zero_record(_file(ledger), 1)
    with LedgerStore(ledger) as store:
        assert store.is_damaged("a1") and not store.is_lost("a1")
    assert _file(ledger).read_bytes() == raw  # never cut


def _ledger_from_before_head_files(tmp_path: Path) -> Path:
    """CHAIN appended, then its head file and the directory's mark removed, as an old ledger has them."""
    ledger = tmp_path / "ledger"
    with LedgerStore(ledger) as store:
        for entry in CHAIN.entries:
            store.append(entry)
    os.remove(head_path(_file(ledger)))
    os.remove(ledger / HEADS_MARK)
    return ledger


def test_a_hole_in_a_ledger_from_before_head_files_is_still_damage(tmp_path: Path) -> None:
    """No head file at all: every record was acknowledged under the old rules."""
    ledger = _ledger_from_before_head_files(tmp_path)
    raw = _zero_record(_file(ledger), 1)
    with LedgerStore(ledger) as store:
        assert store.is_damaged("a1")
    assert _file(ledger).read_bytes() == raw


def test_the_first_writable_open_marks_the_directory_once_every_chain_has_a_head(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    with LedgerStore(ledger) as store:
        for entry in CHAIN.entries:
            store.append(entry)
    assert (ledger / HEADS_MARK).exists()
    os.remove(head_path(_file(ledger)))
    os.remove(ledger / HEADS_MARK)  # a ledger from before head files
    with LedgerStore(ledger, read_only=True) as ro:
        assert ro.chain("a1") == CHAIN
    assert not (ledger / HEADS_MARK).exists()  # a reader changes nothing
    with LedgerStore(ledger) as store:
        assert store.chain("a1") == CHAIN and not store.issues
    assert read_head(head_path(_file(ledger))) == Head(CHAIN.length, CHAIN.head.digest)
    assert (ledger / HEADS_MARK).exists()


def test_a_damaged_chain_without_a_head_keeps_the_directory_unmarked(tmp_path: Path) -> None:
    """Its records were acknowledged under the old rules: the mark would make its damage a cut tail."""
    ledger = _ledger_from_before_head_files(tmp_path)
    raw = _zero_record(_file(ledger), 1)
    for _ in range(2):
        with LedgerStore(ledger) as store:
            assert store.is_damaged("a1")
        assert not (ledger / HEADS_MARK).exists() and _file(ledger).read_bytes() == raw


def test_may_sync_says_when_a_merge_may_wait_on_the_disk(tmp_path: Path) -> None:
    """The node merges in its loop only what cannot fsync: replicas of chains it expects."""
    from peer.ledger.admission import AdmissionPolicy

    with LedgerStore(tmp_path / "ledger") as store:
        store.set_owner(PK[2])
        assert not store.may_sync(CHAIN.entries[:2])  # replicas
        assert store.may_sync(CHAIN.entries[2:3])  # hop 2: we bought it
        assert store.may_sync(CHAIN.entries[3:4])  # hop 3: we sold it
        store.set_admission(AdmissionPolicy())
        neighbour = PK[8]
        # A neighbour's answer with a started chain we do not hold may vouch for it: saved with fsync.
        assert store.may_sync([CHAIN.announcement, CHAIN.hops[0]], vouched_by=neighbour)
        assert not store.may_sync([CHAIN.announcement, CHAIN.hops[0]])  # the live flood never vouches
        store.admit("a1")
        store.merge(CHAIN.entries[:2])
        assert store.chain("a1") is not None
        assert not store.may_sync([CHAIN.hops[3]], vouched_by=neighbour)  # a chain we hold: nothing to vouch
        store.set_owner(None)
        assert not store.may_sync(CHAIN.entries)
