"""The part of :class:`peer.node.node.Node` that handles faults (mixed into Node).

None of this runs in a fault-free auction: the stall watchdog's bound is
never reached, nothing was on disk at start, and nobody publishes summaries.
See docs/adversaries-real.md.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import trio

from peer.ledger import Entries, Summaries

if TYPE_CHECKING:
    from peer.node.node import Node

CATCHUP_COOLDOWN = 5.0  # seconds between two answers to one origin's ledger summaries
CATCHUP_BATCH = 100  # entries per answer (a hop is a few hundred bytes; gossip payloads <= 60 KiB)


class RecoveryGlue:
    """Mixed into Node; ``self`` is the Node."""


    STALL_GRACE = 2.0  # seconds on top of the protocol's own bound (tests lower it)

    def stall_after(self: Node) -> float:
        """How long an auction may show no progress before this node gives up on it.

        In a live auction every node sees progress at least this often: the first
        hop entry comes at most ``reply_timeout + context_timeout`` after the seller
        started (which is before any node joined), and each later entry or the
        settlement at most ``context_timeout`` after the one before (a host closes its
        hop within that).  So the bound is only passed when a node on the resale path
        has crashed or gone silent.  It assumes every node runs with the seller's
        timeouts, as ``tools/launch`` arranges.

        Under guarded resale no entry appears before the whole resale chain has
        confirmed, which the seller waits ``confirm_timeout`` for; the bound allows
        one lapsed offer of hers (a crashed or silent first buyer) on top.
        """
        c = self.config
        bound = c.reply_timeout + c.context_timeout + 2 * c.gather_window + self.STALL_GRACE
        return bound if c.paper_resale else bound + 2 * c.confirm_timeout

    def _stall_deadline(self: Node) -> float | None:
        if self.machine is None or self.done.is_set() or self._progress_at is None:
            return None
        return self._progress_at + self.stall_after()

    def _check_stall(self: Node) -> None:
        """Abort (log it, count as done) an auction that stopped moving: a clean end, never a hang."""
        deadline = self._stall_deadline()
        if deadline is None or trio.current_time() < deadline:
            return
        m = self.machine
        assert m is not None
        chain = self.store.chain(m.auction)
        hops = 0 if chain is None else len(chain.hops)
        holder = m.seller if chain is None or not chain.hops else chain.hops[-1].body.buyer
        if self.settled is not None:
            reason = (f"settled, but our ledger copy lacks hops {hops + 1}..{self.settled.hops} "
                      f"after {self.stall_after():g} s")
        else:
            reason = (f"no progress for {self.stall_after():g} s while {m.stage.value}: a node on the "
                      f"resale path crashed or went silent; the item stays with {self._n(holder)}, "
                      f"who bought it in hop {hops}" if hops else
                      f"no progress for {self.stall_after():g} s while {m.stage.value}: a node on the "
                      f"resale path crashed or went silent; the seller keeps the item")
        unanswered = [e for e in m.entries if e.seller == self.me and e.hop > hops]
        if unanswered:  # we sold, but the buyer's countersigned entry never reached us
            e = unanswered[-1]
            reason += (f"; we awarded hop {e.hop} to {self._n(e.buyer)} and its countersigned entry never "
                       f"came back: if it signed, its own copy is one hop ahead and says it holds the item")
        self.aborted = reason
        self._emit("aborted", auction=m.auction, reason=reason, stage=m.stage.value, hops=hops,
                   holder=self._n(holder), holder_key=holder, settled=self.settled is not None)
        self.recent.append(f"aborted: {reason}")
        self.done.set()

    async def _report_recovery(self: Node) -> None:
        report = await trio.to_thread.run_sync(self.store.verify_all)
        self._emit("recovered", ok=report.ok, auctions=dict(sorted(self._recovered.items())),
                   fraud_proofs=report.fraud_proofs, issues=[i.reason for i in self.store.issues])

    def _offer_recovered(self: Node) -> None:
        """After a restart: flood what we hold (an entry we fsync'd but never got out is not
        lost) and our summaries, which our neighbours answer with what we missed."""
        entries = [e for c in self.store.chains() for e in c.entries]
        for start in range(0, len(entries), CATCHUP_BATCH):
            self._publish(Entries(tuple(entries[start:start + CATCHUP_BATCH])))
        self._publish(Summaries(tuple(self.store.summaries())))

    def _answer_summaries(self: Node, origin: bytes, payload: Summaries) -> None:
        """A neighbour says what it holds: flood what it lacks (rate-limited per origin,
        so summaries cannot be used to make us flood chains over and over)."""
        if origin.hex() not in self.neighbours:
            return
        now = trio.current_time()
        if now < self._answered.get(origin, -math.inf) + CATCHUP_COOLDOWN:
            return
        self._answered[origin] = now
        asked = {s.auction for s in payload.summaries}
        entries = [e for e in self.store.entries_for(payload.summaries) if e.auction in asked]
        if entries:
            self._emit("catchup", peer=self._n(origin.hex()), entries=len(entries))
        for start in range(0, len(entries), CATCHUP_BATCH):
            self._publish(Entries(tuple(entries[start:start + CATCHUP_BATCH])))
