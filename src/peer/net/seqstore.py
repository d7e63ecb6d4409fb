"""A per-origin gossip sequence counter that survives restarts.

Receivers treat ``(origin, seq)`` as a message id, so an origin that restarts
and reuses a sequence number gets its new messages silently dropped as
duplicates (py-libp2p's time-seeded counter can do this; SSB forks came from
re-posting with a wiped database).  So the counter is persisted *before* a
number is used, in leases: the file records the highest number reserved, a
restart resumes above it, and only one write per ``lease`` numbers is needed.

Each write is write-temp, fsync, rename, fsync the directory: the file always
holds either the old or the new reservation, never a torn one.  A file that does
not parse is an error, never silently reset to zero (that would reuse numbers).
This module does blocking file I/O but no networking; with the default lease a
node writes once per 64 publishes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from peer.errors import PeerError

MAX_SEQ = 2**63 - 1  # the codec's limit for gossip seq


class SeqFileError(PeerError):
    """The sequence file is unreadable or corrupt; refuse to guess a number."""


class SeqCounter(Protocol):
    def next(self) -> int:
        """A number strictly greater than every number returned before (also across restarts)."""
        ...


class MemorySeqCounter:
    """A non-persistent counter for tests and simulations."""

    def __init__(self, start: int = 0) -> None:
        self.last = start

    def next(self) -> int:
        self.last += 1
        return self.last


class SeqFile:
    """A :class:`SeqCounter` backed by a small text file (one decimal number)."""

    def __init__(self, path: str | os.PathLike[str], *, lease: int = 64) -> None:
        if lease < 1:
            raise ValueError("lease must be at least 1")
        self.path = Path(path)
        self.lease = lease
        self.reserved = self._read()
        self.last = self.reserved  # everything up to `reserved` may have been used before

    def _read(self) -> int:
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as exc:
            raise SeqFileError(f"{self.path}: cannot read sequence file: {exc}") from None
        try:
            value = int(text.strip())
        except ValueError:
            raise SeqFileError(f"{self.path}: sequence file is corrupt: {text[:40]!r}") from None
        if not 0 <= value <= MAX_SEQ:
            raise SeqFileError(f"{self.path}: sequence {value} out of range")
        return value

    def next(self) -> int:
        seq = self.last + 1
        if seq > MAX_SEQ:
            raise SeqFileError(f"{self.path}: sequence numbers exhausted")
        if seq > self.reserved:
            self._write(min(self.last + self.lease, MAX_SEQ))
        self.last = seq
        return seq

    def _write(self, reserved: int) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, f"{reserved}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        self.reserved = reserved


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is; not every platform
    # lets you open a directory, and there is nothing better to do if it fails.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
