"""The admission half of :class:`peer.ledger.store.LedgerStore` (mixed in; see ``admission.py``)."""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from typing import TYPE_CHECKING

from peer.ledger.admission import AdmissionPolicy, Admitted, Buckets, PendingArea, Vouched
from peer.ledger.entries import Announcement, Entry, FraudProof, SignedHop
from peer.ledger.heads import head_path
from peer.ledger.records import chain_file_name
from peer.ledger.replicate import MergeResult, Rejection
from peer.ledger.store_report import unavailable

if TYPE_CHECKING:
    from peer.ledger.store import LedgerStore


class AdmissionGlue:
    """Mixed into LedgerStore; ``self`` is the store."""

    _admission: AdmissionPolicy | None = None
    _pending: PendingArea | None = None
    _admitted: Admitted | None = None
    _vouched: Vouched | None = None
    _vouch_rate: Buckets | None = None

    def set_admission(self: LedgerStore, policy: AdmissionPolicy | None) -> None:
        """Bound what gossip may make this store keep (None: keep every valid entry, as before)."""
        self._admission = policy
        self._pending = PendingArea(policy) if policy is not None and policy.hold_pending else None
        self._admitted = Admitted(policy.max_admitted) if policy is not None else None
        self._vouched = Vouched(self.path) if policy is not None else None
        self._vouch_rate = Buckets(policy.vouch_rate, policy.vouch_burst) if policy is not None else None
        if self._vouched is not None:
            self._vouched.keep_only(self._chains.keys())

    def expects(self: LedgerStore, auction: str) -> bool:
        """Is ``auction`` known here (stored, lost, admitted or pending)?  Entries of any other
        auction are new to this node: what a neighbour may introduce is bounded (the relay screen)."""
        return (auction in self._chains or self.is_lost(auction)
                or (self._admitted is not None and auction in self._admitted)
                or (self._pending is not None and auction in self._pending))

    def _relevant_proofs(self: LedgerStore, proofs: list[FraudProof]) -> list[FraudProof]:
        """Relayed proofs worth checking and keeping: about an auction we hold, were admitted to or
        lost (a proof about any other chain is nothing to us, and costs a flooder nothing)."""
        if self._admission is None:
            return proofs
        return [p for p in proofs if p.auction in self._chains or self.is_lost(p.auction)
                or (self._admitted is not None and p.auction in self._admitted)]

    def _proof_room(self: LedgerStore, auction: str, kept: dict[str, int]) -> bool:
        """May one more proof about ``auction`` be kept?  ``kept`` counts the proofs kept per auction."""
        return self._admission is None or kept.get(auction, 0) < self._admission.max_proofs_per_auction

    def vouched_by(self: LedgerStore, auction: str) -> str | None:
        """The neighbour on whose word we hold ``auction`` (None: we have a stake in it, or do not hold it)."""
        return None if self._vouched is None else self._vouched.by(auction)

    def vouched(self: LedgerStore, neighbour: str) -> int:
        """Chains stored on ``neighbour``'s word."""
        return 0 if self._vouched is None else self._vouched.count(neighbour)

    def _save_vouched(self: LedgerStore) -> None:
        assert self._vouched is not None
        try:
            self._vouched.save()
        except OSError as exc:
            self.failure = unavailable(f"{self._vouched.path}", exc)
            raise self.failure from exc

    def pending(self: LedgerStore) -> int:
        """Entries waiting in the pending area."""
        return 0 if self._pending is None else len(self._pending)

    def admit(self: LedgerStore, auction: str, *, now: float | None = None) -> MergeResult:
        """``auction`` is relevant (its seller's Invite arrived): merge what is pending for it and
        merge its later entries directly.  Raises as ``merge`` does."""
        if self._admitted is not None:
            self._admitted.add(auction)
        if self._vouched is not None and self._vouched.discard(auction):
            self._save_vouched()  # invited: a stake of ours now, served on like any
        held = self._pending.take(auction) if self._pending is not None else []
        return self.merge(held, now=now)

    def _screen(self: LedgerStore, entries: list[Entry], now: float | None, vouched_by: str | None = None,
                ) -> tuple[list[Entry], list[Entry], list[Rejection], set[str]]:
        """Split what a peer sent into (merge now, held pending, refused, auctions vouched for)."""
        policy = self._admission
        if policy is None:
            return entries, [], [], set()
        now = time.time() if now is None else now
        go: list[Entry] = []
        held: list[Entry] = []
        refused: list[Rejection] = []
        new_by_seller: dict[str, int] = {}
        vouching = self._vouching(entries, vouched_by, now) if vouched_by is not None else set()
        for auction in sorted(vouching):
            assert self._pending is not None
            # What waited for it goes with it, checked by the merge like the rest.
            go.extend(e for e in self._pending.take(auction) if e.position < policy.max_vouched_length)
        for entry in sorted(entries, key=lambda e: (e.auction, e.position)):
            auction = entry.auction
            known = auction in self._chains or self.is_lost(auction)
            relevant = self._admitted is not None and auction in self._admitted
            if known or relevant or auction in vouching:
                on_word = auction in vouching or (self._vouched is not None and auction in self._vouched)
                bound = min(policy.max_chain_length, policy.max_vouched_length) if on_word else policy.max_chain_length
                if entry.position >= bound:
                    why = " (held on a neighbour's word)" if on_word else ""
                    refused.append(Rejection(entry, f"chain of auction {auction!r} would exceed {bound} entries{why}"))
                else:
                    go.append(entry)
                continue
            if vouched_by is not None:
                # A neighbour's answer for a chain we neither hold nor take on its word now (over its
                # quota, or not started): dropped, not held.  An honest answer comes again at the next
                # exchange; holding a flood of them would only churn the pending area and its checks.
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
        return go, held, refused, vouching

    def _vouching(self: LedgerStore, entries: list[Entry], neighbour: str, now: float) -> set[str]:
        """Auctions ``neighbour`` may make us store now: started chains (a hop in this batch, and
        the announcement in it or pending) that we do not hold, within its quota and rate."""
        policy = self._admission
        assert policy is not None and self._vouched is not None and self._vouch_rate is not None
        if self._pending is None:
            return set()
        announced = {e.auction for e in entries if isinstance(e, Announcement)}
        started = {e.auction for e in entries if isinstance(e, SignedHop)}
        room = min(policy.max_vouched_per_neighbour - self._vouched.count(neighbour),
                   self._vouch_rate.available(neighbour, now))
        out: set[str] = set()
        for auction in sorted(started):
            if room <= 0:
                break
            if self.expects(auction) and auction not in self._pending:  # held, lost or admitted: merged anyway
                continue
            if auction in announced or auction in self._pending:
                out.add(auction)
                room -= 1
        if out:
            self._vouch_rate.take(neighbour, now, len(out))
        return out

    def _record_vouched(self: LedgerStore, auctions: set[str], neighbour: str) -> None:
        """After a merge: the vouched-for auctions that are now stored are held on ``neighbour``'s word."""
        if self._vouched is None:
            return
        stored = [a for a in sorted(auctions) if a in self._chains]
        for auction in stored:
            self._vouched.add(auction, neighbour)
        if stored:
            self._save_vouched()

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
        if expired and self._vouched is not None and any(self._vouched.discard(a) for a in list(expired)):
            self._save_vouched()
        if expired:
            from peer.ledger.store import _fsync_dir
            _fsync_dir(self.path)
        return expired
