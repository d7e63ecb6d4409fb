"""Per-chain head files: what the node has acknowledged, kept apart from the chain itself.

A chain file alone cannot tell a torn tail (a record whose append never
returned, so nobody was told it exists) from an acknowledged record that was
later cut off or damaged: cut the file at a record boundary and what remains is
a perfectly good, shorter chain; flip a byte in the last record and it looks
exactly like a crash mid-append.  So after each record is durable the store
writes, and fsyncs, the chain's head file: the number of entries acknowledged
and the digest of the last one.  On open, a chain file holding fewer verified
entries than its head names, or a different entry at that position, has *lost*
acknowledged entries: reported as such, never cut, and recoverable from peers
by anti-entropy (see ``docs/ledger.md``).

Layout: two 48-byte slots, entry counts alternating between them (count % 2),
each ``u64 count || 32-byte digest || u32 crc32(count || digest) || 4 zero
bytes``.  A write touches one slot with one ``pwrite`` and one ``fsync``, so a
crash mid-write can tear only the slot being written and the other still holds
the previous head; the reader takes the valid slot with the higher count.

In a ledger directory that holds ``HEADS_MARK`` (written by the first writable
open that gave every chain its head file), a chain without a head file, or
without a valid slot, has nothing acknowledged (count 0): replicas of others'
entries create chain files without one (``store.py``, durability by whose entry
it is).  Without the mark, a chain without a head file was written before head
files existed, and every record in it was acknowledged.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

HEAD_SUFFIX = ".head"
_SLOT = struct.Struct(">Q32sI4x")
HEADS_MARK = ".heads"  # in a ledger directory: every acknowledged chain has its head file
NOTHING_DIGEST = "00" * 32  # the digest of a count-0 head (nothing acknowledged)


@dataclass(frozen=True, slots=True)
class Head:
    """``count`` entries acknowledged (the announcement included), the last with digest ``digest``.

    Count 0: none yet (digest ``NOTHING_DIGEST``)."""

    count: int
    digest: str


def head_path(chain_path: Path) -> Path:
    return chain_path.with_suffix(HEAD_SUFFIX)


def _slot(count: int, digest: str) -> bytes:
    body = count.to_bytes(8, "big") + bytes.fromhex(digest)
    return _SLOT.pack(count, bytes.fromhex(digest), zlib.crc32(body))


def read_head(path: Path) -> Head | None:
    """The acknowledged head in ``path``; None if there is no file or no valid slot in it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    best: Head | None = None
    for i in range(2):
        raw = data[i * _SLOT.size:(i + 1) * _SLOT.size]
        if len(raw) != _SLOT.size:
            continue
        count, digest, crc = _SLOT.unpack(raw)
        if count < 1 or crc != zlib.crc32(count.to_bytes(8, "big") + digest) or count % 2 != i:
            continue
        if best is None or count > best.count:
            best = Head(count, digest.hex())
    return best


def write_head(path: Path, head: Head) -> bool:
    """Persist ``head`` durably (one pwrite + fsync).  Returns True if the file was created.

    Raises ``OSError``; the caller decides what that means for the record it follows.
    """
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        slot = _slot(head.count, head.digest)
        offset = (head.count % 2) * _SLOT.size
        if os.pwrite(fd, slot, offset) != len(slot):
            raise OSError(28, "short write of a head slot")
        os.fsync(fd)
    finally:
        os.close(fd)
    return created

