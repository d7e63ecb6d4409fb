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

With a head file (``heads.py``) the chain file is also checked against what
was acknowledged: fewer verified entries than the head names (a cut at a
record boundary, a damaged last record, a removed file) is *lost*, never a
torn tail: reported, the bytes past the good prefix set aside in
``<file>.lost`` by a writable open, and refilled by merge.  Only records past
the acknowledged head can be a torn tail.  Without a head file (a ledger
written before them) the rules above are all there is.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from peer.ledger.codec import DecodeError, decode_record
from peer.ledger.heads import HEAD_SUFFIX, HEADS_MARK, NOTHING_DIGEST, Head, head_path, read_head
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
LOST_SUFFIX = ".lost"


@functools.lru_cache(maxsize=4096)  # asked several times for every entry a node hears (profiled: 2% of its CPU)
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
    """Something in a file that is wrong.

    ``torn`` issues were (or would be) truncated: never-acknowledged records.
    ``lost`` issues are acknowledged entries missing or damaged (the head file
    names more than the chain file holds): recoverable from peers, never cut.
    """

    file: str
    offset: int
    reason: str
    torn: bool = False
    auction: str | None = None
    lost: bool = False


@dataclass(frozen=True, slots=True)
class Lost:
    """A chain file that holds ``have`` verified entries where its head acknowledged ``head.count``."""

    file: str
    head: Head
    have: int


@dataclass(slots=True)
class Loaded:
    chains: dict[str, Chain] = field(default_factory=dict)
    proofs: list[FraudProof] = field(default_factory=list)
    broken_files: set[str] = field(default_factory=set)
    issues: list[Issue] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # auction -> file name
    lost: dict[str, Lost] = field(default_factory=dict)  # file name -> what is missing
    heads: dict[str, Head] = field(default_factory=dict)  # file name -> acknowledged head
    marked: bool = False  # the directory holds HEADS_MARK (heads.py)


def _cut(path: Path, at: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(at)
        fh.flush()
        os.fsync(fh.fileno())


def _read(path: Path, *, repair: bool, loaded: Loaded) -> Scan:
    """The fraud log's reading: without a head file, a torn tail is cut (see module doc)."""
    data = path.read_bytes()
    result = scan(data)
    if result.torn:
        verb = "truncated" if repair else "would truncate"
        loaded.issues.append(Issue(path.name, result.good_end,
                                   f"torn tail: {verb} {result.torn} bytes", torn=True))
        if repair:
            _cut(path, result.good_end)
    return result


def _verified(path: Path, result: Scan) -> tuple[Chain | None, int, str | None]:
    """The chain of the records that verify from genesis, the offset where they end, and why they stop."""
    chain: Chain | None = None
    end = result.good_end
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
            return chain, offset, f"offset {offset}: {exc}"
    return chain, end, result.damage


def _quarantine(path: Path, at: int) -> Path:
    """Keep the bytes from ``at`` on in ``<file>.lost`` (fsync'd), then cut them from the chain file."""
    keep = path.with_name(path.name + LOST_SUFFIX)
    tail = path.read_bytes()[at:]
    with open(keep, "ab") as fh:
        fh.write(tail)
        fh.flush()
        os.fsync(fh.fileno())
    _cut(path, at)
    return keep


def _load_chain(path: Path, *, repair: bool, loaded: Loaded, marked: bool) -> None:
    head = read_head(head_path(path))
    if head is None and marked:
        head = Head(0, NOTHING_DIGEST)  # nothing acknowledged: replicas only (heads.py)
    data = path.read_bytes() if path.exists() else b""
    result = scan(data)
    chain, end, problem = _verified(path, result)
    have = 0 if chain is None else chain.length
    auction = chain.auction if chain is not None else None
    if head is not None:
        loaded.heads[path.name] = head
    # Damage right after the last good record when the head names exactly one more entry is
    # that entry's record damaged (a flipped length, say): it is the tail, so it is lost too.
    last_one = (head is not None and head.count - have == 1 and problem is not None
                and problem == result.damage and end == result.good_end)
    if head is not None and have < head.count and (problem is None or last_one):
        # The file ends early, or in what looks like a torn append, but the head says those
        # entries were acknowledged: lost, never a torn tail.  Keep the bytes aside
        # (writable open) so that recovery can extend the chain again.  (Damage followed
        # by more records stays damage, below: an operator looks before anything is merged.)
        missing = head.count - have
        where = ""
        if repair and end < len(data):
            where = f"; the {len(data) - end} bytes from offset {end} are kept in {_quarantine(path, end).name}"
        loaded.issues.append(Issue(
            path.name, end, f"{missing} acknowledged entr{'y' if missing == 1 else 'ies'} missing or damaged "
                            f"(acknowledged {head.count}, the file holds {have}){where}; recoverable from peers "
                            f"by anti-entropy", auction=auction, lost=True))
        loaded.lost[path.name] = Lost(path.name, head, have)
    else:
        # Everything acknowledged is here: what follows it can only be a torn append, or
        # replicas that were never fsync'd (see below).
        if head is not None and head.count > 0 and chain is not None:
            acknowledged = chain.at(head.count - 1)
            if acknowledged is None or acknowledged.digest != head.digest:
                problem = problem or f"entry {head.count - 1} is not the one that was acknowledged"
                head = None  # not a head we can trust to say what is past it
        framing = problem is not None and problem == result.damage and end == result.good_end
        if head is not None and framing and have >= head.count:
            # Past the acknowledged head there are only replicas of others' entries, written
            # without fsync (store.py): after an OS crash the page cache may have reached the
            # disk in any order, e.g. a later record whole after a zeroed earlier one.  None of
            # it was acknowledged and anti-entropy brings it back, so it is cut like a torn tail.
            # (Only framing damage, which a crash can leave: a whole record that checks out but
            # does not chain is no crash's doing, and stays damage.)
            verb = "truncated" if repair else "would truncate"
            loaded.issues.append(Issue(path.name, end, f"torn tail: {verb} {len(data) - end} bytes past the "
                                                       f"acknowledged head ({problem})", torn=True))
            if repair:
                _cut(path, end)
            problem = None
        elif result.torn:
            verb = "truncated" if repair else "would truncate"
            loaded.issues.append(Issue(path.name, result.good_end,
                                       f"torn tail: {verb} {result.torn} bytes", torn=True))
            if repair:
                _cut(path, result.good_end)
        if problem is not None:
            loaded.issues.append(Issue(path.name, end, f"integrity error: {problem}", auction=auction))
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

    ``repair`` truncates torn tails and sets lost tails aside (the owning node on
    start); without it the directory is not modified (offline tools, possibly
    next to a running node).  A head file without its chain file is a chain
    lost whole.
    """
    loaded = Loaded()
    loaded.marked = (path / HEADS_MARK).exists()
    names = {f.name for f in path.glob("*" + CHAIN_SUFFIX)}
    names |= {f.with_suffix(CHAIN_SUFFIX).name for f in path.glob("*" + HEAD_SUFFIX)}
    for name in sorted(names):
        _load_chain(path / name, repair=repair, loaded=loaded, marked=loaded.marked)
    fraud = path / FRAUD_FILE
    if fraud.exists():
        _load_proofs(fraud, _read(fraud, repair=repair, loaded=loaded), loaded)
    return loaded
