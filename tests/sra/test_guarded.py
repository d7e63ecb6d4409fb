"""Guarded resale driven by hand: Offer, Confirm, Refuse, lapses and the top-down commit.

Same helpers and timing rules as test_machine.py.  Under guarded resale a
host's sale is an Offer until its buyer has hosted its own hop; an Offer gets
``budget`` = (when the host stops waiting) - now - MARGIN, where the seller
waits CONFIRM and any other host keeps one MARGIN of its own answer time.  A
buyer's context wait is min(CONTEXT, answer_by - 2 MARGIN).  A confirmed buyer
waits (2 hop + 1) MARGIN for its Award.
"""

from __future__ import annotations

from peer.sra.effects import Outcome, Record, Send, StageChanged, Wake
from peer.sra.ledger_entry import HopEntry
from peer.sra.machine import NodeStage, SraNode
from peer.sra.messages import Award, Confirm, ContextBid, ContextReply, Offer, Open, Refuse, Settled
from tests.sra.test_machine import (
    AUCTION,
    CONFIRM,
    CONTEXT,
    GENESIS,
    HOST_BUDGET,
    MARGIN,
    assert_rejected,
    opener,
    reported,
    seller_hosting,
)

ENTRY_A = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="a", price=5, prev=GENESIS)


def _seller_offering_a():
    s = seller_hosting(["a", "b"], 0, {"a": 8, "b": None}, guarded=True)
    assert s.receive("a", ContextBid(auction=AUCTION, hop=1, amount=8), 3.0) == []
    effects = s.receive("b", ContextBid(auction=AUCTION, hop=1, amount=5), 3.5)
    return s, effects


def test_the_seller_offers_and_records_nothing_yet() -> None:
    s, effects = _seller_offering_a()
    assert effects == [
        Send("a", Offer(auction=AUCTION, hop=1, price=5, entry=ENTRY_A.hash, budget=3.5 + CONFIRM - 3.5 - MARGIN)),
        Wake(3.5 + CONFIRM),
    ]
    assert s.stage is NodeStage.HOSTING
    assert s.sold_at is None and s.entries == []
    assert s.next_deadline() == 3.5 + CONFIRM


def test_a_confirm_makes_the_seller_commit_the_whole_entry_and_award() -> None:
    s, _ = _seller_offering_a()
    effects = s.receive("a", Confirm(auction=AUCTION, hop=1), 9.0)
    assert effects == [
        StageChanged("reported"),
        Record(ENTRY_A, countersigned=True),
        Send("a", Award(auction=AUCTION, hop=1, price=5, entry=ENTRY_A.hash)),
    ]
    assert s.sold_at == 5 and s.entries == [ENTRY_A]
    assert s.next_deadline() is None


def test_a_refuse_reruns_the_hop_without_the_buyer() -> None:
    s, _ = _seller_offering_a()
    effects = s.receive("a", Refuse(auction=AUCTION, hop=1, amount=4), 10.0)
    to_b = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="b", price=0, prev=GENESIS)
    assert effects == [
        Send("b", Offer(auction=AUCTION, hop=1, price=0, entry=to_b.hash, budget=CONFIRM - MARGIN)),
        Wake(10.0 + CONFIRM),
    ]


def test_a_refuse_must_back_less_than_the_offer_and_come_from_the_buyer() -> None:
    s, _ = _seller_offering_a()
    assert "below the offered price" in assert_rejected(s, "a", Refuse(auction=AUCTION, hop=1, amount=5)).reason
    assert "not offered" in assert_rejected(s, "b", Refuse(auction=AUCTION, hop=1, amount=1)).reason
    assert "not offered" in assert_rejected(s, "b", Confirm(auction=AUCTION, hop=1)).reason
    assert "not offered" in assert_rejected(s, "a", Confirm(auction=AUCTION, hop=2)).reason


def test_an_unanswered_offer_lapses_and_a_late_confirm_is_refused() -> None:
    s, _ = _seller_offering_a()
    deadline = 3.5 + CONFIRM
    effects = s.on_timer(deadline)
    to_b = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="b", price=0, prev=GENESIS)
    assert effects == [
        Send("b", Offer(auction=AUCTION, hop=1, price=0, entry=to_b.hash, budget=CONFIRM - MARGIN)),
        Wake(deadline + CONFIRM),
    ]
    assert "lapsed" in assert_rejected(s, "a", Confirm(auction=AUCTION, hop=1), now=deadline + 1).reason


def test_the_seller_keeps_when_every_offer_fails() -> None:
    s, _ = _seller_offering_a()
    s.receive("a", Refuse(auction=AUCTION, hop=1, amount=0), 5.0)  # b now wins alone, at 0
    effects = s.on_timer(5.0 + CONFIRM)  # b's offer lapses; nobody is left
    settled = Settled(auction=AUCTION, winner="s", hops=0, price=0)
    assert effects[:2] == [StageChanged("settled"), Outcome("s", 0, 0)]
    assert Send("a", settled) in effects and Send("b", settled) in effects


# ------------------------------------------------------------- the buyer's side


def _offered_a(value: int) -> SraNode:
    """a (value ``value``) bid 9 in hop 1 through its children c (9) and d (6); s offers it the item at 5."""
    a = reported("a", ["s", "c", "d"], value, inviters=["s"], bids={"c": 9, "d": 6}, guarded=True)
    a.receive("s", opener(1, 0, GENESIS), 3.0)
    a.receive("c", ContextReply(auction=AUCTION, hop=1, amount=9), 3.5)
    a.receive("d", ContextReply(auction=AUCTION, hop=1, amount=6), 3.5)
    return a


HOP2 = Open(auction=AUCTION, hop=2, reserve=5, prev=ENTRY_A.hash, budget=HOST_BUDGET, bought_from="s",
            bought_prev=GENESIS)
ENTRY_C = HopEntry(auction=AUCTION, hop=2, seller="a", buyer="c", price=6, prev=ENTRY_A.hash)


def test_an_offered_buyer_hosts_its_own_hop_first_naming_its_purchase() -> None:
    a = _offered_a(3)
    effects = a.receive("s", Offer(auction=AUCTION, hop=1, price=5, entry=ENTRY_A.hash, budget=30.0), 4.0)
    assert effects == [StageChanged("hosting"), Send("c", HOP2), Send("d", HOP2), Wake(4.0 + CONTEXT)]
    assert a.bought_at is None and a.entries == []


def test_a_short_answer_time_shortens_the_buyers_own_wait() -> None:
    a = _offered_a(3)
    effects = a.receive("s", Offer(auction=AUCTION, hop=1, price=5, entry=ENTRY_A.hash, budget=9.0), 4.0)
    assert effects[-1] == Wake(4.0 + 9.0 - 2 * MARGIN)


def test_confirms_climb_then_the_commit_comes_down_in_chain_order() -> None:
    a = _offered_a(3)
    a.receive("s", Offer(auction=AUCTION, hop=1, price=5, entry=ENTRY_A.hash, budget=30.0), 4.0)
    a.receive("c", ContextBid(auction=AUCTION, hop=2, amount=9), 5.0)
    effects = a.receive("d", ContextBid(auction=AUCTION, hop=2, amount=6), 5.0)
    answer_by = 4.0 + 30.0
    offer_by = answer_by - MARGIN
    assert effects == [
        Send("c", Offer(auction=AUCTION, hop=2, price=6, entry=ENTRY_C.hash, budget=offer_by - 5.0 - MARGIN)),
        Wake(offer_by),
    ]
    effects = a.receive("c", Confirm(auction=AUCTION, hop=2), 6.0)
    assert effects == [StageChanged("confirmed"), Send("s", Confirm(auction=AUCTION, hop=1)),
                       Wake(6.0 + 3 * MARGIN)]
    effects = a.receive("s", Award(auction=AUCTION, hop=1, price=5, entry=ENTRY_A.hash), 7.0)
    assert effects == [
        Record(ENTRY_A),
        StageChanged("reported"),
        Record(ENTRY_C, countersigned=True),
        Send("c", Award(auction=AUCTION, hop=2, price=6, entry=ENTRY_C.hash)),
    ]
    assert (a.bought_at, a.sold_at, a.entries) == (5, 6, [ENTRY_A, ENTRY_C])


def test_a_buyer_that_values_the_item_enough_confirms_and_settles_on_its_award() -> None:
    a = _offered_a(7)
    a.receive("s", Offer(auction=AUCTION, hop=1, price=5, entry=ENTRY_A.hash, budget=30.0), 4.0)
    a.receive("c", ContextBid(auction=AUCTION, hop=2, amount=9), 5.0)
    effects = a.receive("d", ContextBid(auction=AUCTION, hop=2, amount=6), 5.0)  # 7 >= 6: keeps
    assert effects == [StageChanged("confirmed"), Send("s", Confirm(auction=AUCTION, hop=1)),
                       Wake(5.0 + 3 * MARGIN)]
    effects = a.receive("s", Award(auction=AUCTION, hop=1, price=5, entry=ENTRY_A.hash), 6.0)
    settled = Settled(auction=AUCTION, winner="a", hops=1, price=5)
    assert effects[:3] == [Record(ENTRY_A), StageChanged("settled"), Outcome("a", 5, 1)]
    assert {e.to for e in effects[3:]} == {"s", "c", "d"} and all(e.msg == settled for e in effects[3:])


def test_a_vanished_bid_makes_the_buyer_refuse_instead_of_paying_more_than_it_can_recover() -> None:
    """The griefing case: c's 9 won hop 1 for a; in hop 2 c is silent and d offers 4 < 5."""
    a = _offered_a(3)
    a.receive("s", Offer(auction=AUCTION, hop=1, price=5, entry=ENTRY_A.hash, budget=30.0), 4.0)
    a.receive("d", ContextBid(auction=AUCTION, hop=2, amount=4), 5.0)
    effects = a.on_timer(4.0 + CONTEXT)
    assert effects == [StageChanged("reported"), Send("s", Refuse(auction=AUCTION, hop=1, amount=4))]
    assert a.bought_at is None and a.entries == []
    assert a.next_deadline() is None
    assert "did not confirm" in assert_rejected(
        a, "s", Award(auction=AUCTION, hop=1, price=5, entry=ENTRY_A.hash)).reason
    assert "already answered" in assert_rejected(
        a, "s", Offer(auction=AUCTION, hop=1, price=5, entry=ENTRY_A.hash, budget=1.0)).reason


def test_an_overdue_award_parks_the_buyer_but_a_late_one_is_still_taken() -> None:
    a = _offered_a(7)
    a.receive("s", Offer(auction=AUCTION, hop=1, price=5, entry=ENTRY_A.hash, budget=30.0), 4.0)
    a.receive("c", ContextBid(auction=AUCTION, hop=2, amount=9), 5.0)
    a.receive("d", ContextBid(auction=AUCTION, hop=2, amount=6), 5.0)
    assert a.on_timer(5.0 + 3 * MARGIN) == [StageChanged("reported")]
    assert a.next_deadline() is None
    effects = a.receive("s", Award(auction=AUCTION, hop=1, price=5, entry=ENTRY_A.hash), 50.0)
    assert effects[0] == Record(ENTRY_A) and Outcome("a", 5, 1) in effects


def test_offers_are_checked_like_awards() -> None:
    a = _offered_a(3)
    wrong = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="a", price=6, prev=GENESIS)
    assert "does not match" in assert_rejected(
        a, "s", Offer(auction=AUCTION, hop=1, price=5, entry=wrong.hash, budget=1.0)).reason
    assert "did not open" in assert_rejected(
        a, "c", Offer(auction=AUCTION, hop=1, price=5, entry=ENTRY_A.hash, budget=1.0)).reason
    assert "budget" in assert_rejected(
        a, "s", Offer(auction=AUCTION, hop=1, price=5, entry=ENTRY_A.hash, budget=-1.0)).reason
    paper = reported("p", ["s"], 1, inviters=["s"])
    paper.receive("s", opener(1, 0, GENESIS), 3.0)
    entry = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="p", price=0, prev=GENESIS)
    assert "without guarded resale" in assert_rejected(
        paper, "s", Offer(auction=AUCTION, hop=1, price=0, entry=entry.hash, budget=1.0)).reason


def test_a_participant_checks_the_reserve_against_the_purchase_the_open_names() -> None:
    c = reported("c", ["a"], 1, inviters=["a"], guarded=True)
    lie = Open(auction=AUCTION, hop=2, reserve=7, prev=ENTRY_A.hash, budget=1.0, bought_from="s",
               bought_prev=GENESIS)
    assert "reserve" in assert_rejected(c, "a", lie).reason
    assert c.receive("a", HOP2, 4.0) == [Send("a", ContextBid(auction=AUCTION, hop=2, amount=1))]
    first = reported("f", ["s"], 1, inviters=["s"], guarded=True)
    assert "reserve" in assert_rejected(first, "s", opener(1, 3, GENESIS)).reason


# ------------------------------------------------------ a rerun hands the next hop to another host


def _open_from(host: str, price: int) -> tuple[Open, HopEntry]:
    """The Open of hop 2 from ``host``, which the seller offered hop 1 at ``price``."""
    bought = HopEntry(auction=AUCTION, hop=1, seller="s", buyer=host, price=price, prev=GENESIS)
    return Open(auction=AUCTION, hop=2, reserve=price, prev=bought.hash, budget=HOST_BUDGET, bought_from="s",
                bought_prev=GENESIS), bought


def test_a_participant_of_a_refused_hosts_hop_joins_the_rerun_hosts_hop_of_the_same_number() -> None:
    # p was invited by x and y.  s offered hop 1 to x; x hosted hop 2 (p bid 7 there), then
    # refused; s reran hop 1 and offered it to y, who now opens hop 2 as well.  p must bid
    # in y's hop: before the fix it refused the Open ("hop 2 was already opened") and sat out.
    p = reported("p", ["x", "y"], 7, inviters=["x", "y"], guarded=True)
    from_x, _ = _open_from("x", 5)
    assert p.receive("x", from_x, 3.0) == [Send("x", ContextBid(auction=AUCTION, hop=2, amount=7))]
    from_y, bought_y = _open_from("y", 3)
    assert p.receive("y", from_y, 9.0) == [Send("y", ContextBid(auction=AUCTION, hop=2, amount=7))]
    # The sale y then offers is checked against y's Open, not x's.
    sale = HopEntry(auction=AUCTION, hop=2, seller="y", buyer="p", price=3, prev=bought_y.hash)
    effects = p.receive("y", Offer(auction=AUCTION, hop=2, price=3, entry=sale.hash, budget=30.0), 10.0)
    assert StageChanged("hosting") in effects
    # One host still cannot open one hop twice with different terms.
    other, _ = _open_from("y", 4)
    q = reported("q", ["x", "y"], 7, inviters=["x", "y"], guarded=True)
    q.receive("y", from_y, 9.0)
    assert "already opened" in assert_rejected(q, "y", other).reason


# ---------------------------------------------------- no purchase above the buyer's own bid


def test_a_buyer_refuses_an_award_or_offer_above_the_bid_it_made_in_both_modes() -> None:
    # b (value 5) bids 5 in the seller's hop 1.  A host that then sells to it at 50 is refused in
    # either mode: under the paper's rule b used to record and countersign the sale at 50.
    for guarded in (False, True):
        b = reported("b", ["s"], 5, inviters=["s"], guarded=guarded)
        assert b.receive("s", opener(1, 0, GENESIS), 3.0) == [Send("s", ContextBid(auction=AUCTION, hop=1, amount=5))]
        high = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="b", price=50, prev=GENESIS)
        sale = (Offer(auction=AUCTION, hop=1, price=50, entry=high.hash, budget=30.0) if guarded
                else Award(auction=AUCTION, hop=1, price=50, entry=high.hash))
        assert "above the bid 5" in assert_rejected(b, "s", sale).reason
        at_bid = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="b", price=5, prev=GENESIS)
        fair = (Offer(auction=AUCTION, hop=1, price=5, entry=at_bid.hash, budget=30.0) if guarded
                else Award(auction=AUCTION, hop=1, price=5, entry=at_bid.hash))
        assert b.receive("s", fair, 4.0)  # at its bid it buys (or, guarded, hosts first)


def test_a_sale_before_the_buyer_has_bid_is_refused() -> None:
    # c's context reply is still out, so b has made no bid in hop 1 yet.
    b = reported("b", ["s", "c"], 5, inviters=["s"], bids={"c": 9})
    b.receive("s", opener(1, 0, GENESIS), 3.0)
    entry = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="b", price=1, prev=GENESIS)
    assert "made no bid" in assert_rejected(b, "s", Award(auction=AUCTION, hop=1, price=1, entry=entry.hash)).reason
