"""The admission half of :class:`peer.ledger.store.LedgerStore` (mixed in; see ``admission.py``)."""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from typing import TYPE_CHECKING

from peer.ledger.admission import AdmissionPolicy, Admitted, PendingArea
from peer.ledger.entries import Announcement, Entry
from peer.ledger.heads import head_path
from peer.ledger.records import chain_file_name
from peer.ledger.replicate import MergeResult, Rejection

if TYPE_CHECKING:
    from peer.ledger.store import LedgerStore


class AdmissionGlue:
    """Mixed into LedgerStore; ``self`` is the store."""

    _admission: AdmissionPolicy | None = None
    _pending: PendingArea | None = None
    _admitted: Admitted | None = None

    def set_admission(self: LedgerStore, policy: AdmissionPolicy | None) -> None:
        """Bound what gossip may make this store keep (None: keep every valid entry, as before)."""
        self._admission = policy
        self._pending = PendingArea(policy) if policy is not None and policy.hold_pending else None
        self._admitted = Admitted(policy.max_admitted) if policy is not None else None

    def pending(self: LedgerStore) -> int:
        """Entries waiting in the pending area."""
        return 0 if self._pending is None else len(self._pending)

    def admit(self: LedgerStore, auction: str, *, now: float | None = None) -> MergeResult:
        """``auction`` is relevant (its seller's Invite arrived): merge what is pending for it and
        merge its later entries directly.  Raises as ``merge`` does."""
        if self._admitted is not None:
            self._admitted.add(auction)
        held = self._pending.take(auction) if self._pending is not None else []
        return self.merge(held, now=now)

    def _screen(self: LedgerStore, entries: list[Entry], now: float | None,
                ) -> tuple[list[Entry], list[Entry], list[Rejection]]:
        """Split what a peer sent into (merge now, held pending, refused)."""
        policy = self._admission
        if policy is None:
            return entries, [], []
        now = time.time() if now is None else now
        go: list[Entry] = []
        held: list[Entry] = []
        refused: list[Rejection] = []
        new_by_seller: dict[str, int] = {}
        for entry in sorted(entries, key=lambda e: (e.auction, e.position)):
            auction = entry.auction
            known = auction in self._chains or self.is_lost(auction)
            relevant = self._admitted is not None and auction in self._admitted
            if known or relevant:
                go.append(entry)
                continue
            if self._pending is not None:
                reason = self._pending.hold(entry, now)
                if reason is None:
                    held.append(entry)
                else:
                    refused.append(Rejection(entry, reason))
                continue
            if isinstance(entry, Announcement):
                count = self.unstarted(entry.seller) + new_by_seller.get(entry.seller, 0)
                if count >= policy.max_unstarted_per_seller:
                    refused.append(Rejection(entry, f"seller {entry.seller[:12]} already has {count} auctions "
                                                    f"that never started"))
                    continue
                new_by_seller[entry.seller] = new_by_seller.get(entry.seller, 0) + 1
            go.append(entry)
        return go, held, refused

    def unstarted(self: LedgerStore, seller: str) -> int:
        """Stored chains of ``seller`` that are an announcement only."""
        return sum(1 for c in self._chains.values() if c.length == 1 and c.announcement.seller == seller)

    def expire_unstarted(self: LedgerStore, now: float, *, keep: Collection[str] = ()) -> list[str]:
        """Delete stored chains that never started (announcement only) and were written more than
        ``unstarted_ttl`` seconds before ``now`` (the file's time, not the seller's claim), except
        ``keep`` and chains with lost entries.  Returns the expired auction ids."""
        policy = self._admission
        if policy is None:
            return []
        self._writable()
        expired = []
        for auction, chain in sorted(self._chains.items()):
            if chain.length != 1 or auction in keep or self.is_lost(auction):
                continue
            path = self.path / chain_file_name(auction)
            try:
                written = os.stat(path).st_mtime
            except OSError:
                continue
            if written + policy.unstarted_ttl > now:
                continue
            for doomed in (path, head_path(path)):
                try:
                    os.unlink(doomed)
                except FileNotFoundError:
                    pass
            del self._chains[auction]
            expired.append(auction)
        if expired:
            from peer.ledger.store import _fsync_dir
            _fsync_dir(self.path)
        return expired
