"""One node's side of one Sequential Resale Auction, as a sans-I/O state machine.

Theory of operation
-------------------
The machine is fed ``receive(sender, msg, now)`` and ``on_timer(now)`` and
returns a list of effects (:mod:`peer.sra.effects`).  It never reads a clock,
never sleeps and never touches a socket, so the same code runs in the in-memory
simulator, in tests and behind real websockets.

Stage 1 (diffusion).  The first Invite informs the node; further Invites that
arrive within the gather window add their senders as *inviters*.  When the
window closes the node forwards the Invite to every other neighbour: those are
its *invitees*.  An Invite that arrives from an invitee after forwarding is a
crossing invitation: the edge is void and the Invite counts as that
neighbour's reply.

Stage 2 (aggregation).  The node waits for each invitee's Bid (it is the
invitee's parent), Decline (it is not) or crossing Invite (void), treating
silence as Decline when its wait runs out.  Then b = max(own bid, bids
received); it picks one inviter uniformly at random as parent, sends it Bid(b)
and Decline to the other inviters.

Stage 3 (allocation).  The seller hosts hop 1 with reserve 0.  A host opens its
local auction to every invitee that answered in stage 2 (Bid or Decline).  A
participant computes its *context bid* by a convergecast down its tree
children: a child that is itself an invitee of the host answers "cut" (it bids
to the host directly), any other child answers with its own context bid.  The
host runs :func:`run_local_auction`: it keeps the item (and floods Settled) or
Awards it to the best participant, who becomes host of the next hop with the
price as its reserve.

Waits shrink down the tree.  Every request that expects an answer (Invite,
Open, ContextRequest) carries a *budget*: how long the sender will still wait.
A node that receives budget b at time t must answer by t + b; it stops waiting
for its own children ``margin`` earlier and hands them what is left minus
another ``margin``.  So a child always gives up on a silent grandchild before
its parent gives up on it, and one crashed node costs only its own subtree,
never its honest ancestors.  ``margin`` must cover one message's transit.

Rejected input raises :class:`RemoteProtocolError` and leaves the machine as it
was: every check happens before any mutation.
"""

from __future__ import annotations

import functools
import random

from peer.errors import LocalProtocolError, RemoteProtocolError
from peer.sra.behaviours import HONEST, Behaviour, rewrite_sends
from peer.sra.coin_reports import CoinReports
from peer.sra.coins import CoinKeys, choose_parent
from peer.sra.config import MAX_AMOUNT, MAX_BUDGET, SraConfig, amount_ok, budget_ok
from peer.sra.effects import Effect, Outcome, Record, Send, StageChanged, Wake
from peer.sra.equivocation_node import Convictions
from peer.sra.ledger_entry import HopEntry, genesis_hash
from peer.sra.hosting import Hosting, HostingMixin, Purchase
from peer.sra.messages import (
    Award,
    Bid,
    Confirm,
    ContextBid,
    ContextReply,
    ContextRequest,
    Decline,
    Invite,
    Message,
    Offer,
    Open,
    Refuse,
    Settled,
)
from peer.sra.node_stage import NodeStage, IDLE, GATHERING, AGGREGATING, REPORTED, SETTLED
from peer.sra.participating import Participating, _Context

__all__ = ["NodeStage", "SraNode"]

# Settled and Invite first: they are most of every run's traffic (each floods every link).
_MESSAGE_TYPES = (
    Settled, Invite, Bid, Decline, Open, ContextRequest, ContextReply, ContextBid, Offer, Confirm, Refuse, Award,
)
# Exactly these classes (not subclasses such as CoinBid) are told apart by identity in _receive.
_PLAIN_TYPES = frozenset({Invite, Settled, Decline, ContextRequest, ContextReply, Bid})
# The name sets that stay empty in almost every machine (void and late invitations, timeouts,
# convictions) start as this one shared frozenset and are replaced, never changed in place, on
# the rare path that adds to them: four empty sets less per machine (216 bytes and one object
# for the garbage collector to walk each; a 100,000-node run holds 100,000 machines).
_NO_NAMES: frozenset[str] = frozenset()
# The stage changes of the hot paths, one shared value each (effects are never changed once made).
_NOW_GATHERING, _NOW_AGGREGATING, _NOW_REPORTED, _NOW_SETTLED = (
    StageChanged(stage._value_) for stage in (GATHERING, AGGREGATING, REPORTED, SETTLED))
# (settled, its Outcome): the flood settles every node with one Settled object, so every node's
# Outcome is one equal value; sharing one object saves an object per node that a 100,000-node
# run's stats keep (effects are values, never changed once made).
_last_outcome: tuple[Settled | None, Outcome | None] = (None, None)


def _outcome_of(settled: Settled) -> Outcome:
    global _last_outcome
    last = _last_outcome
    if last[0] is not settled:
        last = _last_outcome = (settled, Outcome(settled.winner, settled.price, settled.hops))
    return last[1]  # type: ignore[return-value]


# One machine per node of an auction, all with the same announcement: hash it once.
_genesis_hash = functools.lru_cache(maxsize=256)(genesis_hash)


class SraNode(HostingMixin, Participating, CoinReports, Convictions):
    """One node's state in one auction.

    Its state lives in slots, not an instance dict: a machine has 47 fields,
    more than CPython's shared-key dicts hold, so each machine carried a dict
    of its own (1,584 bytes, grown by rehashing four times while ``__init__``
    ran; the slotted object is 408 bytes in all): most of why a 100,000-node
    simulation's peak memory fell from 783 to 489 MiB (docs/benchmarks.md).
    ``__dict__`` is still there to read, as a fresh dict of every field: what
    tests snapshot to check that a refused message changed nothing.
    """

    __slots__ = (
        "id", "neighbours", "_neighbour_set", "value", "auction", "seed", "seller", "item", "config",
        "behaviour", "_keys", "_coin", "_bid", "_rewrite", "_muted", "_equivocate", "is_seller", "genesis",
        "stage", "inviters", "invitees", "void", "children", "declined", "silent", "parents", "aggregate",
        "bought_at", "sold_at", "bought_entry", "result", "entries", "rejected", "convicted",
        "_gather_deadline", "_reply_by", "_late_inviters", "_pending", "_reply_deadline", "_contexts",
        "_opened", "_hosting", "_purchase", "_answered", "requests_seen", "_bids_made", "_bid_out",
    )

    @property  # type: ignore[misc]
    def __dict__(self) -> dict[str, object]:  # type: ignore[override]
        """Every field of the machine's state, by name (a copy: the fields live in slots)."""
        return {name: getattr(self, name) for name in SraNode.__slots__}

    def __init__(
        self,
        node_id: str,
        neighbours: list[str] | tuple[str, ...],
        value: int,
        *,
        auction: str,
        seed: int,
        seller: str,
        item: str = "item",
        config: SraConfig | None = None,
        behaviour: Behaviour = HONEST,
        coin_keys: CoinKeys | None = None,
    ) -> None:
        if value < 0:
            raise LocalProtocolError(f"{node_id}: negative value")
        self.id = node_id
        self.neighbours: tuple[str, ...] = tuple(sorted(neighbours))
        # For membership tests only: a dict of names to None rather than a frozenset, because the
        # garbage collector never tracks a dict of strings (a set it always does: one object
        # less per machine for every full pass to walk).
        self._neighbour_set = dict.fromkeys(self.neighbours)
        self.value = value
        self.auction = auction
        self.seed = seed
        self.seller = seller
        self.item = item
        self.config = config or SraConfig()
        self.behaviour = behaviour
        # Verifiable coins: without keys from the shell, the simulator's name-derived ones.
        self._keys = coin_keys
        if coin_keys is None and self.config.verifiable_coins:
            from peer.sra.coin_keys import SimulatedKeys  # Ed25519: loaded only when coins are on

            self._keys = SimulatedKeys(node_id)
        self._coin: bytes | None = None
        self._bid = value if behaviour.bid is None else behaviour.bid  # underbidding may lower it later
        # Deviations that rewrite or suppress what the machine sends (see _deviate).
        self._rewrite = behaviour.context is not None or bool(behaviour.equivocate) or behaviour.silent_from is not None
        self._muted = False  # silent_from has fired
        self._equivocate = dict(behaviour.equivocate)
        self.is_seller = node_id == seller
        self.genesis = _genesis_hash(auction, item, seller)

        self.stage = IDLE
        self.inviters: list[str] = []
        self.invitees: list[str] = []  # neighbours invited that did not void
        self.void: frozenset[str] = _NO_NAMES
        self.children: dict[str, int] = {}  # invitees that chose us: their bids
        self.declined: set[str] | frozenset[str] = _NO_NAMES  # a set of its own from the first Decline
        self.silent: frozenset[str] = _NO_NAMES  # invitees that timed out in stage 2
        self.parents: list[str] = []
        self.aggregate: int | None = None
        self.bought_at: int | None = None
        self.sold_at: int | None = None
        self.bought_entry: str | None = None
        self.result: Settled | None = None
        self.entries: list[HopEntry] = []
        self.rejected = 0
        self.convicted: frozenset[str] = _NO_NAMES  # neighbours proved to equivocate their Bid (see convict)

        self._gather_deadline: float | None = None
        self._reply_by: float | None = None  # when our inviters stop waiting for us
        self._late_inviters: frozenset[str] = _NO_NAMES  # invited us after we forwarded (deviating neighbours)
        self._pending: set[str] | frozenset[str] = _NO_NAMES  # a set of its own from _forward on
        self._reply_deadline: float | None = None
        # Keyed by (hop, host): a host whose buyer refuses or lapses reruns its hop, and the
        # next hop then goes to another host under the same number, which we may join too.
        self._contexts: dict[tuple[int, str], _Context] = {}
        self._opened: dict[tuple[int, str], Open] = {}  # (hop, host) -> the Open that host sent us
        self._hosting: Hosting | None = None
        self._purchase: Purchase | None = None  # guarded resale: the offer we took
        self._answered = False  # guarded resale: we refused our one offer
        # (requester, host) of every context request taken: what this node learns about who sits
        # below which host (measured by peer.experiments.privacy).
        self.requests_seen: set[tuple[str, str]] | frozenset[tuple[str, str]] = _NO_NAMES  # a set from the first
        # (hop, host) -> the context bid this node sent that host: no sale above it is signed.
        self._bids_made: dict[tuple[int, str], int] = {}
        self._bid_out = False  # a handler sent a ContextBid: _sent must note it

    # ------------------------------------------------------------------ API

    @property
    def bid(self) -> int:
        """The value this node declares (its true value unless it deviates)."""
        return self._bid

    def start(self, now: float) -> list[Effect]:
        """The seller announces the sale: stage 1 begins."""
        if not self.is_seller:
            raise LocalProtocolError(f"{self.id} is not the seller")
        if self.stage is not IDLE:
            raise LocalProtocolError("the auction has already started")
        effects = self._forward(now)
        return self._sent(self._deviate(effects) if self._rewrite else effects)

    def next_deadline(self) -> float | None:
        """The earliest time at which ``on_timer`` has something to do."""
        # Asked on every wake-up (most of them stale): no list, no min() over one item.
        best = self._gather_deadline
        t = self._reply_deadline
        if t is not None and (best is None or t < best):
            best = t
        if self._contexts:
            for c in self._contexts.values():
                if c.pending and (best is None or c.deadline < best):
                    best = c.deadline
        hosting = self._hosting
        if hosting is not None:
            if hosting.pending and (best is None or hosting.deadline < best):
                best = hosting.deadline
            if hosting.offered is not None and (best is None or hosting.offer_deadline < best):
                best = hosting.offer_deadline
        purchase = self._purchase
        if purchase is not None:
            t = purchase.award_by
            if t is not None and (best is None or t < best):
                best = t
        return best

    def receive(self, sender: str, msg: Message, now: float) -> list[Effect]:
        """Apply one message from a neighbour.

        Raises:
            RemoteProtocolError: the message is illegal here; nothing changed.
        """
        held = self.result
        if held is not None and msg is held and not self.convicted and sender in self._neighbour_set:
            # The flood's copy of the settlement we hold (it forwards one object over every link,
            # so this is 2|E| of a run's messages): the full path below checks it and answers
            # nothing, and so does this, without the dispatch.
            return []
        kind = type(msg)
        if kind in _PLAIN_TYPES:
            # _receive's checks in its order, each class told by one identity test instead of
            # the match's chain of isinstance calls (up to twelve), and no call to get there.
            if sender not in self._neighbour_set:
                raise RemoteProtocolError(sender, "not a neighbour")
            if msg.auction != self.auction:
                raise RemoteProtocolError(sender, f"unknown auction {msg.auction!r}")
            if self.convicted:
                self._refuse_convicted(sender, msg)
            if kind is Invite:
                effects = self._on_invite(sender, msg, now)  # type: ignore[arg-type]
            elif kind is Settled:
                effects = self._on_settled(sender, msg)  # type: ignore[arg-type]
            elif kind is Decline:
                if self._keys is not None and sender in self._pending:
                    self._check_decline_coin(sender, msg)  # type: ignore[arg-type]
                effects = self._on_reply(sender, None, now)
            elif kind is ContextRequest:
                effects = self._on_context_request(sender, msg, now)  # type: ignore[arg-type]
            elif kind is ContextReply:
                effects = self._on_context_reply(sender, msg, now)  # type: ignore[arg-type]
            else:  # Bid
                amount = msg.amount  # type: ignore[union-attr]
                if not (type(amount) is int and 0 <= amount <= MAX_AMOUNT) and not amount_ok(amount):
                    raise RemoteProtocolError(sender, "bid out of range")
                if self._keys is not None and sender in self._pending:
                    self._check_bid_coin(sender, msg)  # type: ignore[arg-type]
                effects = self._on_reply(sender, amount, now)
        else:
            effects = self._receive(sender, msg, now)
        if self._rewrite:
            effects = self._deviate(effects)
        return self._sent(effects) if self._bid_out else effects

    def _receive(self, sender: str, msg: Message, now: float) -> list[Effect]:
        if not isinstance(msg, _MESSAGE_TYPES):
            raise RemoteProtocolError(sender, f"not an auction message: {type(msg).__name__}")
        if sender not in self._neighbour_set:
            raise RemoteProtocolError(sender, "not a neighbour")
        if msg.auction != self.auction:
            raise RemoteProtocolError(sender, f"unknown auction {msg.auction!r}")
        if self.convicted:
            self._refuse_convicted(sender, msg)
        match msg:
            case Settled():  # first: the flood is most of the traffic (classes are disjoint here)
                return self._on_settled(sender, msg)
            case Invite():
                return self._on_invite(sender, msg, now)
            case Bid():
                if not amount_ok(msg.amount):
                    raise RemoteProtocolError(sender, "bid out of range")
                if self._keys is not None and sender in self._pending:
                    self._check_bid_coin(sender, msg)
                return self._on_reply(sender, msg.amount, now)
            case Decline():
                if self._keys is not None and sender in self._pending:
                    self._check_decline_coin(sender, msg)
                return self._on_reply(sender, None, now)
            case Open():
                return self._on_open(sender, msg, now)
            case ContextRequest():
                return self._on_context_request(sender, msg, now)
            case ContextReply():
                return self._on_context_reply(sender, msg, now)
            case ContextBid():
                return self._on_context_bid(sender, msg, now)
            case Offer():
                return self._on_offer(sender, msg, now)
            case Confirm():
                return self._on_confirm(sender, msg, now)
            case Refuse():
                return self._on_refuse(sender, msg, now)
            case Award():
                return self._on_award(sender, msg, now)
        raise RemoteProtocolError(sender, f"unexpected message {type(msg).__name__}")

    def on_timer(self, now: float) -> list[Effect]:
        """Act on every deadline that has passed."""
        effects = self._on_timer(now)
        if self._rewrite:
            effects = self._deviate(effects)
        return self._sent(effects) if self._bid_out else effects

    def _sent(self, effects: list[Effect]) -> list[Effect]:
        """Note the context bids that go out (after any deviation rewrote them): a buyer signs
        no purchase above the bid it made in that hop.  Only called when a handler sent one
        (``_bid_out``): the scan is then over one event's effects, not every event's."""
        self._bid_out = False
        for effect in effects:
            if type(effect) is Send and type(effect.msg) is ContextBid:
                self._bids_made[(effect.msg.hop, effect.to)] = effect.msg.amount
        return effects

    def _on_timer(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        if self._gather_deadline is not None and now >= self._gather_deadline:
            effects += self._forward(now)
        if self._reply_deadline is not None and now >= self._reply_deadline and self._pending:
            self.silent = self.silent | self._pending
            self._pending = _NO_NAMES
            effects += self._finish_aggregation(now)
        if self._contexts:
            for (hop, _host), ctx in list(self._contexts.items()):
                if ctx.pending and now >= ctx.deadline:
                    ctx.pending = set()
                    effects += self._finish_context(hop, ctx, now)
        hosting = self._hosting
        if hosting is not None and hosting.pending and now >= hosting.deadline:
            effects += self._close_hop(now)
        hosting = self._hosting
        if hosting is not None and hosting.offered is not None and now >= hosting.offer_deadline:
            effects += self._lapse_offer(now)
        purchase = self._purchase
        if purchase is not None and purchase.award_by is not None and now >= purchase.award_by:
            effects += self._award_overdue()
        return effects

    # -------------------------------------------------------- stage 1 and 2

    def _on_invite(self, sender: str, msg: Invite, now: float) -> list[Effect]:
        if msg.seller != self.seller or msg.genesis != self.genesis or msg.item != self.item:
            raise RemoteProtocolError(sender, "invitation does not match this auction")
        budget = msg.budget
        # budget_ok, with the call skipped for the plain float every forwarded Invite carries
        if not (type(budget) is float and 0 <= budget < MAX_BUDGET) and not budget_ok(budget):
            raise RemoteProtocolError(sender, "invitation with a malformed budget")
        if self.is_seller and self.stage is IDLE:
            raise RemoteProtocolError(sender, "invitation to the seller before the sale started")
        if self.is_seller or self.stage not in (IDLE, GATHERING):
            # Already forwarded: a late invite from an invitee is a crossing invitation.
            if sender in self.inviters or sender in self.void or sender in self._late_inviters:
                return []  # a duplicate of an invite we already handled
            if sender in self._pending:
                self._pending.discard(sender)
                self.invitees.remove(sender)
                self.void = self.void | {sender}
                return self._maybe_finish_aggregation(now)
            if sender not in self.invitees:
                # We did not invite it (only a deviating node skips a neighbour): it
                # is owed an answer, and it is too late to make it an inviter.
                self._late_inviters = self._late_inviters | {sender}
                return [Send(sender, self._decline(""))]
            raise RemoteProtocolError(sender, "invitation after replying")
        if sender in self.inviters:
            return []
        self.inviters.append(sender)
        reply_by = now + (self.config.reply_timeout if msg.budget is None else msg.budget)
        self._reply_by = reply_by if self._reply_by is None else min(self._reply_by, reply_by)
        if self.stage is IDLE:
            self.stage = GATHERING
            if self.config.gather_window <= 0:
                return [_NOW_GATHERING, *self._forward(now)]
            self._gather_deadline = now + self.config.gather_window
            return [_NOW_GATHERING, Wake(self._gather_deadline)]
        return []

    def _forward(self, now: float) -> list[Effect]:
        self._gather_deadline = None
        targets = [n for n in self.neighbours if n not in self.inviters]
        if self.behaviour.invite_only is not None:
            targets = [n for n in targets if n in self.behaviour.invite_only]
        self.stage = AGGREGATING
        self.invitees = targets  # a list of its own, only read below
        self._pending = set(targets) if targets else _NO_NAMES
        if self.is_seller or self._reply_by is None:
            deadline = now + self.config.reply_timeout
        else:
            deadline = max(now, self._reply_by - self.config.margin)
        budget = max(0.0, deadline - now - self.config.margin)
        invite = Invite(
            auction=self.auction, item=self.item, seller=self.seller, genesis=self.genesis, budget=budget
        )
        effects: list[Effect] = [_NOW_AGGREGATING]
        effects.extend([Send(n, invite) for n in targets])
        if self._pending:
            self._reply_deadline = deadline
            effects.append(Wake(self._reply_deadline))
            return effects
        return effects + self._finish_aggregation(now)

    def _on_reply(self, sender: str, amount: int | None, now: float) -> list[Effect]:
        if sender not in self._pending:
            if sender in self.children or sender in self.declined:
                raise RemoteProtocolError(sender, "second reply in stage 2")
            if sender in self.silent:
                raise RemoteProtocolError(sender, "reply after its timeout")
            raise RemoteProtocolError(sender, "reply from a neighbour this node did not invite")
        if amount is not None and not amount_ok(amount):
            raise RemoteProtocolError(sender, "bid out of range")
        self._pending.discard(sender)
        if amount is None:
            if self.declined:
                self.declined.add(sender)  # type: ignore[union-attr]
            else:
                self.declined = {sender}
        else:
            self.children[sender] = amount
        return self._maybe_finish_aggregation(now)

    def _maybe_finish_aggregation(self, now: float) -> list[Effect]:
        if self._pending:
            return []
        self._pending = _NO_NAMES  # the drained set: one object less per machine to keep
        if self.stage is not AGGREGATING:
            return []
        return self._finish_aggregation(now)

    def _finish_aggregation(self, now: float) -> list[Effect]:
        self._reply_deadline = None
        if self.behaviour.underbid_when_demand_low is not None:
            # The demand this node sees: its invitees that answered (its own auction's participants).
            seen = len(self.children) + len(self.declined)
            self._bid = self.behaviour.underbid_when_demand_low.shade(self._bid, seen)
        aggregate = max([self._bid, *self.children.values()])
        if self.behaviour.aggregate is not None:
            aggregate = self.behaviour.aggregate
        self.aggregate = aggregate
        if self.is_seller:
            self.bought_at = 0
            self.bought_entry = self.genesis
            return self._host(1, 0, self.genesis, now)
        self.stage = REPORTED
        effects: list[Effect] = [_NOW_REPORTED]
        if not self.inviters:
            return effects
        inviters = sorted(self.inviters)
        if self.behaviour.report_to_all or self._equivocate:
            self.parents = inviters
        elif self.behaviour.parent is not None and self.behaviour.parent in self.inviters:
            self.parents = [self.behaviour.parent]
        elif self._keys is not None:
            self.parents = [choose_parent(self.coin, inviters)]
        elif len(inviters) == 1:
            # What the seeded choice below returns for one inviter (choice draws an index below
            # 1, which is 0 whatever the stream), without seeding a generator from a string.
            self.parents = [inviters[0]]
        else:
            rng = random.Random(f"sra/parent/{self.seed}/{self.id}")
            self.parents = [rng.choice(inviters)]
        if self._keys is not None:
            return effects + self._report_with_coin(inviters, aggregate)
        decline = None  # one immutable message for every other inviter, made if there is one
        for inviter in inviters:
            if inviter in self.parents:
                effects.append(Send(inviter, Bid(auction=self.auction, amount=aggregate)))
            else:
                if decline is None:
                    decline = Decline(auction=self.auction)
                effects.append(Send(inviter, decline))
        return effects

    def _on_award(self, sender: str, msg: Award, now: float) -> list[Effect]:
        if self.config.guarded:
            return self._on_award_guarded(sender, msg, now)
        entry = self._check_sale(sender, msg.hop, msg.price, msg.entry, "award", tie=msg)
        self.bought_at = msg.price
        self.bought_entry = entry.hash
        self.entries.append(entry)
        effects: list[Effect] = [Record(entry)]
        return effects + self._host(msg.hop + 1, msg.price, entry.hash, now)

    # ------------------------------------------------------------ the end

    def _on_settled(self, sender: str, msg: Settled) -> list[Effect]:
        if self.result is not None:
            if msg is not self.result and msg != self.result:  # the flood forwards one object
                raise RemoteProtocolError(sender, "a different settlement for a settled auction")
            return []
        hops, price = msg.hops, msg.price
        # amount_ok, its call skipped for a plain int
        if not ((type(hops) is int and 0 <= hops <= MAX_AMOUNT or amount_ok(hops))
                and (type(price) is int and 0 <= price <= MAX_AMOUNT or amount_ok(price))
                and isinstance(msg.winner, str)):
            raise RemoteProtocolError(sender, "malformed settlement")
        return self._settle(msg, exclude=sender)

    def _settle(self, settled: Settled, exclude: str | None) -> list[Effect]:
        self.result = settled
        self.stage = SETTLED
        self._hosting = None
        self._gather_deadline = None
        self._reply_deadline = None
        self._contexts = {}  # a fresh one: the collector does not track an empty dict (a cleared one it still does)
        effects: list[Effect] = [_NOW_SETTLED, _outcome_of(settled)]
        effects.extend([Send(n, settled) for n in self.neighbours if n != exclude])
        return effects

    # ------------------------------------------------------ deviation hooks

    def _deviate(self, effects: list[Effect]) -> list[Effect]:
        """Rewrite or suppress what a deviating node sends (only called when it does)."""
        out, self._muted = rewrite_sends(self.behaviour, self._equivocate, effects, muted=self._muted)
        return out
