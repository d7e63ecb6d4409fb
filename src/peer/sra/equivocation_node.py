"""What a machine does with a neighbour proved to have equivocated its stage-2 Bid.

Mixed into :class:`peer.sra.machine.SraNode` (``self`` is the node).  The
proof itself (:mod:`peer.sra.equivocation`) is checked by the node shell; the
machine is told only who, via :meth:`Convictions.convict`.

The rule: a convicted node's bids count for nothing in this auction.  It
leaves every set that would make it a bidder here (our tree children, the
participants of the hop we host, the convergecasts we wait on) and any later
Bid, Decline, context bid, Confirm or Refuse from it is refused.  When the
proof arrives before stage 3 (the usual case, see docs/protocol.md) the
culprit takes part in no local auction, so it can neither buy nor set a
price; its subtree competes only through the hosts it is itself invited by.
Its Opens and context requests are still answered: refusing them would cost
honest nodes, not the culprit.  A convicted buyer of an outstanding Offer is
treated as a lapsed one (the host reruns without it); a sale already made is
not undone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peer.errors import RemoteProtocolError
from peer.sra.effects import Effect
from peer.sra.messages import Bid, Confirm, ContextBid, ContextReply, Decline, Refuse

if TYPE_CHECKING:
    from peer.sra.machine import SraNode

#: Messages that make their sender a bidder here: refused from a convicted node.
BIDDING = (Bid, Decline, ContextReply, ContextBid, Confirm, Refuse)


class Convictions:
    """The machine's side of bid-equivocation proofs (mixed into SraNode)."""

    __slots__ = ()  # SraNode keeps the state in slots (see its docstring)

    def awaiting_reply(self: SraNode, sender: str) -> bool:
        """Does stage 2 still wait for ``sender``'s Bid or Decline?  (The shell takes its receipts only then.)"""
        return sender in self._pending

    def convict(self: SraNode, culprit: str, now: float) -> list[Effect]:
        """``culprit`` signed two different stage-2 Bids in this auction (the shell checked the proof)."""
        effects = self._convict(culprit, now)
        return self._sent(self._deviate(effects) if self._rewrite else effects)

    def _refuse_convicted(self: SraNode, sender: str, msg: object) -> None:
        if sender in self.convicted and isinstance(msg, BIDDING):
            raise RemoteProtocolError(sender, "proved to have signed two different stage-2 bids in this "
                                              "auction: its bids are refused")

    def _convict(self: SraNode, culprit: str, now: float) -> list[Effect]:
        if culprit == self.id or culprit in self.convicted:
            return []
        self.convicted = self.convicted | {culprit}
        self.children.pop(culprit, None)
        if culprit in self.declined:
            self.declined.discard(culprit)  # type: ignore[union-attr]
        effects: list[Effect] = []
        if culprit in self._pending:  # its reply will be refused: stop waiting for it
            self._pending.discard(culprit)
            self.silent = self.silent | {culprit}
            effects += self._maybe_finish_aggregation(now)
        for (hop, _host), ctx in list(self._contexts.items()):
            if culprit in ctx.pending:
                ctx.pending.discard(culprit)
                if not ctx.pending:
                    effects += self._finish_context(hop, ctx, now)
        hosting = self._hosting
        if hosting is not None:
            hosting.bids.pop(culprit, None)
            if hosting.offered is not None and hosting.offered.buyer == culprit:
                effects += self._lapse_offer(now)
            elif culprit in hosting.pending:
                hosting.pending.discard(culprit)
                if not hosting.pending and hosting.offered is None:
                    effects += self._close_hop(now)
        return effects
