"""#15.4 (store side): a full disk or a read-only data dir gives a precise error, never half-written state.

Before: the append raised a bare ``StoreError`` that the node did not expect,
a read-only directory could not be opened at all, and nothing said when the
disk could be written again.  Now the errors carry the errno
(``StoreUnavailable``, ``DiskFull``), nothing is acknowledged that is not
durable, and ``healthy`` / ``writable()`` let the node decline and come back.
Root ignores file modes, so the disk is simulated by monkeypatching the
``os`` calls the store makes (the chmod test runs only as a normal user).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from peer.ledger.heads import Head, head_path, read_head
from peer.ledger.records import chain_file_name
from peer.ledger.store import DiskFull, LedgerStore, StoreError, StoreUnavailable

from ._helpers import make_chain, snapshot

CHAIN = make_chain("a1", hops=3)


def _fill(path: Path, upto: int) -> None:
    with LedgerStore(path) as store:
        for entry in CHAIN.entries[:upto]:
            assert store.append(entry)


def _file(path: Path) -> Path:
    return path / chain_file_name("a1")


def _raise(code: int) -> Any:
    def fail(*args: object, **kwargs: object) -> Any:
        raise OSError(code, os.strerror(code))
    return fail


def test_disk_full_on_write_is_disk_full_and_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(tmp_path, 2)
    with LedgerStore(tmp_path) as store:
        before = snapshot(tmp_path)
        real_write = os.write
        calls = []

        def half_then_full(fd: int, data: bytes) -> int:  # the disk fills up in the middle of the record
            calls.append(len(data))
            if len(calls) == 1:
                return real_write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        with monkeypatch.context() as m:
            m.setattr(os, "write", half_then_full)
            with pytest.raises(DiskFull) as info:
                store.append(CHAIN.hops[1])
            assert info.value.errno == errno.ENOSPC and "ENOSPC" in str(info.value)
            assert isinstance(info.value, StoreUnavailable) and isinstance(info.value, StoreError)
            assert snapshot(tmp_path) == before  # the half record was cut off again
            assert store.chain("a1") == CHAIN.__class__(CHAIN.announcement, CHAIN.hops[:1])
            assert not store.healthy
            assert not store.writable()  # the probe hits the full disk too
            with pytest.raises(DiskFull):  # refused without touching the disk
                store.append(CHAIN.hops[1])
        assert store.writable() and store.healthy  # space came back
        assert store.append(CHAIN.hops[1])
    with LedgerStore(tmp_path) as store:
        assert store.chain("a1").length == 3 and not store.issues  # type: ignore[union-attr]


def test_a_failed_head_write_cuts_the_record_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record reached the disk but its acknowledgement (the head) did not: not acknowledged."""
    _fill(tmp_path, 2)
    with LedgerStore(tmp_path) as store:
        before = snapshot(tmp_path)
        with monkeypatch.context() as m:
            m.setattr(os, "pwrite", _raise(errno.ENOSPC))
            with pytest.raises(DiskFull):
                store.append(CHAIN.hops[1])
        assert snapshot(tmp_path) == before
        assert store.chain("a1").length == 2  # type: ignore[union-attr]
    assert read_head(head_path(_file(tmp_path))) == Head(2, CHAIN.hops[0].digest)
    with LedgerStore(tmp_path) as store:
        assert store.chain("a1").length == 2 and not store.issues  # type: ignore[union-attr]


def test_a_failed_fsync_is_unavailable_with_its_errno(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(tmp_path, 1)
    with LedgerStore(tmp_path) as store:
        with monkeypatch.context() as m:
            m.setattr(os, "fsync", _raise(errno.EIO))
            with pytest.raises(StoreUnavailable) as info:
                store.append(CHAIN.hops[0])
            assert info.value.errno == errno.EIO and not isinstance(info.value, DiskFull)
        assert store.writable()
        assert store.append(CHAIN.hops[0])


def test_a_read_only_data_dir_opens_for_reading_and_refuses_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fill(tmp_path, 2)
    before = snapshot(tmp_path)
    real_open = os.open
    root = str(tmp_path)

    def read_only_fs(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).startswith(root) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only_fs)
    store = LedgerStore(tmp_path)  # used to raise StoreError: the node could not even start
    try:
        assert store.chain("a1").length == 2  # type: ignore[union-attr]
        assert not store.healthy and not store.writable()
        assert store.failure is not None and store.failure.errno == errno.EROFS
        with pytest.raises(StoreUnavailable) as info:
            store.append(CHAIN.hops[1])
        assert info.value.errno == errno.EROFS
        assert snapshot(tmp_path) == before
        monkeypatch.setattr(os, "open", real_open)  # remounted read-write
        assert store.writable() and store.healthy
        assert store.append(CHAIN.hops[1])
        with pytest.raises(StoreError, match="in use"):  # writable() took the lock
            LedgerStore(tmp_path)
    finally:
        store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes")
def test_a_chmod_read_only_dir(tmp_path: Path) -> None:
    _fill(tmp_path, 2)
    (tmp_path / ".lock").unlink()
    os.chmod(tmp_path, 0o555)
    try:
        with LedgerStore(tmp_path) as store:
            assert not store.writable()
            with pytest.raises(StoreUnavailable):
                store.append(CHAIN.hops[1])
    finally:
        os.chmod(tmp_path, 0o755)


def test_a_closed_store_is_not_writable_and_does_not_lock_again(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path)
    store.close()
    assert not store.writable() and not store.healthy
    with LedgerStore(tmp_path) as other:  # the lock is free
        assert other.healthy
