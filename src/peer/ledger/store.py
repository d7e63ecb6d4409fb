"""A node's ledger on disk: one append-only, hash-chained file per auction.

Why one file per auction rather than one log for everything: a chain is
append-only per auction, so the file *is* the chain; a torn tail or damage is
confined to the auction being written; ``show``/``verify`` and replication read
per auction; and a damaged auction does not stop a node from recording others.
The price is one directory fsync when an auction's file is created.

Durability: ``append`` verifies first, then writes the whole framed record with
one ``write``, fsyncs, and only then returns (and only then may the caller
acknowledge, e.g. countersign or forward).  In-memory state is updated after
the fsync, so it is never ahead of the disk.  Fraud proofs go to a separate
append-only file (``fraud.log``) with the same framing; the chain is never
rewritten.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from peer.ledger.codec import Digests, Summaries, Summary, encode_record
from peer.ledger.entries import (
    Announcement,
    Chain,
    Entry,
    FraudProof,
    InvalidEntry,
    LedgerError,
    SignedHop,
    verify_fraud_proof,
)
from peer.ledger.records import FRAUD_FILE, Issue, chain_file_name, frame, load_dir
from peer.ledger.reconcile import SummariesAnswer, answer_digests, answer_summaries, bucket_digests
from peer.ledger.replicate import MergeResult, merge, plan_sends, summarize

LEDGER_DIR = "ledger"
LOCK_FILE = ".lock"
NAMES_FILE = "names.json"


class StoreError(LedgerError):
    """The store cannot do what was asked: locked, read-only, missing, or an I/O failure."""


class IntegrityError(LedgerError):
    """A stored chain is damaged; nothing is appended to it until an operator looks."""


class FraudDetected(LedgerError):
    """An append conflicted with a stored entry signed by the same party.  The proof was kept."""

    def __init__(self, proof: FraudProof) -> None:
        super().__init__(f"auction {proof.auction!r} position {proof.position}: conflicting signed entries")
        self.proof = proof


@dataclass(frozen=True, slots=True)
class AuctionStatus:
    auction: str | None  # None: the file's announcement itself is unreadable
    file: str
    entries: int
    problem: str | None


@dataclass(slots=True)
class VerifyReport:
    auctions: list[AuctionStatus] = field(default_factory=list)
    fraud_proofs: int = 0
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every stored entry verifies.  Torn tails and fraud proofs do not make a chain invalid."""
        return not any(not i.torn for i in self.issues)

    def lines(self) -> list[str]:
        out = [f"{len(self.auctions)} auction(s), {sum(a.entries for a in self.auctions)} entries, "
               f"{self.fraud_proofs} fraud proof(s)"]
        out += [f"{'note' if i.torn else 'ERROR'}: {i.file} at offset {i.offset}: {i.reason}"
                for i in self.issues]
        return out


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


class LedgerStore:
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
        self._poisoned: str | None = None
        if read_only:
            if not self.path.is_dir():
                raise StoreError(f"{self.path}: no ledger directory")
        else:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                self._lock()
            except OSError as exc:
                raise StoreError(f"{self.path}: {exc.strerror or exc}") from exc
        try:
            loaded = load_dir(self.path, repair=not read_only)
        except OSError as exc:
            self.close()
            raise StoreError(f"{self.path}: {exc.strerror or exc}") from exc
        self._chains = loaded.chains
        self._proofs = loaded.proofs
        self._proof_keys = {p.key for p in loaded.proofs}
        self._broken = loaded.broken_files
        self.issues: list[Issue] = loaded.issues

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
        if self._lock_fd is None:
            raise StoreError("the ledger is closed")
        if self._poisoned is not None:
            raise StoreError(f"an earlier write failed ({self._poisoned}); reopen the ledger")

    def append(self, entry: Entry) -> bool:
        """Verify ``entry`` against its chain, then persist it durably.

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
        self._write_entry(entry)
        return True

    def append_announcement(self, announcement: Announcement) -> bool:
        return self.append(announcement)

    def append_hop(self, hop: SignedHop) -> bool:
        return self.append(hop)

    def merge(self, remote: Iterable[Entry]) -> MergeResult:
        """Apply what a peer sent: accepted entries are persisted, fraud proofs kept.

        Nothing that is rejected touches the disk.
        """
        self._writable()
        entries = list(remote)
        broken = {e.auction for e in entries if self.is_damaged(e.auction)}
        result = merge(self._chains, entries, broken=broken)
        for entry in result.accepted:
            self._write_entry(entry)
        self._keep_proofs(result.fraud_proofs)
        return result

    def add_fraud_proofs(self, proofs: Iterable[FraudProof]) -> list[FraudProof]:
        """Keep valid fraud proofs a peer relayed; returns the new ones.  Invalid ones are ignored."""
        self._writable()
        valid = []
        for proof in proofs:
            try:
                verify_fraud_proof(proof)
            except InvalidEntry:
                continue
            valid.append(proof)
        return self._keep_proofs(valid)

    def _keep_proofs(self, proofs: Iterable[FraudProof]) -> list[FraudProof]:
        new = []
        for proof in proofs:
            if proof.key in self._proof_keys:
                continue
            self._append_durably(self.path / FRAUD_FILE, frame(encode_record(proof)))
            self._proof_keys.add(proof.key)
            self._proofs.append(proof)
            new.append(proof)
        return new

    def _write_entry(self, entry: Entry) -> None:
        self._append_durably(self.path / chain_file_name(entry.auction), frame(encode_record(entry)))
        if isinstance(entry, Announcement):
            self._chains[entry.auction] = Chain(entry)
        else:
            self._chains[entry.auction] = self._chains[entry.auction].appended(entry)

    def _append_durably(self, path: Path, record: bytes) -> None:
        created = not path.exists()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"{path}: {exc.strerror or exc}") from exc
        try:
            start = os.fstat(fd).st_size
            try:
                written = 0
                while written < len(record):  # os.write is unbuffered: no flush needed
                    written += os.write(fd, record[written:])
                os.fsync(fd)
                if created:
                    _fsync_dir(self.path)  # the new file's name must survive a crash too
            except OSError as exc:
                # Cut the partial record off, or the next append would bury it mid-file
                # where recovery must call it damage.  After a failed fsync the page cache
                # cannot be trusted either way, so refuse further writes until reopened.
                self._poisoned = f"{path.name}: {exc.strerror or exc}"
                try:
                    os.ftruncate(fd, start)
                    os.fsync(fd)
                except OSError:
                    pass
                raise StoreError(f"{path}: write failed: {exc.strerror or exc}") from exc
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
        with open(tmp, "w") as fh:
            json.dump(merged, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / NAMES_FILE)
        _fsync_dir(self.path)
