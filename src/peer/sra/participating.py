"""Stage 3 as seen by a participant: the Opens it takes and the context-bid convergecast.

Mixed into :class:`peer.sra.machine.SraNode` (``self`` is the node).  Opens
and convergecasts are keyed by (hop, host): under guarded resale a host whose
buyer refuses or lapses reruns its hop, and the next hop then goes to another
host under the same number, which a node may join too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from peer.errors import RemoteProtocolError
from peer.sra.config import HASH, MAX_AMOUNT, MAX_BUDGET, amount_ok, budget_ok
from peer.sra.effects import Effect, Send, Wake
from peer.sra.ledger_entry import HopEntry
from peer.sra.messages import ContextBid, ContextReply, ContextRequest, Open
from peer.sra.node_stage import REPORTED

if TYPE_CHECKING:
    from peer.sra.machine import SraNode


@dataclass(slots=True)
class _Context:
    """One convergecast this node takes part in (one per hop and host)."""

    host: str
    requesters: list[str]  # parents that asked (several only under deviation)
    direct: bool  # this node is a participant of the host's auction
    pending: set[str]
    best: int
    deadline: float
    budget: float  # what our own context requests hand down


class Participating:
    """A participant's side of stage 3 (mixed into SraNode)."""

    __slots__ = ()  # SraNode keeps the state in slots (see its docstring)

    def _on_open(self: SraNode, sender: str, msg: Open, now: float) -> list[Effect]:
        if self.is_seller:
            # The seller buys nothing; she can only meet a downstream host by skipping it
            # (a deviation), and must not end up bidding for her own item.
            raise RemoteProtocolError(sender, "the seller takes part in no local auction")
        # A late inviter we answered with Decline counts as a host we take part with.
        if sender not in self.inviters and sender not in self._late_inviters:
            raise RemoteProtocolError(sender, "opened a local auction to a node it did not invite")
        if not (amount_ok(msg.hop) and msg.hop >= 1 and amount_ok(msg.reserve)
                and isinstance(msg.prev, str) and HASH.fullmatch(msg.prev) and budget_ok(msg.budget)):
            raise RemoteProtocolError(sender, "malformed Open")
        if self.config.guarded:
            self._check_reserve(sender, msg)
        if msg.hop == 1 and sender != self.seller:
            raise RemoteProtocolError(sender, "only the seller opens hop 1")
        key = (msg.hop, sender)
        if key in self._opened:
            if self._opened[key] == msg:
                return []  # duplicate
            raise RemoteProtocolError(sender, f"hop {msg.hop} was already opened by this host")
        if not self.config.guarded and any(hop == msg.hop for hop, _host in self._opened):
            # The paper's rule sells at once and never reruns: one host per hop number.
            raise RemoteProtocolError(sender, f"hop {msg.hop} was already opened")
        if self.stage is not REPORTED:
            raise RemoteProtocolError(sender, f"Open while {self.stage.value}")
        # Another host may have opened this hop number before: its seller reran the hop
        # before (a Refuse or a lapse), so that host's sale can no longer happen.
        self._opened[key] = msg
        ctx = self._contexts.get(key)
        if ctx is not None:
            # Our parent asked first; we are a participant, so that request was answered "cut".
            ctx.direct = True
            ctx.host = sender
            if not ctx.pending:
                self._bid_out = True
                return [Send(sender, ContextBid(auction=self.auction, hop=msg.hop, amount=ctx.best))]
            return []
        budget = self.config.context_timeout if msg.budget is None else msg.budget
        return self._begin_context(msg.hop, sender, None, direct=True, now=now, budget=budget)

    def _check_reserve(self: SraNode, sender: str, msg: Open) -> None:
        """Guarded resale: the reserve must be the price in the purchase entry the Open names.

        The host has not bought yet (its purchase is only offered), so there is
        no ledger entry to check it against; instead the Open carries the rest of
        that entry's body and ``prev`` must be its hash.  A host that lies about
        the price must then name an entry that will never be on the ledger, and
        every sale that chains to it is void.
        """
        if msg.hop == 1:
            ok = msg.prev == self.genesis and msg.reserve == 0 and sender == self.seller
        else:
            ok = (isinstance(msg.bought_from, str) and isinstance(msg.bought_prev, str)
                  and HASH.fullmatch(msg.bought_prev) is not None
                  and HopEntry(auction=self.auction, hop=msg.hop - 1, seller=msg.bought_from, buyer=sender,
                               price=msg.reserve, prev=msg.bought_prev).hash == msg.prev)
        if not ok:
            raise RemoteProtocolError(sender, "the Open's reserve is not the price of the purchase it names")

    def _on_context_request(self: SraNode, sender: str, msg: ContextRequest, now: float) -> list[Effect]:
        if sender not in self.parents:
            raise RemoteProtocolError(sender, "context request from a node that is not our parent")
        hop, budget = msg.hop, msg.budget
        # amount_ok and budget_ok, their calls skipped for a plain int and a plain float
        if not ((type(hop) is int and 1 <= hop <= MAX_AMOUNT or amount_ok(hop) and hop >= 1)
                and (type(budget) is float and 0 <= budget < MAX_BUDGET or budget_ok(budget))
                and isinstance(msg.host, str)):
            raise RemoteProtocolError(sender, "malformed context request")
        seen = self.requests_seen
        if not seen:
            self.requests_seen = {(sender, msg.host)}
        elif len(seen) < 4096:  # an observation for measurement: bounded against a chatty parent
            seen.add((sender, msg.host))  # type: ignore[union-attr]
        if msg.host in self.inviters:
            # We are an invitee of the host: we join its auction directly.
            return [Send(sender, ContextReply(auction=self.auction, hop=msg.hop, amount=None))]
        ctx = self._contexts.get((msg.hop, msg.host))
        if ctx is not None:
            if sender in ctx.requesters:
                return []
            ctx.requesters.append(sender)
            if not ctx.pending:
                return [Send(sender, ContextReply(auction=self.auction, hop=msg.hop, amount=ctx.best))]
            return []
        budget = self.config.context_timeout if msg.budget is None else msg.budget
        return self._begin_context(msg.hop, msg.host, sender, direct=False, now=now, budget=budget)

    def _begin_context(
        self: SraNode, hop: int, host: str, requester: str | None, *, direct: bool, now: float, budget: float
    ) -> list[Effect]:
        children = sorted(self.children)
        deadline = max(now, now + budget - self.config.margin)
        ctx = _Context(
            host=host,
            requesters=[] if requester is None else [requester],
            direct=direct,
            pending=set(children),
            best=self.bid,
            deadline=deadline,
            budget=max(0.0, deadline - now - self.config.margin),
        )
        self._contexts[(hop, host)] = ctx
        if not children:
            return self._finish_context(hop, ctx, now)
        request = ContextRequest(auction=self.auction, hop=hop, host=host, budget=ctx.budget)
        effects: list[Effect] = [Send(c, request) for c in children]
        effects.append(Wake(ctx.deadline))
        return effects

    def _on_context_reply(self: SraNode, sender: str, msg: ContextReply, now: float) -> list[Effect]:
        hop = msg.hop
        if not (type(hop) is int and 1 <= hop <= MAX_AMOUNT or amount_ok(hop) and hop >= 1):  # amount_ok, inline
            raise RemoteProtocolError(sender, "malformed context reply")
        ctx = self._pending_context(sender, msg.hop)
        if ctx is None:
            raise RemoteProtocolError(sender, f"unexpected context reply for hop {msg.hop}")
        amount = msg.amount
        if amount is not None and not (type(amount) is int and 0 <= amount <= MAX_AMOUNT) and not amount_ok(amount):
            raise RemoteProtocolError(sender, "context bid out of range")
        ctx.pending.discard(sender)
        if msg.amount is not None and msg.amount > ctx.best:
            ctx.best = msg.amount
        if ctx.pending:
            return []
        return self._finish_context(msg.hop, ctx, now)

    def _pending_context(self: SraNode, child: str, hop: int) -> _Context | None:
        """The convergecast of hop ``hop`` that waits for ``child``: the latest one, after a rerun.

        A ContextReply names its hop, not its host.  Two convergecasts of one hop
        wait for the same child only if a host lapsed and its seller reran before
        our first one ended; that host's sale can no longer happen, so its answer
        does not matter and the later one is the one to feed.
        """
        found = None
        for (h, _host), ctx in self._contexts.items():  # insertion order: the latest last
            if h == hop and child in ctx.pending:
                found = ctx
        return found

    def _finish_context(self: SraNode, hop: int, ctx: _Context, now: float) -> list[Effect]:
        effects: list[Effect] = [
            Send(r, ContextReply(auction=self.auction, hop=hop, amount=ctx.best)) for r in ctx.requesters
        ]
        if ctx.direct:
            self._bid_out = True
            effects.append(Send(ctx.host, ContextBid(auction=self.auction, hop=hop, amount=ctx.best)))
        return effects
