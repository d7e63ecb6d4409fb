"""On-disk framing of ledger records, and reading a ledger directory back (recovery).

A record is::

    offset 0   u32 BE   n          body length, 1..MAX_RECORD
    offset 4   u32 BE   crc32(bytes 0..3)
    offset 8   32 B     sha256(body)
    offset 40  n B      body (codec.encode_record)

The length gets its own CRC so that a damaged length in the middle of a file
is recognised as damage: without it a flipped bit could make a length point
past the end of the file, which looks exactly like a torn tail and would have
recovery "truncate" good, acknowledged records.

Recovery rules (``scan``).  A crash mid-append leaves a prefix of the record,
possibly followed by zeros (a file system may extend the size before the data
lands).  So a torn tail is: the file ends inside a header or a body; a header
that fails its CRC with only zeros after it; or a record whose checksum fails
and that is last in the file or followed only by zeros.  It is cut off; it was
never acknowledged, because ``append`` returns only after fsync;
- anything else that does not check out, followed by more data, is damage:
  reported with file and offset, never dropped.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from peer.ledger.codec import DecodeError, decode_record
from peer.ledger.entries import (
    Announcement,
    Chain,
    FraudProof,
    InvalidEntry,
    SignedHop,
    verify_announcement,
    verify_fraud_proof,
    verify_hop,
)

HEADER = struct.Struct(">II32s")
MAX_RECORD = 64 * 1024
CHAIN_SUFFIX = ".chain"
FRAUD_FILE = "fraud.log"


def chain_file_name(auction: str) -> str:
    """A file-system-safe, fixed-length name per auction id (checked against the genesis on load)."""
    return hashlib.sha256(b"peer/ledger/file\x00" + auction.encode()).hexdigest()[:32] + CHAIN_SUFFIX


def frame(body: bytes) -> bytes:
    if not 0 < len(body) <= MAX_RECORD:
        raise ValueError(f"record body of {len(body)} bytes")
    length = len(body).to_bytes(4, "big")
    return HEADER.pack(len(body), zlib.crc32(length), hashlib.sha256(body).digest()) + body


@dataclass(frozen=True, slots=True)
class Scan:
    records: list[tuple[int, bytes]]  # (offset, body) of every good record, in order
    good_end: int  # where the good records end
    torn: int  # bytes of torn tail after good_end (0: none)
    damage: str | None = None  # set when something bad is followed by more data


def _zeros(data: bytes, start: int) -> bool:
    return not data[start:].strip(b"\x00")


def scan(data: bytes) -> Scan:
    """Split a file's bytes into records, recognising a torn tail and damage (see module doc)."""
    records: list[tuple[int, bytes]] = []
    pos, size = 0, len(data)
    while pos < size:
        if size - pos < HEADER.size:
            return Scan(records, pos, size - pos)
        n, crc, digest = HEADER.unpack_from(data, pos)
        if zlib.crc32(n.to_bytes(4, "big")) != crc:
            # A header cut short and then zero-filled (the file size was extended
            # before the data landed) has nothing but zeros after it.
            if _zeros(data, pos + HEADER.size):
                return Scan(records, pos, size - pos)
            return Scan(records, pos, 0, f"offset {pos}: record header is damaged")
        if not 0 < n <= MAX_RECORD:
            return Scan(records, pos, 0, f"offset {pos}: impossible record length {n}")
        end = pos + HEADER.size + n
        if end > size:
            return Scan(records, pos, size - pos)
        body = data[pos + HEADER.size:end]
        if hashlib.sha256(body).digest() != digest:
            if end == size or _zeros(data, end):
                return Scan(records, pos, size - pos)
            return Scan(records, pos, 0, f"offset {pos}: record checksum does not match")
        records.append((pos, body))
        pos = end
    return Scan(records, pos, 0)


@dataclass(frozen=True, slots=True)
class Issue:
    """Something in a file that is wrong.  ``torn`` issues were (or would be) truncated."""

    file: str
    offset: int
    reason: str
    torn: bool = False
    auction: str | None = None


@dataclass(slots=True)
class Loaded:
    chains: dict[str, Chain] = field(default_factory=dict)
    proofs: list[FraudProof] = field(default_factory=list)
    broken_files: set[str] = field(default_factory=set)
    issues: list[Issue] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # auction -> file name


def _read(path: Path, *, repair: bool, loaded: Loaded) -> Scan:
    data = path.read_bytes()
    result = scan(data)
    if result.torn:
        verb = "truncated" if repair else "would truncate"
        loaded.issues.append(Issue(path.name, result.good_end,
                                   f"torn tail: {verb} {result.torn} bytes", torn=True))
        if repair:
            with open(path, "r+b") as fh:
                fh.truncate(result.good_end)
                fh.flush()
                os.fsync(fh.fileno())
    return result


def _load_chain(path: Path, result: Scan, loaded: Loaded) -> None:
    chain: Chain | None = None
    for offset, body in result.records:
        try:
            entry = decode_record(body)
            if chain is None:
                if not isinstance(entry, Announcement):
                    raise InvalidEntry("a chain file must start with an announcement")
                if chain_file_name(entry.auction) != path.name:
                    raise InvalidEntry(f"announces auction {entry.auction!r}, which belongs in another file")
                verify_announcement(entry)
                chain = Chain(entry)
                continue
            if not isinstance(entry, SignedHop):
                raise InvalidEntry("only hops may follow the announcement")
            verify_hop(chain.head, entry)
            chain = chain.appended(entry)
        except (DecodeError, InvalidEntry) as exc:
            auction = chain.auction if chain is not None else None
            loaded.issues.append(Issue(path.name, offset, f"integrity error: {exc}", auction=auction))
            loaded.broken_files.add(path.name)
            break
    if result.damage is not None:
        loaded.issues.append(Issue(path.name, result.good_end, f"integrity error: {result.damage}",
                                   auction=chain.auction if chain else None))
        loaded.broken_files.add(path.name)
    if chain is not None:
        loaded.chains[chain.auction] = chain
        loaded.files[chain.auction] = path.name


def _load_proofs(path: Path, result: Scan, loaded: Loaded) -> None:
    for offset, body in result.records:
        try:
            proof = decode_record(body)
            if not isinstance(proof, FraudProof):
                raise InvalidEntry("the fraud log holds only fraud proofs")
            verify_fraud_proof(proof)
        except (DecodeError, InvalidEntry) as exc:
            loaded.issues.append(Issue(path.name, offset, f"integrity error: {exc}"))
            loaded.broken_files.add(path.name)
            return
        loaded.proofs.append(proof)
    if result.damage is not None:
        loaded.issues.append(Issue(path.name, result.good_end, f"integrity error: {result.damage}"))
        loaded.broken_files.add(path.name)


def load_dir(path: Path, *, repair: bool) -> Loaded:
    """Read every chain file and the fraud log, re-verifying everything from genesis.

    ``repair`` truncates torn tails (the owning node on start); without it the
    directory is not modified (offline tools, possibly next to a running node).
    """
    loaded = Loaded()
    for file in sorted(path.glob("*" + CHAIN_SUFFIX)):
        _load_chain(file, _read(file, repair=repair, loaded=loaded), loaded)
    fraud = path / FRAUD_FILE
    if fraud.exists():
        _load_proofs(fraud, _read(fraud, repair=repair, loaded=loaded), loaded)
    return loaded
