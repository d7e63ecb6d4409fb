"""Admission: what gossip may make a node store, and for how long (#16.1).

Without it every node writes every validly signed announcement it hears to
disk, for good: one neighbour flooding announcements under throwaway keys left
20,000 chain files on a node two hops away.  With an :class:`AdmissionPolicy`
set on the store (``LedgerStore.set_admission``):

* An entry of an auction the node does not hold goes to a bounded, in-memory
  **pending area** instead of the disk.  The node calls
  ``store.admit(auction)`` when the auction becomes relevant (its seller's
  Invite arrived); that merges what is pending for it (verified as any merge)
  and remembers the id, so entries arriving later are merged directly.
  Announcements are signature-checked before they are held (a forged one
  cannot push out a real one); each seller may have at most
  ``max_pending_per_seller`` announcements pending and each auction
  ``max_pending_per_auction`` entries; past ``max_pending`` entries in all the
  oldest auction is dropped; pending entries older than ``pending_ttl`` are
  forgotten.  A hop is checked against the entry before it when that is held
  (a forged hop must not take the real one's place).  Nothing pending is
  summarized, digested or served.
* Auctions the node already holds, or has lost entries of, are merged as before,
  up to ``max_chain_length`` entries (a chain whose last buyer is an attacker's
  key can otherwise be extended with throwaway hops for ever).
* **Vouching** (``merge(..., vouched_by=neighbour)``): a neighbour's anti-entropy
  answer may make us store a *started* chain (announcement and at least one
  hop) of an auction we were never invited to: that neighbour vouches for it.
  Each neighbour may have at most ``max_vouched_per_neighbour`` chains stored
  here on its word, each at most ``max_vouched_length`` entries long, and at
  most ``vouch_rate`` a second (``vouch_burst`` at once): storing a chain costs
  a few fsyncs the node waits for, and a flood of them stalled the victim's
  loop.  Past that the rest of its answer is dropped (an honest one comes again
  at the next exchange).  Which chains were vouched for, and by whom, is kept
  on disk (``vouched.json``) because a node serves on only the chains it has a
  stake in (invited, or its own), never the ones it holds on a neighbour's
  word: so vouching reaches one hop, and a flooding neighbour can make only its
  own neighbours store anything, a bounded amount.  An Invite for a vouched
  auction (``admit``) makes it ours.
* **Fraud proofs** are self-verifying, so one about a throwaway chain is as
  valid as a real one: a relayed proof is kept only for an auction the node
  holds (or was admitted to, or lost), and at most ``max_proofs_per_auction``
  per auction, whether relayed or found here.
* A seller may have at most ``max_unstarted_per_seller`` stored chains that
  never started (announcement only); ``expire_unstarted`` deletes those older
  than ``unstarted_ttl`` (age from the file's own time, not the seller's
  claimed ``created_at_ms``), except the ids the node says to keep.

Time is an input (``now``, seconds; the node passes its wall clock).
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from peer.ledger.entries import Announcement, Entry, InvalidEntry, SignedHop, verify_announcement, verify_hop


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    max_pending: int = 1024  # entries held in memory, in all
    max_pending_per_seller: int = 16  # announcements pending per seller key
    max_pending_per_auction: int = 64  # entries pending per auction (its announcement and hops)
    pending_ttl: float = 600.0  # seconds an entry may wait for its auction to become relevant
    max_unstarted_per_seller: int = 8  # stored announcement-only chains per seller
    unstarted_ttl: float = 3600.0  # seconds before a stored chain that never started may be expired
    max_admitted: int = 4096  # admitted auction ids remembered (LRU)
    max_vouched_per_neighbour: int = 256  # chains stored on one neighbour's word (anti-entropy)
    # ... and how fast: each is a few fsyncs, which the node's loop waits for, so a flood of
    # vouching must not stall it (a late joiner's catch-up takes the burst, then this rate).
    vouch_rate: float = 2.0  # chains per second, per neighbour
    vouch_burst: float = 32.0
    max_vouched_length: int = 64  # entries of a chain held on a neighbour's word
    max_chain_length: int = 1024  # entries of any chain merged from peers (our own appends: no bound)
    # Fraud proofs kept per auction: the first names the culprit; more pairs of its signatures add
    # nothing but disk, and a flooder holding a chain's keys can sign any number of them.
    max_proofs_per_auction: int = 4
    # False: no pending area; unknown auctions are stored at once, but still within
    # max_unstarted_per_seller and subject to expire_unstarted.
    hold_pending: bool = True


@dataclass(slots=True)
class _Held:
    since: float
    entries: dict[int, Entry] = field(default_factory=dict)  # position -> entry (first copy wins)
    seller: str | None = None


class PendingArea:
    """Entries of auctions not (yet) relevant: bounded in count, per seller, per auction and in time."""

    def __init__(self, policy: AdmissionPolicy) -> None:
        self.policy = policy
        self._held: OrderedDict[str, _Held] = OrderedDict()  # oldest first
        self._size = 0
        self._per_seller: dict[str, int] = {}

    def __len__(self) -> int:
        return self._size

    def __contains__(self, auction: str) -> bool:
        return auction in self._held

    def hold(self, entry: Entry, now: float) -> str | None:
        """Keep ``entry`` until its auction is admitted.  None if held, else why not."""
        self.sweep(now)
        held = self._held.get(entry.auction)
        if isinstance(entry, SignedHop) and held is not None:
            # A hop is checked against the entry before it when that is held (the announcement is
            # verified when held, each hop so): a forged hop must not take the real one's place.
            prev = held.entries.get(entry.position - 1)
            if prev is not None and (why := _invalid(prev, entry)) is not None:
                return why
            current = held.entries.get(entry.position)
            if current is not None and current.digest != entry.digest and prev is not None:
                if _invalid(prev, current) is None:
                    return "pending area: another valid entry holds this position"
                held.entries[entry.position] = entry  # the one held first was forged
                return None
        if held is not None and entry.position in held.entries:
            return None  # a copy: nothing new
        if held is not None and len(held.entries) >= self.policy.max_pending_per_auction:
            return f"pending area: auction {entry.auction!r} already has {len(held.entries)} entries waiting"
        if isinstance(entry, Announcement):
            if held is not None and held.seller is not None:
                return "pending area: another announcement of this auction is waiting"
            try:
                verify_announcement(entry)
            except InvalidEntry as exc:
                return str(exc)
            if self._per_seller.get(entry.seller, 0) >= self.policy.max_pending_per_seller:
                return (f"pending area: seller {entry.seller[:12]} already has "
                        f"{self.policy.max_pending_per_seller} announcements waiting")
        if held is None:
            held = self._held[entry.auction] = _Held(now)
        held.entries[entry.position] = entry
        self._size += 1
        if isinstance(entry, Announcement):
            held.seller = entry.seller
            self._per_seller[entry.seller] = self._per_seller.get(entry.seller, 0) + 1
        while self._size > self.policy.max_pending and self._held:
            self._drop(next(iter(self._held)))
        return None

    def take(self, auction: str) -> list[Entry]:
        """Everything held for ``auction`` (in chain order), now no longer pending."""
        held = self._held.get(auction)
        if held is None:
            return []
        self._drop(auction)
        return [held.entries[p] for p in sorted(held.entries)]

    def sweep(self, now: float) -> None:
        while self._held:
            auction, held = next(iter(self._held.items()))
            if held.since + self.policy.pending_ttl > now:
                return
            self._drop(auction)

    def _drop(self, auction: str) -> None:
        held = self._held.pop(auction)
        self._size -= len(held.entries)
        if held.seller is not None:
            left = self._per_seller[held.seller] - 1
            if left:
                self._per_seller[held.seller] = left
            else:
                del self._per_seller[held.seller]


def _invalid(prev: Entry, hop: SignedHop) -> str | None:
    try:
        verify_hop(prev, hop)
    except InvalidEntry as exc:
        return str(exc)
    return None


class Admitted:
    """Auction ids the node said are relevant (bounded, most recent kept)."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, auction: str) -> None:
        self._ids[auction] = None
        self._ids.move_to_end(auction)
        while len(self._ids) > self.bound:
            self._ids.popitem(last=False)

    def __contains__(self, auction: str) -> bool:
        return auction in self._ids


class Vouched:
    """Stored chains we hold only on a neighbour's word: auction -> that neighbour (hex key).

    Persisted in ``vouched.json`` beside the chains (atomic replace), so a restart
    still knows which chains it may not serve on; a chain missing from the file
    is one we have a stake in (files written before vouching existed included).
    """

    FILE = "vouched.json"

    def __init__(self, path: Path) -> None:
        self.path = path / self.FILE
        self._by: dict[str, str] = {}
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError, RecursionError):
            raw = {}
        if isinstance(raw, dict):
            self._by = {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}
        self._count: dict[str, int] = {}
        for neighbour in self._by.values():
            self._count[neighbour] = self._count.get(neighbour, 0) + 1

    def __contains__(self, auction: str) -> bool:
        return auction in self._by

    def __len__(self) -> int:
        return len(self._by)

    def by(self, auction: str) -> str | None:
        return self._by.get(auction)

    def count(self, neighbour: str) -> int:
        return self._count.get(neighbour, 0)

    def add(self, auction: str, neighbour: str) -> None:
        if auction in self._by:
            return
        self._by[auction] = neighbour
        self._count[neighbour] = self._count.get(neighbour, 0) + 1

    def discard(self, auction: str) -> bool:
        neighbour = self._by.pop(auction, None)
        if neighbour is None:
            return False
        left = self._count[neighbour] - 1
        if left:
            self._count[neighbour] = left
        else:
            del self._count[neighbour]
        return True

    def keep_only(self, auctions: Collection[str]) -> None:
        for auction in [a for a in self._by if a not in auctions]:
            self.discard(auction)

    def save(self) -> None:
        """Write the file atomically (tmp, fsync, replace, fsync the directory).  Raises OSError."""
        tmp = self.path.with_name(self.FILE + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(self._by, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Buckets:
    """Token buckets per key (``rate`` per second up to ``burst``), the time passed in; bounded LRU."""

    def __init__(self, rate: float, burst: float, bound: int = 1024) -> None:
        self.rate, self.burst, self.bound = rate, burst, bound
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def available(self, key: str, now: float) -> int:
        tokens, at = self._state.get(key, (self.burst, now))
        return int(min(self.burst, tokens + max(0.0, now - at) * self.rate))

    def take(self, key: str, now: float, n: int) -> None:
        tokens, at = self._state.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate) - n
        self._state[key] = (tokens, max(at, now))
        self._state.move_to_end(key)
        while len(self._state) > self.bound:
            self._state.popitem(last=False)
