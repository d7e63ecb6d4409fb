"""Catching up: restarts and continuous anti-entropy (a collaborator the node calls).

After a restart the node floods what it holds (an entry we fsync'd but never
got out is not lost) and its summaries, which neighbours answer with what we
missed.  While it runs, it also exchanges summaries with each neighbour on every
link-up and every ``SUMMARY_INTERVAL`` seconds, and answers them, on a topic
that is never relayed (so anti-entropy costs a node's own links only), so a
node that joined late or was cut off ends with the same ledger copies without
a restart.  Answers are rate-limited per origin, so summaries
cannot be used to make a node flood chains over and over.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from peer.ledger import Entries, Summaries

if TYPE_CHECKING:
    from peer.node.services import NodeServices

CATCHUP_COOLDOWN = 5.0  # seconds between two answers to one origin's ledger summaries
CATCHUP_BATCH = 100  # entries per answer (a hop is a few hundred bytes; gossip payloads <= 60 KiB)
SUMMARY_TOPIC = "ledger-sum"  # summaries for neighbours only: never relayed
SUMMARY_INTERVAL = 10.0  # seconds between two periodic summary exchanges


class Catchup:
    """Ledger catch-up for one node."""

    def __init__(self, node: NodeServices) -> None:
        self.node = node
        self._answered: dict[bytes, float] = {}  # origin -> when we last answered its summaries
        self.next_exchange = -math.inf  # trio time of the next periodic summary exchange

    def offer_recovered(self) -> None:
        """After a restart: flood what we hold (an entry we fsync'd but never got out is not
        lost) and our summaries, which our neighbours answer with what we missed."""
        entries = [e for c in self.node.store.chains() for e in c.entries]
        for start in range(0, len(entries), CATCHUP_BATCH):
            self.node.publish(Entries(tuple(entries[start:start + CATCHUP_BATCH])))
        self.node.publish(Summaries(tuple(self.node.store.summaries())))

    def exchange(self, now: float) -> None:
        """Tell our neighbours what we hold (on link-up and periodically)."""
        self.next_exchange = now + SUMMARY_INTERVAL
        self.node.publish_scoped(Summaries(tuple(self.node.store.summaries())))

    def answer_summaries(self, origin: bytes, payload: Summaries, now: float) -> None:
        """A neighbour says what it holds: flood what it lacks (rate-limited per origin)."""
        if origin.hex() not in self.node.neighbours:
            return
        if now < self._answered.get(origin, -math.inf) + CATCHUP_COOLDOWN:
            return
        # Everything it lacks, chains it never heard of included (a late joiner holds none);
        # not auctions in flight here: their own flood is on its way to it.
        entries = [e for e in self.node.store.entries_for(payload.summaries) if not self.node.is_live(e.auction)]
        if not entries:
            return
        self._answered[origin] = now
        self.node.emit("catchup", peer=self.node.n(origin.hex()), entries=len(entries))
        # To our neighbours only (never relayed): flooding the answer would cost every link
        # in the network, once per neighbour that was a little behind.
        for start in range(0, len(entries), CATCHUP_BATCH):
            self.node.publish_scoped(Entries(tuple(entries[start:start + CATCHUP_BATCH])))
