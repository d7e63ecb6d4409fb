"""Catching up: restarts and continuous anti-entropy (a collaborator the node calls).

The node exchanges what it holds with each neighbour on every link-up (a
restart included) and every ``SUMMARY_INTERVAL`` seconds, on a topic that is
never relayed (so anti-entropy costs a node's own links only).  The exchange
scales with the ledger (``peer.ledger.reconcile``, #15.10): a node sends its
bucket *digests* (one small payload, whatever the number of chains); a
neighbour answers with its summaries of the buckets that differ; the answer to
those carries the entries the neighbour lacks (an entry we fsync'd but never
got out is not lost) and asks for what we lack.  A small ledger (up to
``FULL_SUMMARIES_MAX`` chains) skips the first step and sends its summaries,
covering every bucket, at once.  Every payload is cut to fit
gossip (``split_payload``), so a node with thousands of auctions can still
restart.  A node that joined late, was cut off, or lost the tail of a chain
file (#15.9) ends with the same ledger copies without a restart.  Answers are
rate-limited per origin, so neither digests nor summaries can make a node
flood chains over and over; only neighbours are answered, each answer on the
asker's link alone.

What anti-entropy covers: chains that *started* (a hop, countersigned by its
buyer).  With an admission policy (#16.1) a node does not store announcements
of auctions it was never invited to (they wait in a bounded pending area and
are forgotten), so announcement-only chains would make two honest nodes'
digests differ for good; and an announcement alone is what costs an attacker
nothing.  So digests, summaries and answers leave them out.  A neighbour's own
anti-entropy answer *vouches* for the started chains it carries: the store
keeps a bounded number on its word (``LedgerStore.merge(vouched_by=...)``, per
neighbour: 256 in all, 2 a second after a burst of 32).  We send a neighbour
whole chains only where we have a stake (:func:`servable`), never one we hold
on another neighbour's word, so vouching reaches one hop: a late joiner gets
its neighbours' auctions, and a flooder's chains stop at its own neighbours.
Announcements still travel by the live flood, and a chain a neighbour holds
part of is completed by the exchange like any other.

The same periodic exchange expires stored chains that never started
(announcement only, admission policy #16.1), except auctions in flight here.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from peer.ledger import (
    Chain,
    Digests,
    Entries,
    Entry,
    LedgerStore,
    StoreError,
    Summaries,
    answer_digests,
    answer_summaries,
    bucket_digests,
)
from peer.ledger.codec import BUCKETS
from peer.ledger.reconcile import covering_summaries

if TYPE_CHECKING:
    from peer.node.services import NodeServices

CATCHUP_COOLDOWN = 5.0  # seconds between two answers to one origin's digests or summaries
SUMMARY_TOPIC = "ledger-sum"  # anti-entropy for neighbours only: never relayed
SUMMARY_INTERVAL = 10.0  # seconds between two periodic exchanges
# Chains up to which a node says what it holds outright (summaries covering every bucket, at
# most ~8 KiB: one round trip less) rather than by bucket digests.
FULL_SUMMARIES_MAX = 128
EXPIRY_INTERVAL = 60.0  # seconds between two sweeps of stored chains that never started
QUIET_REFRESH = 6  # an unchanged ledger is still offered every this many SUMMARY_INTERVALs


def servable(store: LedgerStore, entries: list[Entry], theirs: Summaries) -> list[Entry]:
    """What of ``entries`` we may send a neighbour whose summaries are ``theirs``: a chain it does not
    hold at all only if we have a stake in it, never one we hold on another neighbour's word (#16.1:
    vouching reaches one hop, so a flooding neighbour's chains stop at its own neighbours).  The rest
    of a chain it does hold goes whoever vouched for it: that completes a copy, it adds no chain."""
    holds = {s.auction for s in theirs.summaries}
    return [e for e in entries if e.auction in holds or store.vouched_by(e.auction) is None]


class Catchup:
    """Ledger catch-up for one node."""

    def __init__(self, node: NodeServices) -> None:
        self.node = node
        self._answered: dict[bytes, float] = {}  # origin -> when we last answered its summaries
        self._digested: dict[bytes, float] = {}  # origin -> when we last answered its digests
        self.next_exchange = -math.inf  # trio time of the next periodic exchange
        self.next_expiry = -math.inf  # trio time of the next sweep of unstarted chains
        self._restarted = False  # we restarted with chains on disk (offer_recovered ran)
        self._flooded: set[str] = set()  # entries a restarted node flooded once (by hash)
        self._offered: tuple[int, int] | None = None  # the ledger's fingerprint at our last offer
        self._offered_at = -math.inf
        self._repeats = 0  # offers in a row of that same fingerprint

    def synced(self) -> list[Chain]:
        """The chains anti-entropy covers: those that started (see the module doc)."""
        return [c for c in self.node.store.chains() if c.length > 1]

    def offer_recovered(self) -> None:
        """After a restart: what we hold, which our neighbours answer where we differ (what we
        hold that they lack goes out, flooded once, what we lack comes back)."""
        self._restarted = True
        self._offer(even_empty=True)  # a restart is rare: ask at once, whatever we hold

    def _offer(self, *, even_empty: bool = False) -> None:
        synced = self.synced()
        if not synced and not even_empty:
            # Nothing to offer, and nothing lost by not saying so: a neighbour that holds chains
            # offers them itself (on this same link-up, and periodically while its ledger
            # changes), and our answer to its offer asks for every bucket where we lack one.
            # At a launch every ledger is empty, and these empty offers (every link-up offers
            # to every linked neighbour) were a fifth of a hub's start-up CPU.
            return
        if len(synced) <= FULL_SUMMARIES_MAX:
            self.node.publish_scoped(covering_summaries(synced, range(BUCKETS)))
        else:
            self.node.publish_scoped(bucket_digests(synced))

    def exchange(self, now: float) -> None:
        """Tell our neighbours what we hold (on link-up, and periodically through ``periodic``)."""
        self.next_exchange = now + SUMMARY_INTERVAL
        fingerprint = self._fingerprint()
        self._repeats = self._repeats + 1 if fingerprint == self._offered else 1
        self._offered, self._offered_at = fingerprint, now
        self._offer()
        if now >= self.next_expiry:
            self.next_expiry = now + EXPIRY_INTERVAL
            self.expire()

    def periodic(self, now: float) -> None:
        """The periodic exchange: skipped while our ledger is as it was at our last offer.

        An offer costs us and each neighbour work in proportion to the ledger (summaries or
        bucket digests of every chain), every ``SUMMARY_INTERVAL`` on every node; in a stream
        of auctions it was a fifth of a node's CPU.  Unchanged, our last offer still stands:
        whatever a neighbour gains, its own offer (it changed) makes us answer both ways.  A
        lost offer is repeated at least every ``QUIET_REFRESH`` intervals, and every link-up
        offers at once.  Each state is offered in two periods before we fall quiet: a neighbour
        that answered someone's offer moments before ours ignores ours (``CATCHUP_COOLDOWN``),
        and the second offer comes after its cooldown.
        """
        if (self._fingerprint() != self._offered or self._repeats < 2
                or now >= self._offered_at + QUIET_REFRESH * SUMMARY_INTERVAL):
            self.exchange(now)
            return
        self.next_exchange = now + SUMMARY_INTERVAL
        if now >= self.next_expiry:
            self.next_expiry = now + EXPIRY_INTERVAL
            self.expire()

    def _fingerprint(self) -> tuple[int, int]:
        """What changes whenever a chain is added or grows (no hashing: this runs every tick)."""
        chains = self.node.store.chains()
        return len(chains), sum(c.length for c in chains)

    def expire(self) -> list[str]:
        """Delete stored chains that never started and are old (admission policy), except ours in flight."""
        store = self.node.store
        keep = {c.auction for c in store.chains() if c.length == 1 and self.node.is_live(c.auction)}
        try:
            # The store compares with its files' own times: the host's clock, not a protocol clock.
            expired = store.expire_unstarted(time.time(), keep=keep)
        except (StoreError, OSError):
            return []  # not writable now: the disk-health probe reports it
        if expired:
            self.node.emit("expired", auctions=len(expired))
        return expired

    def _neighbour_due(self, origin: bytes, answered: dict[bytes, float], now: float) -> bool:
        if origin.hex() not in self.node.neighbours:
            return False
        return now >= answered.get(origin, -math.inf) + CATCHUP_COOLDOWN

    def answer_digests(self, origin: bytes, payload: Digests, now: float) -> None:
        """A neighbour's bucket digests: our summaries of the buckets where we differ."""
        if not self._neighbour_due(origin, self._digested, now):
            return
        ours = answer_digests(self.synced(), payload)
        if ours is None:
            return
        self._digested[origin] = now
        self.node.publish_scoped(ours, only=origin.hex())  # the asker's question: the others did not ask

    def answer_summaries(self, origin: bytes, payload: Summaries, now: float) -> None:
        """A neighbour says what it holds: send what it lacks, ask for what we lack (rate-limited)."""
        if not self._neighbour_due(origin, self._answered, now):
            return
        answer = answer_summaries(self.synced(), payload)
        # Everything it lacks, chains it never heard of included (a late joiner holds none);
        # not auctions in flight here: their own flood is on its way to it.
        entries = [e for e in servable(self.node.store, answer.entries, payload) if not self.node.is_live(e.auction)]
        if not entries and answer.summaries is None:
            return
        self._answered[origin] = now
        if entries:
            self.node.emit("catchup", peer=self.node.n(origin.hex()), entries=len(entries))
            # To the asker only (never relayed): flooding the answer would cost every link in the
            # network, once per neighbour that was a little behind, and even sending it to all our
            # neighbours made a hub send its whole ledger to each of them whenever one joined.
            # The others ask for what they lack themselves (their own periodic offers).
            self.node.publish_scoped(Entries(tuple(entries)), only=origin.hex())
            if self._restarted:
                # Except, once each, what a restarted node holds that a neighbour lacks: an entry
                # we fsync'd but never got out is missing everywhere, not only next door.
                fresh = [e for e in entries if e.hash not in self._flooded]
                self._flooded.update(e.hash for e in fresh)
                if fresh:
                    self.node.publish(Entries(tuple(fresh)))
        if answer.summaries is not None:
            self.node.publish_scoped(answer.summaries, only=origin.hex())
