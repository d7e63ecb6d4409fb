"""Stage 3 as seen by a host and by a hop's buyer: the local auction, and guarded resale.

Mixed into :class:`peer.sra.machine.SraNode` (``self`` is the node); split
out because this is where the two resale rules differ.

The paper's rule (``SraConfig.guarded = False``).  The host closes its hop and
sells at once: it records its half of the entry and Awards the item; the
buyer countersigns and hosts the next hop with its price as the reserve.  If a
context bid that made the buyer win is not repeated in the buyer's own hop (a
node lied, went silent or crashed in between, or a message was lost), the
buyer keeps an item it paid more for than it is worth to it.

Guarded resale (the default).  A sale is only a provisional Offer until the
buyer has hosted its own hop:

* the buyer answers Confirm when it can pay: it keeps the item at a price it
  values it at, or its own buyer has confirmed at no less; else it answers
  Refuse with the bid it can back (always below the offered price), and the
  host reruns its local auction without it (it has hosted its hop and cannot
  host again);
* an Offer that gets no answer in time lapses: the host drops that bidder and
  reruns;
* Confirms travel up to the seller, then the sales are committed top-down:
  each host records the entry (it holds the buyer's signature from Confirm, so
  the entry is whole) and Awards it; the buyer records its purchase before it
  commits its own sale, so the ledger grows in chain order.

Honest play never refuses (a host's own hop always backs the bid it made in
its seller's hop), so outcomes, prices and ledgers are the paper's.  A bid
that vanishes costs time, never an honest node's money: no honest node buys
before everything below it has confirmed.  A node that has confirmed takes an
Award whenever it comes; it has no other offer to take, so a late one cannot
conflict with anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from peer.errors import RemoteProtocolError
from peer.sra.coins import coin_message, tie_purpose, tie_winner
from peer.sra.config import amount_ok, budget_ok
from peer.sra.effects import Effect, Record, Send, StageChanged, Wake
from peer.sra.ledger_entry import HopEntry
from peer.sra.local_auction import run_local_auction, tie_break_rng, tied_at_top
from peer.sra.messages import Award, Confirm, ContextBid, Offer, Open, Refuse, Settled
from peer.sra.node_stage import REPORTED, HOSTING, CONFIRMED

if TYPE_CHECKING:
    from peer.sra.machine import SraNode


@dataclass(slots=True)
class Hosting:
    """The local auction this node runs as the seller of hop ``hop``."""

    hop: int
    reserve: int
    prev: str
    pending: set[str]
    bids: dict[str, int] = field(default_factory=dict)
    deadline: float = 0.0
    # Guarded resale: the outstanding Offer, if any.
    offered: HopEntry | None = None
    offer_deadline: float = 0.0
    lapsed: set[str] = field(default_factory=set)
    refused: dict[str, int] = field(default_factory=dict)  # buyer -> the bid it said it could back


@dataclass(slots=True)
class Purchase:
    """Guarded resale: the Offer this node took, from hosting its own hop to its Award."""

    seller: str
    entry: HopEntry
    answer_by: float  # when the seller stops waiting for our Confirm or Refuse
    sale: HopEntry | None = None  # our own buyer's confirmed entry (None: we keep the item)
    confirmed: bool = False
    award_by: float | None = None  # when we stop waiting for the Award (a late one is still taken)


class HostingMixin:
    """Stage 3 from the host's and the buyer's side (mixed into SraNode)."""

    __slots__ = ()  # SraNode keeps the state in slots (see its docstring)

    # What a node shell needs to sign and check under guarded resale.

    @property
    def awaiting_confirm(self: SraNode) -> HopEntry | None:
        """The entry of our outstanding Offer (its buyer's Confirm must sign it)."""
        return None if self._hosting is None else self._hosting.offered

    @property
    def pending_purchase(self: SraNode) -> HopEntry | None:
        """The entry of the Offer we took and have not been awarded yet (our Confirm signs it)."""
        purchase = self._purchase
        return None if purchase is None or self.bought_at is not None else purchase.entry

    @property
    def awaiting_award(self: SraNode) -> HopEntry | None:
        """The entry we confirmed and wait to be awarded (the ledger may deliver it first)."""
        purchase = self._purchase
        return purchase.entry if purchase is not None and purchase.confirmed and self.bought_at is None else None

    # ------------------------------------------------------------ hosting

    def _host(self: SraNode, hop: int, reserve: int, prev: str, now: float) -> list[Effect]:
        purchase = self._purchase
        bought_from, bought_prev = ("", "") if purchase is None else (purchase.seller, purchase.entry.prev)
        if self.behaviour.false_reserve is not None:
            reserve = self.behaviour.false_reserve  # announced in Open and applied to its own pricing
            if self.config.guarded and purchase is not None:
                # A consistent lie: it names an entry with the false price, which the Open's
                # body check then accepts; the sale it leads to cannot chain to the ledger.
                prev = HopEntry(auction=self.auction, hop=hop - 1, seller=bought_from, buyer=self.id,
                                price=reserve, prev=bought_prev).hash
        participants = sorted(self.children.keys() | self.declined)
        self.stage = HOSTING
        hosting = Hosting(hop=hop, reserve=reserve, prev=prev, pending=set(participants))
        deadline = now + self.config.context_timeout
        if purchase is not None:
            # Leave time to offer the item on and to answer our own seller.
            deadline = min(deadline, max(now, purchase.answer_by - 2 * self.config.margin))
        hosting.deadline = deadline
        self._hosting = hosting
        effects: list[Effect] = [StageChanged(self.stage._value_)]
        if not participants:
            return effects + self._close_hop(now)
        budget = max(0.0, deadline - now - self.config.margin)
        opener = Open(auction=self.auction, hop=hop, reserve=reserve, prev=prev, budget=budget,
                      bought_from=bought_from, bought_prev=bought_prev)
        effects.extend([Send(p, opener) for p in participants])
        effects.append(Wake(hosting.deadline))
        return effects

    def _on_context_bid(self: SraNode, sender: str, msg: ContextBid, now: float) -> list[Effect]:
        hosting = self._hosting
        if not amount_ok(msg.hop) or hosting is None or msg.hop != hosting.hop or sender not in hosting.pending:
            raise RemoteProtocolError(sender, f"unexpected context bid for hop {msg.hop}")
        if not amount_ok(msg.amount):
            raise RemoteProtocolError(sender, "context bid out of range")
        hosting.pending.discard(sender)
        hosting.bids[sender] = msg.amount
        if hosting.pending:
            return []
        return self._close_hop(now)

    def _close_hop(self: SraNode, now: float) -> list[Effect]:
        """Run the local auction on the bids in hand (again, after a Refuse or a lapsed Offer)."""
        hosting = self._hosting
        assert hosting is not None  # only reached while hosting
        hosting.pending = set()
        # Verifiable coins: ties go by our signature over (auction, hop), which we cannot choose;
        # the sale carries it and the tied names so the buyer can check the pick.
        coin = None if self._keys is None else self._keys.sign(coin_message(self.auction, tie_purpose(hosting.hop)))
        result = run_local_auction(
            self.bid, hosting.reserve, hosting.bids,
            None if coin is not None else tie_break_rng(self.seed, self.id, hosting.hop),
            origin=self.is_seller, tie_coin=coin,
        )
        if result.winner is None:
            return self._keep(now)
        entry = HopEntry(
            auction=self.auction, hop=hosting.hop, seller=self.id, buyer=result.winner,
            price=result.price, prev=hosting.prev,
        )
        tie = {} if coin is None else {"tie_coin": coin, "tied": tied_at_top(hosting.bids)}
        if not self.config.guarded:
            self._hosting = None
            self.stage = REPORTED
            return [StageChanged(self.stage._value_), *self._commit_sale(entry, countersigned=False, tie=tie)]
        hosting.offered = entry
        if self._purchase is None:
            hosting.offer_deadline = now + self.config.confirm_timeout
        else:
            hosting.offer_deadline = max(now, self._purchase.answer_by - self.config.margin)
        budget = max(0.0, hosting.offer_deadline - now - self.config.margin)
        offer = Offer(auction=self.auction, hop=entry.hop, price=entry.price, entry=entry.hash, budget=budget, **tie)
        return [Send(entry.buyer, offer), Wake(hosting.offer_deadline)]

    def _keep(self: SraNode, now: float) -> list[Effect]:
        hosting = self._hosting
        assert hosting is not None
        purchase = self._purchase
        if purchase is None:
            # The seller, or the paper's rule: the item is already ours; the auction is over.
            settled = Settled(auction=self.auction, winner=self.id, hops=hosting.hop - 1, price=hosting.reserve)
            return self._settle(settled, exclude=None)
        self._hosting = None
        if self.bid >= purchase.entry.price:
            return self._answer(now, confirm=True)
        backed = max([self.bid, *hosting.bids.values()])
        return self._answer(now, confirm=False, backed=backed)

    def _commit_sale(self: SraNode, entry: HopEntry, *, countersigned: bool, tie: dict | None = None) -> list[Effect]:
        self.sold_at = entry.price
        self.entries.append(entry)
        award = Award(auction=self.auction, hop=entry.hop, price=entry.price, entry=entry.hash, **(tie or {}))
        return [Record(entry, countersigned=countersigned), Send(entry.buyer, award)]

    # ------------------------------------------- guarded: the host's side

    def _offered_to(self: SraNode, sender: str, hop: object, what: str) -> Hosting:
        hosting = self._hosting
        if hosting is None or hosting.offered is None or hosting.offered.buyer != sender or hop != hosting.hop:
            lapsed = hosting is not None and sender in hosting.lapsed
            raise RemoteProtocolError(sender, f"{what} for hop {hop}, which " + (
                "lapsed before it came" if lapsed else "was not offered to it"))
        return hosting

    def _on_confirm(self: SraNode, sender: str, msg: Confirm, now: float) -> list[Effect]:
        hosting = self._offered_to(sender, msg.hop, "Confirm")
        sale = hosting.offered
        assert sale is not None
        self._hosting = None
        if self._purchase is None:  # the seller: nothing above her, commit now
            self.stage = REPORTED
            return [StageChanged(self.stage._value_), *self._commit_sale(sale, countersigned=True)]
        self._purchase.sale = sale
        return self._answer(now, confirm=True)

    def _on_refuse(self: SraNode, sender: str, msg: Refuse, now: float) -> list[Effect]:
        hosting = self._offered_to(sender, msg.hop, "Refuse")
        assert hosting.offered is not None
        if not amount_ok(msg.amount) or msg.amount >= hosting.offered.price:
            raise RemoteProtocolError(sender, "a Refuse must back a bid below the offered price")
        # The buyer is out of this hop: it has hosted its own and cannot do it again.  Its
        # backed amount is only evidence (how far below the offer its bid fell).
        hosting.bids.pop(sender, None)
        hosting.refused[sender] = msg.amount
        hosting.offered = None
        return self._close_hop(now)

    def _lapse_offer(self: SraNode, now: float) -> list[Effect]:
        hosting = self._hosting
        assert hosting is not None and hosting.offered is not None
        buyer = hosting.offered.buyer
        hosting.lapsed.add(buyer)
        hosting.bids.pop(buyer, None)
        hosting.offered = None
        return self._close_hop(now)

    # ------------------------------------------ guarded: the buyer's side

    def _on_offer(self: SraNode, sender: str, msg: Offer, now: float) -> list[Effect]:
        if not self.config.guarded:
            raise RemoteProtocolError(sender, "Offer in an auction without guarded resale")
        entry = self._check_sale(sender, msg.hop, msg.price, msg.entry, "offer", tie=msg)
        if not budget_ok(msg.budget):
            raise RemoteProtocolError(sender, "offer with a malformed budget")
        if self._purchase is not None or self._answered:
            raise RemoteProtocolError(sender, "a second offer: this node already answered one")
        if self.stage is not REPORTED:
            raise RemoteProtocolError(sender, f"Offer while {self.stage.value}")
        budget = self.config.confirm_timeout if msg.budget is None else msg.budget
        self._purchase = Purchase(seller=sender, entry=entry, answer_by=now + budget)
        return self._host(msg.hop + 1, msg.price, entry.hash, now)

    def _answer(self: SraNode, now: float, *, confirm: bool, backed: int = 0) -> list[Effect]:
        purchase = self._purchase
        assert purchase is not None
        hop = purchase.entry.hop
        if not confirm:
            self._purchase = None
            self._answered = True
            self.stage = REPORTED
            return [StageChanged(self.stage._value_),
                    Send(purchase.seller, Refuse(auction=self.auction, hop=hop, amount=backed))]
        purchase.confirmed = True
        # Confirms climb hop - 1 more links and the Awards come down hop links.
        purchase.award_by = now + (2 * hop + 1) * self.config.margin
        self.stage = CONFIRMED
        return [StageChanged(self.stage._value_), Send(purchase.seller, Confirm(auction=self.auction, hop=hop)),
                Wake(purchase.award_by)]

    def _award_overdue(self: SraNode) -> list[Effect]:
        """Stop waiting for the Award (park like any node without a settlement); a late one is still taken."""
        assert self._purchase is not None
        self._purchase.award_by = None
        self.stage = REPORTED
        return [StageChanged(self.stage._value_)]

    def _on_award_guarded(self: SraNode, sender: str, msg: Award, now: float) -> list[Effect]:
        purchase = self._purchase
        if purchase is None or not purchase.confirmed or purchase.seller != sender or msg.hop != purchase.entry.hop:
            raise RemoteProtocolError(sender, f"award for hop {msg.hop} this node did not confirm to it")
        if self.bought_at is not None:
            return []  # a duplicate
        entry = purchase.entry
        if (msg.price, msg.entry) != (entry.price, entry.hash):
            raise RemoteProtocolError(sender, "award does not match the offer this node confirmed")
        purchase.award_by = None
        self.bought_at = entry.price
        self.bought_entry = entry.hash
        self.entries.append(entry)
        effects: list[Effect] = [Record(entry)]
        if purchase.sale is None:
            settled = Settled(auction=self.auction, winner=self.id, hops=entry.hop, price=entry.price)
            return effects + self._settle(settled, exclude=None)
        self.stage = REPORTED
        return effects + [StageChanged(self.stage._value_), *self._commit_sale(purchase.sale, countersigned=True)]

    def _check_sale(self: SraNode, sender: str, hop: object, price: object, named: object, what: str,
                    *, tie: Offer | Award | None = None) -> HopEntry:
        """The entry an Offer or (paper rule) an Award names, checked against the Open it follows
        and, given ``tie`` (the message itself), against the host's tie coin."""
        if not (amount_ok(hop) and isinstance(named, str)):
            raise RemoteProtocolError(sender, f"malformed {what}")
        opened: Open | None = self._opened.get((hop, sender))  # type: ignore[arg-type]
        if opened is None:
            raise RemoteProtocolError(sender, f"{what} for hop {hop} it did not open to us")
        if self.bought_at is not None:
            raise RemoteProtocolError(sender, f"{what} to a node that already bought")
        if not amount_ok(price) or price < opened.reserve:  # type: ignore[operator]
            raise RemoteProtocolError(sender, "price out of range or below the reserve the host announced")
        made = self._bids_made.get((hop, sender))  # type: ignore[arg-type]
        if made is None:
            raise RemoteProtocolError(sender, f"{what} for hop {hop}, in which this node made no bid")
        if price > made:  # type: ignore[operator]
            raise RemoteProtocolError(sender, f"{what} at {price}, above the bid {made} this node made in hop {hop}")
        entry = HopEntry(auction=self.auction, hop=hop, seller=sender, buyer=self.id, price=price,  # type: ignore[arg-type]
                         prev=opened.prev)
        if entry.hash != named:
            raise RemoteProtocolError(sender, f"{what} does not match the ledger entry it names")
        if tie is not None:
            self._check_tie(sender, hop, tie, what)  # type: ignore[arg-type]
        return entry

    def _check_tie(self: SraNode, sender: str, hop: int, msg: Offer | Award, what: str) -> None:
        """Verifiable coins: the sale follows the host's tie coin among the bidders it says tied.

        We are on the list (our bid is the top one, so we tied whenever anyone else is
        listed), the coin is the host's signature over (auction, hop), and it picks us.
        Whether the list is complete only the bidders left off it could tell.
        """
        coin, tied = msg.tie_coin, msg.tied
        if self._keys is None:
            if coin or tied:
                raise RemoteProtocolError(sender, f"{what} with a tie coin in an auction without verifiable coins")
            return
        if not (isinstance(coin, bytes) and coin and isinstance(tied, tuple)
                and all(isinstance(name, str) for name in tied) and len(set(tied)) == len(tied)):
            raise RemoteProtocolError(sender, f"{what} without a well-formed tie coin under verifiable coins")
        if self.id not in tied:
            raise RemoteProtocolError(sender, f"{what} whose tied bidders leave out its buyer")
        if not self._keys.verify(sender, coin_message(self.auction, tie_purpose(hop)), coin):
            raise RemoteProtocolError(sender, f"{what}'s tie coin is not the host's signature on this hop")
        if tie_winner(coin, tied) != self.id:
            raise RemoteProtocolError(sender, f"{what} does not follow the host's tie coin")
