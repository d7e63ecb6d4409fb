"""Each deviation hook of the SRA machine, driven by hand: the machine sends exactly what the behaviour says."""

from __future__ import annotations

import dataclasses

from fractions import Fraction

import pytest

from peer.sra.behaviours import LowDemand, cut_index
from peer.sra.effects import Record, Send, StageChanged
from peer.sra.ledger_entry import genesis_hash
from peer.sra.machine import HONEST, Behaviour, SraConfig, SraNode
from peer.sra.messages import (
    Offer,
    Award,
    Bid,
    ContextBid,
    ContextReply,
    ContextRequest,
    Decline,
    Invite,
    Open,
    Settled,
)

AUCTION = "unit/1"
GENESIS = genesis_hash(AUCTION, "item", "s")
INVITE = Invite(auction=AUCTION, item="item", seller="s", genesis=GENESIS, budget=9.5)
CONFIG = SraConfig(gather_window=0.5, reply_timeout=10.0, context_timeout=20.0, margin=0.5)


def make(
    node: str, neighbours: list[str], value: int, behaviour: Behaviour = HONEST, seed: int = 0, guarded: bool = False
) -> SraNode:
    # The paper's stage 3 unless a test says otherwise: most behaviours act before it.
    config = dataclasses.replace(CONFIG, guarded=guarded)
    return SraNode(node, neighbours, value, auction=AUCTION, seed=seed, seller="s", item="item", config=config,
                   behaviour=behaviour)


def sends(effects: list) -> list[tuple[str, object]]:
    return [(e.to, e.msg) for e in effects if isinstance(e, Send)]


def invited_by(node: SraNode, inviters: list[str], now: float = 1.0) -> list:
    for inviter in inviters:
        node.receive(inviter, INVITE, now)
    return node.on_timer(now + 0.5)


def opened(hop: int = 1, reserve: int = 0, prev: str = GENESIS) -> Open:
    return Open(auction=AUCTION, hop=hop, reserve=reserve, prev=prev, budget=19.5)


# ------------------------------------------------------------------ Behaviour itself


def test_default_behaviour_is_honest_and_rewrites_nothing() -> None:
    assert Behaviour() == HONEST and HONEST.honest and not HONEST.breaks_protocol
    assert not make("a", ["s"], 3)._rewrite


def test_equivocate_accepts_a_mapping_and_is_canonical_and_hashable() -> None:
    a = Behaviour(equivocate={"s": 4, "b": 1})
    assert a.equivocate == (("b", 1), ("s", 4))
    assert a == Behaviour(equivocate=(("s", 4), ("b", 1)))
    assert hash(a) == hash(Behaviour(equivocate={"b": 1, "s": 4}))


@pytest.mark.parametrize("kwargs", [{"silent_from": "lunch"}, {"crash_at": "stage 9"},
                                    {"restart_after": 1.0}, {"crash_at": "hosting", "restart_after": -1.0},
                                    {"split": 0}, {"equivocate": {"s": "x"}}])
def test_malformed_behaviours_are_refused(kwargs: dict) -> None:
    with pytest.raises((ValueError, TypeError)):
        Behaviour(**kwargs)


def test_faults_break_the_protocol_and_strategies_do_not() -> None:
    for b in (Behaviour(false_reserve=1), Behaviour(silent_from="allocation"), Behaviour(crash_at="hosting")):
        assert b.breaks_protocol
    for b in (Behaviour(bid=1), Behaviour(context=1), Behaviour(parent="b"), Behaviour(split=2),
              Behaviour(equivocate={"s": 1}), Behaviour(underbid_when_demand_low=LowDemand())):
        assert not b.breaks_protocol


# ------------------------------------------------------------------ stage 2: parents and aggregates


def test_parent_behaviour_bids_to_the_chosen_inviter_only() -> None:
    for parent in ("s", "b"):
        a = make("a", ["s", "b"], 3, Behaviour(parent=parent))
        out = sends(invited_by(a, ["s", "b"]))
        other = "b" if parent == "s" else "s"
        assert sorted(out, key=lambda x: x[0]) == sorted([(parent, Bid(auction=AUCTION, amount=3)),
                                                          (other, Decline(auction=AUCTION))], key=lambda x: x[0])
        assert a.parents == [parent]


def test_parent_that_is_not_an_inviter_leaves_the_coin_to_decide() -> None:
    honest = make("a", ["s", "b", "c"], 3, seed=7)
    deviant = make("a", ["s", "b", "c"], 3, Behaviour(parent="c"), seed=7)
    invited_by(honest, ["s", "b"])
    invited_by(deviant, ["s", "b"])
    deviant.receive("c", Decline(auction=AUCTION), 2.0)
    honest.receive("c", Decline(auction=AUCTION), 2.0)
    assert deviant.parents == honest.parents and len(deviant.parents) == 1


def test_equivocation_sends_each_inviter_its_own_bid() -> None:
    a = make("a", ["s", "b"], 3, Behaviour(equivocate={"s": 9}))
    out = dict(sends(invited_by(a, ["s", "b"])))
    assert out == {"s": Bid(auction=AUCTION, amount=9), "b": Bid(auction=AUCTION, amount=3)}
    assert a.parents == ["b", "s"]  # reporting to several: both believe a is their child


def test_wrong_aggregate_changes_only_the_stage2_bid() -> None:
    a = make("a", ["s"], 3, Behaviour(aggregate=8))
    assert sends(invited_by(a, ["s"])) == [("s", Bid(auction=AUCTION, amount=8))]
    assert a.bid == 3  # the declared bid, which stage 3 uses, is untouched
    out = sends(a.receive("s", opened(), 3.0))
    assert out == [("s", ContextBid(auction=AUCTION, hop=1, amount=3))]


# ------------------------------------------------------------------ stage 3: context bids


def test_context_behaviour_reports_its_amount_to_hosts_and_requesters_but_keeps_cuts() -> None:
    a = make("a", ["s", "b", "c"], 3, Behaviour(context=7))
    invited_by(a, ["s", "b"])  # c is its invitee
    a.receive("c", Decline(auction=AUCTION), 2.0)
    parent = a.parents[0]  # the seeded coin's choice
    out = sends(a.receive(parent, ContextRequest(auction=AUCTION, hop=2, host="x", budget=5.0), 3.0))
    assert out == [(parent, ContextReply(auction=AUCTION, hop=2, amount=7))]
    # A request naming one of a's inviters as host is answered "cut" (no amount), deviation or not.
    other = "b" if parent == "s" else "s"
    out = sends(a.receive(parent, ContextRequest(auction=AUCTION, hop=3, host=other, budget=5.0), 4.0))
    assert out == [(parent, ContextReply(auction=AUCTION, hop=3, amount=None))]


def test_equivocation_reaches_stage3_context_bids() -> None:
    a = make("a", ["s"], 3, Behaviour(equivocate={"s": 1}))
    invited_by(a, ["s"])
    assert sends(a.receive("s", opened(), 3.0)) == [("s", ContextBid(auction=AUCTION, hop=1, amount=1))]


# ------------------------------------------------------------------ Mirage: underbidding when demand is low


@pytest.mark.parametrize(("answers", "declared"), [(0, 5), (1, 5), (2, 10)])
def test_underbid_when_demand_low_shades_only_with_few_participants(answers: int, declared: int) -> None:
    rule = LowDemand(factor=Fraction(1, 2), at_most=1)
    a = make("a", ["s", "b", "c"], 10, Behaviour(underbid_when_demand_low=rule))
    invited_by(a, ["s"])
    for invitee in ["b", "c"][:answers]:
        a.receive(invitee, Decline(auction=AUCTION), 2.0)
    if answers < 2:
        a.on_timer(20.0)  # the others stay silent until the wait runs out
    assert a.bid == declared
    assert sends(a.receive("s", opened(), 21.0))[-1][1] == ContextBid(auction=AUCTION, hop=1, amount=declared)


def test_low_demand_rule_rounds_down_and_validates() -> None:
    assert LowDemand(Fraction(1, 3), 0).shade(10, 0) == 3
    assert LowDemand(Fraction(1, 3), 0).shade(10, 1) == 10
    with pytest.raises(ValueError):
        LowDemand(Fraction(3, 2))


# ------------------------------------------------------------------ false reserve


def test_false_reserve_is_announced_and_applied_by_the_host() -> None:
    b = make("b", ["s", "c"], 1, Behaviour(false_reserve=6))
    invited_by(b, ["s"])
    b.receive("c", Bid(auction=AUCTION, amount=9), 2.0)
    b.receive("s", opened(), 3.0)
    b.receive("c", ContextReply(auction=AUCTION, hop=1, amount=9), 4.0)  # b bids 9 in hop 1
    effects = b.receive("s", Award(auction=AUCTION, hop=1, price=4, entry=_entry_hash("s", "b", 4)), 5.0)
    assert [m for _, m in sends(effects)] == [Open(auction=AUCTION, hop=2, reserve=6, prev=_entry_hash("s", "b", 4),
                                                   budget=19.5)]
    effects = b.receive("c", ContextBid(auction=AUCTION, hop=2, amount=9), 6.0)
    award = [m for _, m in sends(effects)][0]
    assert isinstance(award, Award) and award.price == 6  # a single bidder pays the (false) reserve
    assert any(isinstance(e, Record) for e in effects)


def test_under_guarded_resale_a_false_reserve_names_a_made_up_purchase() -> None:
    b = make("b", ["s", "c"], 1, Behaviour(false_reserve=6), guarded=True)
    invited_by(b, ["s"])
    b.receive("c", Bid(auction=AUCTION, amount=9), 2.0)
    b.receive("s", opened(), 3.0)
    b.receive("c", ContextReply(auction=AUCTION, hop=1, amount=9), 4.0)  # b bids 9 in hop 1
    effects = b.receive("s", Offer(auction=AUCTION, hop=1, price=4, entry=_entry_hash("s", "b", 4), budget=30.0), 5.0)
    (open2,) = [m for _, m in sends(effects)]
    assert isinstance(open2, Open) and open2.reserve == 6 and (open2.bought_from, open2.bought_prev) == ("s", GENESIS)
    assert open2.prev == _entry_hash("s", "b", 6) != _entry_hash("s", "b", 4)  # consistent with the lie, not the truth


def _entry_hash(seller: str, buyer: str, price: int, hop: int = 1, prev: str = GENESIS) -> str:
    from peer.sra.ledger_entry import HopEntry

    return HopEntry(auction=AUCTION, hop=hop, seller=seller, buyer=buyer, price=price, prev=prev).hash


# ------------------------------------------------------------------ silence


def test_silent_from_a_message_stage_sends_earlier_stages_only() -> None:
    a = make("a", ["s"], 3, Behaviour(silent_from="allocation"))
    assert sends(invited_by(a, ["s"])) == [("s", Bid(auction=AUCTION, amount=3))]
    assert sends(a.receive("s", opened(), 3.0)) == []
    assert a._contexts  # its machine runs on: it did compute a context bid


def test_silent_from_a_node_stage_fires_on_entering_it_and_stays_silent() -> None:
    a = make("a", ["s", "b"], 3, Behaviour(silent_from="reported"))
    effects = invited_by(a, ["s"])
    assert sends(effects) == [("b", INVITE.__class__(auction=AUCTION, item="item", seller="s", genesis=GENESIS,
                                                      budget=effects[1].msg.budget))]
    assert sends(a.receive("b", Decline(auction=AUCTION), 2.0)) == []  # would have been its Bid
    settled = Settled(auction=AUCTION, winner="s", hops=0, price=0)
    assert sends(a.receive("s", settled, 9.0)) == []  # muted for good, even for a flood it would relay


def test_cut_index_finds_the_first_send_of_a_stage_or_the_stage_change() -> None:
    bid = Send("s", Bid(auction=AUCTION, amount=1))
    effects = [StageChanged("aggregating"), StageChanged("reported"), bid]
    assert cut_index(effects, "aggregation") == 2
    assert cut_index(effects, "diffusion") == 2  # a later stage counts
    assert cut_index(effects, "reported") == 1
    assert cut_index(effects, "settlement") is None and cut_index(effects, "hosting") is None
