"""One auction round as a node-hosted instance: a :class:`ProviderMachine` behind the node's instance interface.

The machine says when it wants to be woken (``Wake`` effects); the instance
keeps those times, so the host can wait for :meth:`AuctionRound.next_deadline`
of all its rounds and call :meth:`AuctionRound.on_timer` when one is due, as
the node does for its SRA auctions (:mod:`peer.node.instances`).  It also
remembers who submitted which bidders' bids, so the host can tell each
submitter the outcome (and a user its own trades and payment).
"""

from __future__ import annotations

import time
from typing import Any

from peer.auctioneer import messages as m
from peer.auctioneer.effects import Aborted, Decided, Effect, Wake
from peer.auctioneer.provider import ProviderMachine

MAX_TRACKED_BIDDERS = 64  # a submitter of more (a bid client) gets the outcome digest, not each bidder's part


def round_key(round_no: int) -> str:
    return f"auctioneer/{round_no}"


class AuctionRound:
    """One round on one provider node (satisfies :class:`peer.node.instances.Instance`)."""

    def __init__(self, machine: ProviderMachine, owner: str, origin: str | None = None) -> None:
        self.machine = machine
        self.round = machine.config.round
        self._key = round_key(self.round)
        self._owner = owner
        self.origin = origin
        self.finished = False
        self.result: Decided | Aborted | None = None
        self._wakes: list[float] = []
        # submitter key -> the bidders of the bids it sent (None: more than we track)
        self.submitters: dict[bytes, set[bytes] | None] = {}
        self._started = time.perf_counter()
        self._cpu = time.process_time()
        self.phase_times: dict[str, float] = {"collect": 0.0}  # phase -> seconds since the round opened here

    @property
    def key(self) -> str:
        return self._key

    @property
    def owner(self) -> str:
        return self._owner

    # -- the instance interface

    def start(self, now: float) -> list[Effect]:
        return self._take(self.machine.start(now))

    def receive(self, sender: str, msg: Any, now: float) -> list[Effect]:
        who = bytes.fromhex(sender)
        out = self._take(self.machine.on_message(who, msg, now))
        if isinstance(msg, m.BidBatch) and msg.bids:
            self._note_submitter(who, msg)
        return out

    def on_timer(self, now: float) -> list[Effect]:
        due = [t for t in self._wakes if t <= now]
        if not due:
            return []
        self._wakes = [t for t in self._wakes if t > now]
        return self._take(self.machine.on_tick(now))

    def next_deadline(self) -> float | None:
        return None if self.finished or not self._wakes else min(self._wakes)

    # -- bookkeeping

    @property
    def phase(self) -> str:
        return self.machine.phase

    def cpu_seconds(self) -> float:
        return time.process_time() - self._cpu

    def _take(self, effects: list[Effect]) -> list[Effect]:
        out = []
        for e in effects:
            if isinstance(e, Wake):
                self._wakes.append(e.at)
            else:
                if isinstance(e, (Decided, Aborted)):
                    self.result = e
                out.append(e)
        if self.machine.phase not in self.phase_times:
            self.phase_times[self.machine.phase] = time.perf_counter() - self._started
        return out

    def _note_submitter(self, who: bytes, msg: m.BidBatch) -> None:
        held = self.submitters.setdefault(who, set())
        if held is None:
            return
        held.update(b.bidder for b in msg.bids)
        if len(held) > MAX_TRACKED_BIDDERS:
            self.submitters[who] = None

    def notices(self) -> list[tuple[bytes, m.Message]]:
        """What each submitter is told once the round has an output here."""
        result = self.result
        out: list[tuple[bytes, m.Message]] = []
        for who, bidders in sorted(self.submitters.items()):
            if isinstance(result, Aborted):
                out.append((who, m.AbortNotice(self.round, result.reason[:200], result.culprits)))
                continue
            assert isinstance(result, Decided)
            o = result.outcome.outcome
            digest = o.digest()
            out.append((who, m.OutcomeNotice(self.round, digest, result.outcome.signatures,
                                             len(o.allocation.trades))))
            if bidders:
                a = o.allocation
                out.append((who, m.BidderOutcome(
                    self.round, digest,
                    tuple((t.user, t.provider, t.quantity) for t in a.trades if t.user in bidders or t.provider in bidders),
                    tuple((k, v) for k, v in a.charges if k in bidders),
                    tuple((k, v) for k, v in a.credits if k in bidders),
                )))
        return out
