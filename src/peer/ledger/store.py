"""A node's ledger on disk: one append-only, hash-chained file per auction.

Why one file per auction rather than one log for everything: a chain is
append-only per auction, so the file *is* the chain; a torn tail or damage is
confined to the auction being written; ``show``/``verify`` and replication read
per auction; and a damaged auction does not stop a node from recording others.
The price is one directory fsync when an auction's file is created.

Durability by whose entry it is.  ``append`` (the node's own entries) and
``merge`` of an entry the store's ``owner`` signed verify first, then write the
whole framed record with one ``write``, fsync, then record the chain's new
head in its head file (``heads.py``, fsync'd), and only then return (and only
then may the caller acknowledge, e.g. countersign or publish).  In-memory state
is updated after that, and the head file always names what was acknowledged: a
chain file that holds less is reported as *lost*, not torn, and is filled again
from peers (``merge``).  A *replica* (``merge`` of an entry the owner did not
sign) is written to the page cache only, without fsync and without moving the
head: nobody waits on it (gossip forwards before it merges), a process crash
keeps it (the kernel has it), and what an OS crash takes is past the
acknowledged head, so recovery cuts it and anti-entropy brings it back.  The
next durable append to the same file fsyncs it with that one.  See
docs/ledger.md, "Durability by whose entry it is".  Fraud proofs go to a separate
append-only file (``fraud.log``) with the same framing; the chain is never
rewritten.

When the disk refuses a write (full, read-only, I/O error) the append raises
``StoreUnavailable`` (``DiskFull`` for ENOSPC/EDQUOT) with the errno, after
cutting off whatever part of the record reached the file: nothing is
acknowledged that is not durable.  ``healthy`` says whether the last write
failed; ``writable()`` probes the disk and clears the failure when it works again.
"""

from __future__ import annotations

import errno as errnos
import fcntl
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from peer.ledger.codec import Digests, Summaries, Summary, encode_record
from peer.ledger.entries import (
    Announcement,
    Chain,
    Entry,
    FraudProof,
    InvalidEntry,
    SignedHop,
    verify_fraud_proof,
)
from peer.ledger.heads import HEADS_MARK, Head, head_path, write_head
from peer.ledger.store_admission import AdmissionGlue
from peer.ledger.store_report import (  # re-exported: the store's errors and report live there
    AuctionStatus,
    DiskFull,
    FraudDetected,
    IntegrityError,
    StoreError,
    StoreUnavailable,
    VerifyReport,
    unavailable,
)
from peer.ledger.records import FRAUD_FILE, Issue, Lost, chain_file_name, frame, load_dir
from peer.ledger.reconcile import SummariesAnswer, answer_digests, answer_summaries, bucket_digests
from peer.ledger.replicate import MergeResult, merge, plan_sends, summarize

LEDGER_DIR = "ledger"
LOCK_FILE = ".lock"
NAMES_FILE = "names.json"
PROBE_FILE = ".probe"
PROBE_BYTES = 4096
_NOT_WRITABLE = {errnos.EROFS, errnos.EACCES, errnos.EPERM}
__all__ = ["AuctionStatus", "DiskFull", "FraudDetected", "IntegrityError", "LedgerStore", "StoreError",
           "StoreUnavailable", "VerifyReport", "unavailable"]
def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_names(path: Path) -> dict[str, str]:
    """Display names (public key hex -> name) from ``names.json``, if the node wrote one."""
    try:
        raw = json.loads((path / NAMES_FILE).read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(raw, dict) else {}


class LedgerStore(AdmissionGlue):
    """The ledger in directory ``path`` (usually ``<data dir>/ledger``).

    Writable stores take an exclusive lock (two writers would interleave
    records) and truncate torn tails on open.  ``read_only=True`` changes
    nothing on disk and takes no lock, so offline tools can run beside a node.
    Damage found on open does not raise: it is in ``issues`` and
    ``verify_all()``, and appends to a damaged auction raise ``IntegrityError``.
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._lock_fd: int | None = None
        self._closed = False
        self._poisoned: str | None = None
        self.failure: StoreUnavailable | None = None  # the last write failure, until writable() clears it
        self.owner: str | None = None  # our public key (hex): merged entries it signed are fsync'd
        self._unsynced_names: set[str] = set()  # files created by replicas: their names are not fsync'd yet
        if read_only:
            if not self.path.is_dir():
                raise StoreError(f"{self.path}: no ledger directory")
        else:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                self._lock()
            except OSError as exc:
                if exc.errno not in _NOT_WRITABLE or not self.path.is_dir():
                    raise StoreError(f"{self.path}: {exc.strerror or exc}") from exc
                # A read-only data dir: serve what is there, refuse writes, and let
                # writable() take the lock (and repair) once the directory is writable.
                self.failure = unavailable(f"{self.path}", exc)
        self._load(repair=self._lock_fd is not None)

    def _load(self, *, repair: bool) -> None:
        try:
            loaded = load_dir(self.path, repair=repair)
        except OSError as exc:
            self.close()
            raise StoreError(f"{self.path}: {exc.strerror or exc}") from exc
        self._chains = loaded.chains
        self._proofs = loaded.proofs
        self._proof_keys = {p.key for p in loaded.proofs}
        self._broken = loaded.broken_files
        self._lost: dict[str, Lost] = loaded.lost
        self.issues: list[Issue] = loaded.issues
        if repair:
            try:
                self._record_heads(loaded.chains, loaded.heads, loaded.lost, loaded.files)
                if not loaded.marked and not any(name not in loaded.heads for name in self._broken
                                                 if name != FRAUD_FILE):
                    # Every chain has its head now (a damaged one without a head keeps the old
                    # rules for the directory until it is repaired): from here on, a chain
                    # without a head file holds replicas only (heads.py).
                    self._create_durably(self.path / HEADS_MARK)
            except OSError as exc:  # e.g. a full disk: readable, but not writable until space returns
                self.failure = unavailable(f"{self.path}: recording chain heads", exc)

    def _record_heads(self, chains: Mapping[str, Chain], heads: Mapping[str, Head], lost: Mapping[str, Lost],
                      files: Mapping[str, str]) -> None:
        """On a writable open: name what is on disk as acknowledged where the head file does not
        yet (files written before head files existed, or a record fsync'd just before a crash)."""
        wrote = False
        for auction, chain in chains.items():
            name = files[auction]
            head = heads.get(name)
            if name in lost or name in self._broken:
                continue  # the head is the evidence of what was acknowledged: keep it as it is
            if head is None or head.count < chain.length:
                # Replicas past the head may be in the page cache only (a process crash keeps
                # them): make them durable before the head names them.
                fd = os.open(self.path / name, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                write_head(head_path(self.path / name), Head(chain.length, chain.head.digest))
                wrote = True
        if wrote:
            _fsync_dir(self.path)  # and the names of files that replicas created

    def _create_durably(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self.path)

    @classmethod
    def open_data_dir(cls, data_dir: str | os.PathLike[str], *, read_only: bool = False) -> LedgerStore:
        return cls(Path(data_dir) / LEDGER_DIR, read_only=read_only)

    def _lock(self) -> None:
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"{self.path}: the ledger is in use by another process") from None
        self._lock_fd = fd

    def close(self) -> None:
        self._closed = True
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> LedgerStore:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ reads

    def chains(self) -> list[Chain]:
        return [self._chains[a] for a in sorted(self._chains)]

    def chain(self, auction: str) -> Chain | None:
        return self._chains.get(auction)

    def fraud_proofs(self) -> list[FraudProof]:
        return list(self._proofs)

    def is_damaged(self, auction: str) -> bool:
        return chain_file_name(auction) in self._broken

    def lost(self) -> list[Lost]:
        """Chains missing acknowledged entries (found on open), until merged back from peers."""
        return [self._lost[name] for name in sorted(self._lost)]

    def is_lost(self, auction: str) -> bool:
        return chain_file_name(auction) in self._lost

    def summaries(self) -> list[Summary]:
        """What to tell a peer we have (gossip sends these; see ``replicate``)."""
        return [summarize(c) for c in self.chains()]

    def entries_for(self, peer_summaries: Iterable[Summary]) -> list[Entry]:
        """What to send a peer, given its summaries."""
        return plan_sends(self.chains(), peer_summaries)

    def digests(self) -> Digests:
        """Step 1 of anti-entropy (``peer.ledger.reconcile``): one digest per bucket of chains."""
        return bucket_digests(self.chains())

    def answer_digests(self, theirs: Digests) -> Summaries | None:
        """Step 2: our covering summaries where a peer's digests differ from ours (None: in sync)."""
        return answer_digests(self.chains(), theirs)

    def answer_summaries(self, theirs: Summaries) -> SummariesAnswer:
        """Step 3: the entries a peer lacks, and our summaries where it holds more than we do."""
        return answer_summaries(self.chains(), theirs)

    def verify_all(self) -> VerifyReport:
        """Re-read every file from disk and re-verify every entry from genesis.

        Torn tails cut at open are reported too, as notes.
        """
        loaded = load_dir(self.path, repair=False)
        report = VerifyReport(fraud_proofs=len(loaded.proofs))
        cut_at_open = [] if self.read_only else [i for i in self.issues if i.torn]
        report.issues = cut_at_open + loaded.issues
        problems = {i.file: i.reason for i in loaded.issues if not i.torn}
        for auction, chain in sorted(loaded.chains.items()):
            name = loaded.files[auction]
            report.auctions.append(AuctionStatus(auction, name, chain.length, problems.pop(name, None)))
        for name, reason in sorted(problems.items()):
            if name != FRAUD_FILE:
                report.auctions.append(AuctionStatus(None, name, 0, reason))
        return report

    # ----------------------------------------------------------------- writes

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError("the ledger was opened read-only")
        if self.failure is not None:
            raise type(self.failure)(f"the ledger cannot persist: {self.failure}", self.failure.errno)
        if self._lock_fd is None:
            raise StoreError("the ledger is closed")

    @property
    def healthy(self) -> bool:
        """No write has failed since the last successful ``writable()`` (no I/O: cheap to poll)."""
        return not self.read_only and self.failure is None and self._lock_fd is not None

    def writable(self) -> bool:
        """Probe the disk: can the store persist right now?  One small write + fsync + unlink.

        After a failure (``failure`` set) a successful probe re-reads the
        directory (cutting whatever a failed append left past the acknowledged
        head) and clears the failure, so the node may take part again.  A
        store opened on a read-only directory takes its lock here once it can.
        Never raises; ``failure`` says why it returned False.
        """
        if self.read_only or self._closed:
            return False
        try:
            if self._lock_fd is None:
                self._lock()
            fd = os.open(self.path / PROBE_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, bytes(PROBE_BYTES))
                os.fsync(fd)
            finally:
                os.close(fd)
                try:
                    os.unlink(self.path / PROBE_FILE)
                except OSError:
                    pass
        except StoreError as exc:  # the lock: another process holds it
            self.failure = StoreUnavailable(str(exc))
            return False
        except OSError as exc:
            self.failure = unavailable(f"{self.path}", exc)
            return False
        if self.failure is not None or self._poisoned is not None:
            self.failure = None
            self._poisoned = None
            try:
                self._load(repair=True)  # the disk is the truth: cut what a failed append left
            except StoreError as exc:
                self.failure = StoreUnavailable(str(exc))
        return self.failure is None

    def set_owner(self, public_hex: str | None) -> None:
        """Whose ledger this is: merged entries signed by this key are made durable like ``append``."""
        self.owner = public_hex

    def append(self, entry: Entry) -> bool:
        """Verify ``entry`` against its chain, then persist it durably (the node's own entry).

        Returns True once the entry is on disk (fsync'd), False if this exact
        entry was already there.  Raises ``InvalidEntry`` (with the reason),
        ``FraudDetected`` (after keeping the proof), ``IntegrityError`` or
        ``StoreError``; on any raise the chain is unchanged.
        """
        self._writable()
        if self.is_damaged(entry.auction):
            raise IntegrityError(f"auction {entry.auction!r}: the stored chain is damaged")
        result = merge(self._chains, [entry])
        if result.rejected:
            raise InvalidEntry(result.rejected[0].reason, entry.position)
        if result.fraud_proofs:
            self._keep_proofs(result.fraud_proofs)
            raise FraudDetected(result.fraud_proofs[0])
        if not result.accepted:
            return False
        self._write_entry(entry, durable=True)
        return True

    def append_announcement(self, announcement: Announcement) -> bool:
        return self.append(announcement)

    def append_hop(self, hop: SignedHop) -> bool:
        return self.append(hop)

    def merge(self, remote: Iterable[Entry], *, now: float | None = None,
              vouched_by: str | None = None) -> MergeResult:
        """Apply what a peer sent: accepted entries are written, fraud proofs kept (fsync'd).

        Accepted entries the ``owner`` signed are durable when this returns, like
        ``append``; replicas of others' entries are in the page cache, not
        fsync'd (module doc).  Nothing that is rejected touches the disk.  With an admission policy
        (``set_admission``), entries of auctions that are not relevant yet are
        held pending (``result.held``) or refused; ``now`` is the time for that.
        ``vouched_by``: a neighbour's anti-entropy answer, which may make us store
        a bounded number of started chains on its word (``admission.py``).
        """
        self._writable()
        entries, held, refused, vouching = self._screen(list(remote), now, vouched_by)
        broken = {e.auction for e in entries if self.is_damaged(e.auction)}
        result = merge(self._chains, entries, broken=broken)
        result.held = held
        result.rejected += refused
        for entry in result.accepted:
            self._write_entry(entry, durable=self.is_own(entry))
        self._keep_proofs(result.fraud_proofs)
        if vouching and vouched_by is not None:
            self._record_vouched(vouching, vouched_by)
        return result

    def add_fraud_proofs(self, proofs: Iterable[FraudProof]) -> list[FraudProof]:
        """Keep valid fraud proofs a peer relayed; returns the new ones.  Invalid ones are ignored, and
        with an admission policy so are proofs about auctions we do not hold and those past the
        per-auction bound (``admission.py``)."""
        self._writable()
        valid = []
        # With an admission policy, only proofs about our auctions (checked before any signature).
        for proof in self._relevant_proofs(list(proofs)):
            try:
                verify_fraud_proof(proof)
            except InvalidEntry:
                continue
            valid.append(proof)
        return self._keep_proofs(valid)

    def _keep_proofs(self, proofs: Iterable[FraudProof]) -> list[FraudProof]:
        new = []
        kept: dict[str, int] = {}
        for proof in self._proofs:
            kept[proof.auction] = kept.get(proof.auction, 0) + 1
        for proof in proofs:
            if proof.key in self._proof_keys or not self._proof_room(proof.auction, kept):
                continue
            kept[proof.auction] = kept.get(proof.auction, 0) + 1
            self._append_durably(self.path / FRAUD_FILE, frame(encode_record(proof)))
            self._proof_keys.add(proof.key)
            self._proofs.append(proof)
            new.append(proof)
        return new

    def is_own(self, entry: Entry) -> bool:
        """Is the owner a signer of ``entry`` (announcer, seller or buyer)?  Then it is written
        durably, whichever way it came.  By the roles it names, not by verifying signatures
        (``entries.signers``): this runs on every entry gossip brings, and the store verifies
        what it accepts anyway."""
        if self.owner is None:
            return False
        if isinstance(entry, Announcement):
            return entry.seller == self.owner
        return self.owner in (entry.body.seller, entry.body.buyer)

    def may_sync(self, entries: Iterable[Entry], vouched_by: str | None = None) -> bool:
        """Could ``merge(entries, vouched_by=...)`` wait on the disk (fsync)?  Yes for our own
        entries, and for a neighbour's answer that may vouch for a chain (its record is saved).
        Otherwise a merge writes replicas to the page cache only, cheap enough to run in the
        node's loop (a fraud proof found on the way is still fsync'd there: rare, and evidence)."""
        entries = list(entries)
        if any(self.is_own(e) for e in entries):
            return True
        if vouched_by is None or self._admission is None:
            return False
        pending = self._pending if self._pending is not None else ()
        return any(isinstance(e, SignedHop) and (e.auction in pending or not self.expects(e.auction))
                   for e in entries)

    def _write_entry(self, entry: Entry, *, durable: bool) -> None:
        name = chain_file_name(entry.auction)
        chain = Chain(entry) if isinstance(entry, Announcement) else self._chains[entry.auction].appended(entry)
        lost = self._lost.get(name)
        # While a chain is lost its head file keeps naming what was acknowledged, so that a
        # crash during recovery still shows the loss; it moves on once the chain is whole.
        restored = lost is not None and chain.length >= lost.head.count
        record = frame(encode_record(entry))
        if durable:
            head = None if lost is not None and not restored else Head(chain.length, chain.head.digest)
            self._append_durably(self.path / name, record, head)
        else:
            self._append_replica(self.path / name, record)
        self._chains[entry.auction] = chain
        if restored:
            assert lost is not None
            del self._lost[name]
            acknowledged = chain.at(lost.head.count - 1)
            if acknowledged is None or acknowledged.digest != lost.head.digest:
                self._broken.add(name)
                self.issues.append(Issue(name, 0, f"integrity error: the chain recovered from peers differs from "
                                                  f"the one acknowledged at entry {lost.head.count - 1}",
                                         auction=entry.auction))

    def _open_for_append(self, path: Path) -> int:
        """Open (or create) a chain file for appending.  Raises StoreUnavailable."""
        try:
            return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            self.failure = unavailable(f"{path}", exc)
            raise self.failure from exc

    def _append_durably(self, path: Path, record: bytes, head: Head | None = None) -> None:
        """Append ``record`` and fsync it, then (if given) write ``head``; all or nothing.

        On any failure the record is cut off again (or the store is marked
        poisoned if even that fails) and ``StoreUnavailable`` is raised.
        """
        created = not path.exists()
        fd = self._open_for_append(path)
        try:
            start = os.fstat(fd).st_size
            try:
                written = 0
                while written < len(record):  # os.write is unbuffered: no flush needed
                    written += os.write(fd, record[written:])
                os.fsync(fd)  # this record, and any replicas written to the file before it
                head_created = head is not None and write_head(head_path(path), head)
                if created or head_created or path.name in self._unsynced_names:
                    # New files' names must survive a crash too (one fsync for both), and so must
                    # that of a chain file a replica created.
                    _fsync_dir(self.path)
                    self._unsynced_names.discard(path.name)
            except OSError as exc:
                # Cut the partial record off, or the next append would bury it mid-file
                # where recovery must call it damage; a whole record without its head is
                # cut too: the caller is told it failed, so it was never acknowledged.
                # After a failed fsync the page cache cannot be trusted either way, so
                # refuse further writes until writable() has re-read the disk.
                self._poisoned = f"{path.name}: {exc.strerror or exc}"
                self.failure = unavailable(f"{path}: write failed", exc)
                try:
                    os.ftruncate(fd, start)
                    os.fsync(fd)
                except OSError:
                    pass
                raise self.failure from exc
        finally:
            os.close(fd)

    def _append_replica(self, path: Path, record: bytes) -> None:
        """Append a replica's ``record`` to the page cache: no fsync, the head does not move.

        A new chain file gets no head file: in a marked directory (``heads.HEADS_MARK``)
        recovery knows that none of it was acknowledged.  On failure the partial
        record is cut off and ``StoreUnavailable`` raised, as for a durable append.
        """
        fd = self._open_for_append(path)
        try:
            start = os.fstat(fd).st_size
            try:
                if start == 0:  # a new file (or one a lost chain left empty): its name is not durable
                    self._unsynced_names.add(path.name)
                written = 0
                while written < len(record):
                    written += os.write(fd, record[written:])
            except OSError as exc:
                self._poisoned = f"{path.name}: {exc.strerror or exc}"
                self.failure = unavailable(f"{path}: write failed", exc)
                try:
                    os.ftruncate(fd, start)
                except OSError:
                    pass
                raise self.failure from exc
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ names

    def names(self) -> dict[str, str]:
        return read_names(self.path)

    def remember_names(self, names: Mapping[str, str]) -> None:
        """Record display names for public keys (for ``peer ledger show``); atomic replace."""
        self._writable()
        merged = {**self.names(), **names}
        tmp = self.path / (NAMES_FILE + ".tmp")
        try:
            with open(tmp, "w") as fh:
                json.dump(merged, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path / NAMES_FILE)
            _fsync_dir(self.path)
        except OSError as exc:  # names are a convenience: a failure here is reported, not poisoning
            raise unavailable(f"{self.path / NAMES_FILE}", exc) from exc
