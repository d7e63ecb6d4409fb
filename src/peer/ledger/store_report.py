"""The store's errors and its verification report (split from ``store.py`` to keep it small)."""

from __future__ import annotations

import errno as errnos
from dataclasses import dataclass, field

from peer.ledger.entries import FraudProof, LedgerError
from peer.ledger.records import Issue

_FULL = {errnos.ENOSPC, getattr(errnos, "EDQUOT", errnos.ENOSPC)}


class StoreError(LedgerError):
    """The store cannot do what was asked: locked, read-only, missing, or an I/O failure."""


class StoreUnavailable(StoreError):
    """The disk refused a write: ``errno`` says why (EROFS, EACCES, EIO, ...).

    Nothing was acknowledged: the chain on disk and in memory is what it was
    before the call.  The node must not sign or forward what it could not
    persist; ``LedgerStore.writable()`` says when it can again.
    """

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class DiskFull(StoreUnavailable):
    """The disk (or the quota) is full: ENOSPC or EDQUOT."""


def unavailable(what: str, exc: OSError) -> StoreUnavailable:
    """The precise error for an ``OSError`` of a write."""
    cls = DiskFull if exc.errno in _FULL else StoreUnavailable
    name = errnos.errorcode.get(exc.errno or 0, "?")
    return cls(f"{what}: {exc.strerror or exc} ({name})", exc.errno)


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
        """Every acknowledged entry is there and verifies.  Torn tails and fraud proofs do not make a
        chain invalid; lost acknowledged entries do."""
        return not any(not i.torn for i in self.issues)

    @property
    def lost(self) -> list[Issue]:
        return [i for i in self.issues if i.lost]

    def lines(self) -> list[str]:
        out = [f"{len(self.auctions)} auction(s), {sum(a.entries for a in self.auctions)} entries, "
               f"{self.fraud_proofs} fraud proof(s)"]
        out += [f"{'note' if i.torn else 'LOST' if i.lost else 'ERROR'}: {i.file} at offset {i.offset}: {i.reason}"
                for i in self.issues]
        return out
