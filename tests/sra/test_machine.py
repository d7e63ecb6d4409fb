"""The SRA node machine driven by hand: feed messages and timer ticks, assert the exact effects.

Every test builds one or two machines, never a network: the machine is sans-I/O,
so each step is a plain function call with an explicit ``now``.  Rejected input
must raise RemoteProtocolError AND leave the machine exactly as it was; the
``assert_rejected`` helper compares a deep snapshot of the machine's ``__dict__``.

Timing rule under test (every expected time below is worked out from it by hand):
a request (Invite, Open, ContextRequest) received at t with budget b must be
answered by t + b, so the receiver stops waiting for its own children at
(t + b) - MARGIN (for Invites: the earliest over its inviters, and never before
it forwards), and hands down max(0, deadline - now - MARGIN).  Budget None
stands for the receiver's own timeout (REPLY for Invites, CONTEXT otherwise).
The seller waits REPLY in stage 2 and every host CONTEXT in stage 3; they hand
down REPLY - MARGIN and CONTEXT - MARGIN.  All constants are dyadic so the
float arithmetic is exact.  Stage 3 here is the paper's rule (``guarded=False``);
guarded resale is tested in test_guarded.py with the same helpers.
"""

from __future__ import annotations

import copy
from collections import Counter

import pytest

from peer.errors import LocalProtocolError, RemoteProtocolError
from peer.sra.effects import Outcome, Record, Send, StageChanged, Wake
from peer.sra.ledger_entry import HopEntry, genesis_hash
from peer.sra.machine import Behaviour, NodeStage, SraConfig, SraNode
from peer.sra.messages import (
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
ITEM = "item"
GENESIS = genesis_hash(AUCTION, ITEM, "s")
INVITE = Invite(auction=AUCTION, item=ITEM, seller="s", genesis=GENESIS)  # budget None
DECLINE = Decline(auction=AUCTION)

WINDOW = 0.5
REPLY = 10.0
CONTEXT = 20.0
MARGIN = 0.5
CONFIRM = 64.0
SELLER_BUDGET = REPLY - MARGIN  # what the seller's Invites hand down: 9.5
HOST_BUDGET = CONTEXT - MARGIN  # what every host's Opens hand down: 19.5


def invite(budget: float | None) -> Invite:
    return Invite(auction=AUCTION, item=ITEM, seller="s", genesis=GENESIS, budget=budget)


def ctx_request(hop: int, host: str, budget: float | None = None) -> ContextRequest:
    return ContextRequest(auction=AUCTION, hop=hop, host=host, budget=budget)


def make(
    node_id: str,
    neighbours: list[str] | tuple[str, ...],
    value: int = 0,
    *,
    seed: int = 0,
    window: float = WINDOW,
    behaviour: Behaviour = Behaviour(),
    guarded: bool = False,
) -> SraNode:
    # The stage-3 tests here spell out the paper's rule (buy, then resell); guarded resale
    # has its own tests in test_guarded.py.
    return SraNode(
        node_id,
        list(neighbours),
        value,
        auction=AUCTION,
        seed=seed,
        seller="s",
        item=ITEM,
        config=SraConfig(gather_window=window, reply_timeout=REPLY, context_timeout=CONTEXT, margin=MARGIN,
                         guarded=guarded, confirm_timeout=CONFIRM),
        behaviour=behaviour,
    )


def bid(amount: int) -> Bid:
    return Bid(auction=AUCTION, amount=amount)


def opener(hop: int, reserve: int, prev: str, budget: float | None = None) -> Open:
    return Open(auction=AUCTION, hop=hop, reserve=reserve, prev=prev, budget=budget)


def snapshot(machine: SraNode) -> dict:
    state = copy.deepcopy(machine.__dict__)
    assert state, "the machine keeps its state in __dict__"
    return state


def assert_rejected(machine: SraNode, sender: str, msg: object, now: float = 50.0) -> RemoteProtocolError:
    """``msg`` raises RemoteProtocolError and the machine's whole state is unchanged."""
    before = snapshot(machine)
    deadline = machine.next_deadline()
    with pytest.raises(RemoteProtocolError) as info:
        machine.receive(sender, msg, now)  # type: ignore[arg-type]
    assert machine.__dict__ == before
    assert machine.next_deadline() == deadline
    assert info.value.sender == sender
    return info.value


def sends(effects: list) -> list[Send]:
    return [e for e in effects if isinstance(e, Send)]


def reported(
    node_id: str,
    neighbours: list[str],
    value: int,
    *,
    inviters: list[str],
    bids: dict[str, int] | None = None,
    declines: tuple[str, ...] = (),
    seed: int = 0,
    guarded: bool = False,
) -> SraNode:
    """A non-seller that was invited at t=1, forwarded at t=1.5 and reported at t=2."""
    m = make(node_id, neighbours, value, seed=seed, guarded=guarded)
    for inviter in inviters:
        m.receive(inviter, INVITE, 1.0)
    m.on_timer(1.0 + WINDOW)
    for child, amount in (bids or {}).items():
        m.receive(child, bid(amount), 2.0)
    for child in declines:
        m.receive(child, DECLINE, 2.0)
    assert m.stage is NodeStage.REPORTED
    return m


def seed_with_parent(node_id: str, neighbours: list[str], inviters: list[str], parent: str) -> int:
    """A run seed for which ``node_id`` picks ``parent`` among ``inviters``."""
    for seed in range(200):
        m = make(node_id, neighbours, 1, seed=seed)
        for inviter in inviters:
            m.receive(inviter, INVITE, 1.0)
        m.on_timer(1.0 + WINDOW)
        for invitee in list(m.invitees):
            m.receive(invitee, DECLINE, 2.0)
        if m.parents == [parent]:
            return seed
    raise AssertionError(f"no seed makes {node_id} choose {parent}")


def seller_hosting(
    neighbours: list[str], value: int, replies: dict[str, int | None], *, guarded: bool = False
) -> SraNode:
    """The seller after start(0) and every invitee's reply at t=2 (it now hosts hop 1)."""
    s = make("s", neighbours, value, guarded=guarded)
    s.start(0.0)
    for child, amount in replies.items():
        s.receive(child, DECLINE if amount is None else bid(amount), 2.0)
    assert s.stage is NodeStage.HOSTING
    return s


# ---------------------------------------------------------------------------- construction


def test_negative_value_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        make("a", ["s"], -1)


def test_only_the_seller_starts_and_only_once() -> None:
    a = make("a", ["s"], 1)
    with pytest.raises(LocalProtocolError):
        a.start(0.0)
    s = make("s", ["a"])
    s.start(0.0)
    with pytest.raises(LocalProtocolError):
        s.start(1.0)


def test_idle_machine_has_no_deadline() -> None:
    assert make("a", ["s", "b"], 3).next_deadline() is None


# ---------------------------------------------------------------------------- stage 1


def test_seller_start_invites_every_neighbour() -> None:
    # The seller waits REPLY from the start (deadline 10) and hands down 10 - 0 - 0.5 = 9.5.
    s = make("s", ["b", "a"])
    effects = s.start(0.0)
    assert effects == [
        StageChanged("aggregating"),
        Send("a", invite(9.5)),
        Send("b", invite(9.5)),
        Wake(10.0),
    ]
    assert s.invitees == ["a", "b"]
    assert s.next_deadline() == 10.0


def test_first_invite_informs_and_opens_the_gather_window() -> None:
    a = make("a", ["s", "b", "c"], 5)
    assert a.receive("s", INVITE, 1.0) == [StageChanged("gathering"), Wake(1.0 + WINDOW)]
    assert a.stage is NodeStage.GATHERING
    assert a.inviters == ["s"]
    assert a.next_deadline() == 1.0 + WINDOW


def test_gather_window_collects_several_inviters_and_forwards_to_the_others_only() -> None:
    a = make("a", ["s", "b", "c", "d"], 5)
    a.receive("s", INVITE, 1.0)
    assert a.receive("b", INVITE, 1.25) == []
    assert a.receive("b", INVITE, 1.375) == []  # a duplicate changes nothing
    assert a.inviters == ["s", "b"]
    assert a.on_timer(1.375) == []  # the window is still open
    assert a.stage is NodeStage.GATHERING
    effects = a.on_timer(1.5)
    # Budget None = own REPLY: s waits until 1 + 10 = 11, b until 11.25; the earlier
    # one counts: deadline 11 - 0.5 = 10.5, handed down 10.5 - 1.5 - 0.5 = 8.5.
    assert effects == [
        StageChanged("aggregating"),
        Send("c", invite(8.5)),
        Send("d", invite(8.5)),
        Wake(10.5),
    ]
    assert a.invitees == ["c", "d"]
    assert a.next_deadline() == 10.5


def test_late_timer_forwards_at_the_time_it_is_called() -> None:
    a = make("a", ["s", "c"], 5)
    a.receive("s", INVITE, 1.0)
    # The deadline stays 1 + 10 - 0.5 = 10.5; only the budget handed down shrinks: 10.5 - 4 - 0.5.
    assert a.on_timer(4.0) == [StageChanged("aggregating"), Send("c", invite(6.0)), Wake(10.5)]


def test_window_zero_forwards_at_once() -> None:
    a = make("a", ["s", "b", "c"], 5, window=0.0)
    # Deadline 3 + 10 - 0.5 = 12.5, handed down 12.5 - 3 - 0.5 = 9.
    assert a.receive("s", INVITE, 3.0) == [
        StageChanged("gathering"),
        StageChanged("aggregating"),
        Send("b", invite(9.0)),
        Send("c", invite(9.0)),
        Wake(12.5),
    ]
    # b's own invitation arrives after a forwarded: a crossing invitation, the edge is void.
    assert a.receive("b", invite(7.0), 3.375) == []
    assert a.inviters == ["s"]
    assert a.void == {"b"}
    assert a.invitees == ["c"]


def test_window_zero_leaf_answers_at_once() -> None:
    a = make("a", ["s"], 7, window=0.0)
    assert a.receive("s", INVITE, 2.0) == [
        StageChanged("gathering"),
        StageChanged("aggregating"),
        StageChanged("reported"),
        Send("s", bid(7)),
    ]
    assert a.next_deadline() is None


def test_crossing_invitations_make_a_void_edge_on_both_sides() -> None:
    a = make("a", ["s", "b"], 4)
    b = make("b", ["s", "a"], 6)
    for m in (a, b):
        m.receive("s", INVITE, 1.0)
    out_a = a.on_timer(1.5)
    out_b = b.on_timer(1.5)
    forwarded = invite(8.5)  # deadline 1 + 10 - 0.5 = 10.5, minus 1.5 and the margin
    assert Send("b", forwarded) in out_a and Send("a", forwarded) in out_b
    # Each invitation arrives after the receiver forwarded: it counts as the sender's reply.
    assert a.receive("b", forwarded, 2.5) == [StageChanged("reported"), Send("s", bid(4))]
    assert b.receive("a", forwarded, 2.5) == [StageChanged("reported"), Send("s", bid(6))]
    for m, other in ((a, "b"), (b, "a")):
        assert m.void == {other}
        assert other not in m.inviters
        assert other not in m.invitees
        assert other not in m.children and other not in m.declined
    # A duplicate crossing invitation is ignored, whatever budget it names.
    assert a.receive("b", forwarded, 3.0) == []
    assert a.receive("b", INVITE, 3.0) == []


def test_seller_voids_a_neighbour_whose_own_invitation_crossed_hers() -> None:
    # a heard of the sale from b first and invited s before s's invitation reached it.
    s = make("s", ["a", "b"])
    s.start(0.0)
    assert s.receive("a", invite(3.0), 0.5) == []
    assert s.void == {"a"} and s.invitees == ["b"]
    effects = s.receive("b", bid(3), 1.0)
    # a is no participant of hop 1; the host hands down CONTEXT - MARGIN.
    assert sends(effects) == [Send("b", opener(1, 0, GENESIS, HOST_BUDGET))]


def test_invite_forwarding_respects_invite_only_behaviour() -> None:
    a = make("a", ["s", "b", "c"], 5, behaviour=Behaviour(invite_only=frozenset({"c"})))
    a.receive("s", INVITE, 1.0)
    assert sends(a.on_timer(1.5)) == [Send("c", invite(8.5))]


def test_late_invitation_from_a_neighbour_it_did_not_invite_is_declined_once() -> None:
    # a skips b (a deviation); b, informed elsewhere, invites a after a forwarded.  It is
    # too late for b to become a's inviter, but b is owed an answer: a Decline, sent once.
    a = make("a", ["s", "b", "c"], 5, behaviour=Behaviour(invite_only=frozenset({"c"})))
    a.receive("s", INVITE, 1.0)
    a.on_timer(1.5)
    assert a.receive("b", invite(8.5), 2.5) == [Send("b", DECLINE)]
    assert a.inviters == ["s"] and a.invitees == ["c"]
    assert a.void == set() and a.parents == []
    assert a.stage is NodeStage.AGGREGATING
    assert a.next_deadline() == 10.5  # b's budget does not touch a's wait
    # Duplicates are ignored, whatever budget they carry.
    assert a.receive("b", invite(8.5), 2.75) == []
    assert a.receive("b", INVITE, 3.0) == []
    # a's own aggregation goes on as before, and b is never part of it.
    assert a.receive("c", bid(7), 3.0) == [StageChanged("reported"), Send("s", bid(7))]
    assert a.receive("b", INVITE, 4.0) == []
    assert "b" not in a.children and "b" not in a.declined and "b" not in a.silent


def test_late_invitation_after_reporting_is_declined_and_the_inviter_counts_it() -> None:
    a = make("a", ["s", "b"], 5, behaviour=Behaviour(invite_only=frozenset()))
    a.receive("s", INVITE, 1.0)
    assert a.on_timer(1.5) == [StageChanged("aggregating"), StageChanged("reported"), Send("s", bid(5))]
    b = make("b", ["s", "a"], 2)
    b.receive("s", INVITE, 1.0)
    assert b.on_timer(1.5) == [StageChanged("aggregating"), Send("a", invite(8.5)), Wake(10.5)]
    assert a.receive("b", invite(8.5), 2.5) == [Send("b", DECLINE)]
    assert a.receive("b", invite(8.5), 2.5) == []
    # For the honest b it is an ordinary Decline: a chose another parent.
    assert b.receive("a", DECLINE, 3.0) == [StageChanged("reported"), Send("s", bid(2))]
    assert b.declined == {"a"} and b.silent == set()


# ---------------------------------------------------------------------------- stage 2


def test_bid_is_the_max_of_own_bid_and_children() -> None:
    a = make("a", ["s", "c", "d", "e"], 5)
    a.receive("s", INVITE, 1.0)
    a.on_timer(1.5)
    assert a.receive("c", bid(7), 2.0) == []
    assert a.receive("d", DECLINE, 2.1) == []
    assert a.receive("e", bid(3), 2.2) == [StageChanged("reported"), Send("s", bid(7))]
    assert a.aggregate == 7
    assert a.children == {"c": 7, "e": 3}
    assert a.declined == {"d"}
    assert a.next_deadline() is None


def test_own_bid_wins_the_aggregate_when_children_bid_less() -> None:
    a = reported("a", ["s", "c"], 9, inviters=["s"], bids={"c": 2})
    assert a.aggregate == 9


def test_declared_bid_replaces_the_value() -> None:
    a = make("a", ["s"], 9, behaviour=Behaviour(bid=4))
    a.receive("s", INVITE, 1.0)
    assert a.on_timer(1.5)[-1] == Send("s", bid(4))


def test_exactly_one_parent_among_inviters_and_decline_to_the_others() -> None:
    a = make("a", ["s", "b", "x", "c"], 5)
    for inviter in ("s", "b", "x"):
        a.receive(inviter, INVITE, 1.0)
    a.on_timer(1.5)
    effects = a.receive("c", bid(8), 2.0)
    assert len(a.parents) == 1
    parent = a.parents[0]
    assert parent in {"s", "b", "x"}
    expected = [Send(n, bid(8) if n == parent else DECLINE) for n in ("b", "s", "x")]
    assert effects == [StageChanged("reported"), *expected]


def test_parent_choice_is_seeded_and_spread_over_inviters() -> None:
    counts: Counter[str] = Counter()
    for seed in range(300):
        picks = set()
        for _ in range(2):  # the same seed always picks the same parent
            a = make("a", ["s", "b", "x"], 1, seed=seed)
            for inviter in ("x", "s", "b"):
                a.receive(inviter, INVITE, 1.0)
            a.on_timer(1.5)
            picks.add(a.parents[0])
        assert len(picks) == 1
        counts[picks.pop()] += 1
    assert set(counts) == {"s", "b", "x"}
    assert all(60 <= c <= 140 for c in counts.values()), counts


def test_arrival_order_of_inviters_does_not_change_the_parent() -> None:
    for seed in range(20):
        picks = set()
        for order in (("s", "b", "x"), ("x", "b", "s"), ("b", "x", "s")):
            a = make("a", ["s", "b", "x"], 1, seed=seed)
            for inviter in order:
                a.receive(inviter, INVITE, 1.0)
            a.on_timer(1.5)
            picks.add(tuple(a.parents))
        assert len(picks) == 1


def test_report_to_all_behaviour_bids_to_every_inviter() -> None:
    a = make("a", ["s", "b"], 3, behaviour=Behaviour(report_to_all=True))
    a.receive("s", INVITE, 1.0)
    a.receive("b", INVITE, 1.1)
    assert a.on_timer(1.5) == [
        StageChanged("aggregating"),
        StageChanged("reported"),
        Send("b", bid(3)),
        Send("s", bid(3)),
    ]


def test_leaf_answers_when_its_window_closes() -> None:
    a = make("a", ["s"], 7)
    a.receive("s", INVITE, 1.0)
    assert a.on_timer(1.5) == [StageChanged("aggregating"), StageChanged("reported"), Send("s", bid(7))]
    assert a.next_deadline() is None


def test_silent_invitee_is_treated_as_decline_when_the_wait_runs_out() -> None:
    a = make("a", ["s", "c", "d"], 5)
    a.receive("s", INVITE, 1.0)
    # s waits until 1 + REPLY = 11; a gives up on its invitees one margin earlier.
    assert a.on_timer(1.5)[-1] == Wake(10.5)
    a.receive("c", bid(9), 3.0)
    assert a.next_deadline() == 10.5  # d is still awaited
    assert a.on_timer(10.5 - 0.001) == []
    assert a.stage is NodeStage.AGGREGATING
    effects = a.on_timer(10.5)
    assert effects == [StageChanged("reported"), Send("s", bid(9))]
    assert a.silent == {"d"}
    assert "d" not in a.children
    assert a.next_deadline() is None
    # Its reply after the timeout is rejected.
    assert_rejected(a, "d", bid(100))
    assert_rejected(a, "d", DECLINE)


def test_all_invitees_silent_reports_own_bid_at_the_timeout() -> None:
    a = make("a", ["s", "c"], 5)
    a.receive("s", INVITE, 1.0)
    a.on_timer(1.5)
    assert a.on_timer(20.0) == [StageChanged("reported"), Send("s", bid(5))]
    assert a.silent == {"c"}


# ---------------------------------------------------------------------------- budgets


def test_invite_budget_sets_the_deadline_and_shrinks_down_the_tree() -> None:
    a = make("a", ["s", "c", "d"], 5)
    # Budget 6 at t=1: a must answer by 7, so it waits for its invitees until 6.5 ...
    assert a.receive("s", invite(6.0), 1.0) == [StageChanged("gathering"), Wake(1.0 + WINDOW)]
    # ... and forwards at 1.5 with what is left minus a margin: 6.5 - 1.5 - 0.5 = 4.5.
    assert a.on_timer(1.5) == [
        StageChanged("aggregating"),
        Send("c", invite(4.5)),
        Send("d", invite(4.5)),
        Wake(6.5),
    ]
    assert a.next_deadline() == 6.5
    # c gets a's invitation 0.25 later (less than a margin): it must answer by 1.75 + 4.5 = 6.25,
    # waits for x until 5.75 and hands x 5.75 - 2.25 - 0.5 = 3.
    c = make("c", ["a", "x"], 8)
    c.receive("a", invite(4.5), 1.75)
    assert c.on_timer(2.25) == [StageChanged("aggregating"), Send("x", invite(3.0)), Wake(5.75)]
    assert a.receive("d", DECLINE, 2.0) == []
    # x never answers: c gives up first and its Bid still reaches a in time.
    assert c.on_timer(5.75) == [StageChanged("reported"), Send("a", bid(8))]
    assert c.silent == {"x"}
    assert a.on_timer(5.875) == []
    assert a.receive("c", bid(8), 6.0) == [StageChanged("reported"), Send("s", bid(8))]
    assert a.silent == set() and a.children == {"c": 8}


def test_the_earliest_inviter_deadline_counts() -> None:
    # s lets a answer until 7, b only until 4.25: deadline 3.75, handed down 3.75 - 1.5 - 0.5 = 1.75.
    a = make("a", ["s", "b", "c"], 5)
    a.receive("s", invite(6.0), 1.0)
    a.receive("b", invite(3.0), 1.25)
    assert a.on_timer(1.5) == [StageChanged("aggregating"), Send("c", invite(1.75)), Wake(3.75)]
    # A later, more generous inviter does not extend the first one's: 1 + 3 - 0.5 = 3.5.
    a = make("a", ["s", "b", "c"], 5)
    a.receive("s", invite(3.0), 1.0)
    a.receive("b", invite(100.0), 1.25)
    assert a.on_timer(1.5) == [StageChanged("aggregating"), Send("c", invite(1.5)), Wake(3.5)]


def test_exhausted_invite_budget_forwards_with_zero_and_answers_when_it_forwards() -> None:
    # Budget 0.25 at t=1: (1 + 0.25) - 0.5 is before the forward time, so the deadline is 1.5.
    a = make("a", ["s", "c"], 5)
    a.receive("s", invite(0.25), 1.0)
    # The same timer call forwards and, the wait being already over, reports.
    assert a.on_timer(1.5) == [
        StageChanged("aggregating"),
        Send("c", invite(0.0)),
        Wake(1.5),
        StageChanged("reported"),
        Send("s", bid(5)),
    ]
    assert a.silent == {"c"}
    assert a.next_deadline() is None


def test_budget_none_means_the_receivers_own_timeouts() -> None:
    for given in (None, REPLY):
        a = make("a", ["s", "c"], 5)
        a.receive("s", invite(given), 1.0)
        assert a.on_timer(1.5) == [StageChanged("aggregating"), Send("c", invite(8.5)), Wake(10.5)]
    for given in (None, CONTEXT):
        a = reported("a", ["s", "c"], 3, inviters=["s"], bids={"c": 9})
        assert a.receive("s", opener(1, 0, GENESIS, given), 3.0) == [
            Send("c", ctx_request(1, "s", 19.0)),
            Wake(22.5),
        ]
        c = reported("c", ["a", "e"], 2, inviters=["a"], bids={"e": 11})
        assert c.receive("a", ctx_request(1, "s", given), 3.0) == [
            Send("e", ctx_request(1, "s", 19.0)),
            Wake(22.5),
        ]


def test_open_budget_sets_the_context_deadline_and_shrinks_down_the_tree() -> None:
    a = reported("a", ["s", "c", "d"], 3, inviters=["s"], bids={"c": 9, "d": 6})
    # Open with budget 8 at t=3: answer by 11, wait until 10.5, hand down 10.5 - 3 - 0.5 = 7.
    assert a.receive("s", opener(1, 0, GENESIS, 8.0), 3.0) == [
        Send("c", ctx_request(1, "s", 7.0)),
        Send("d", ctx_request(1, "s", 7.0)),
        Wake(10.5),
    ]
    # c is asked 0.25 later: answer by 10.25, wait until 9.75, hand down 9.75 - 3.25 - 0.5 = 6.
    c = reported("c", ["a", "e"], 2, inviters=["a"], bids={"e": 11})
    assert c.receive("a", ctx_request(1, "s", 7.0), 3.25) == [Send("e", ctx_request(1, "s", 6.0)), Wake(9.75)]
    assert a.receive("d", ContextReply(auction=AUCTION, hop=1, amount=6), 4.0) == []
    # e never answers: c gives up first and its reply still reaches a in time.
    assert c.on_timer(9.75) == [Send("a", ContextReply(auction=AUCTION, hop=1, amount=2))]
    assert a.receive("c", ContextReply(auction=AUCTION, hop=1, amount=2), 10.0) == [
        Send("s", ContextBid(auction=AUCTION, hop=1, amount=6))
    ]


def test_exhausted_open_budget_asks_with_zero_and_bids_at_once() -> None:
    a = reported("a", ["s", "c"], 3, inviters=["s"], bids={"c": 9})
    # (3 + 0.25) - 0.5 is already past: the deadline is now.
    assert a.receive("s", opener(1, 0, GENESIS, 0.25), 3.0) == [Send("c", ctx_request(1, "s", 0.0)), Wake(3.0)]
    assert a.on_timer(3.0) == [Send("s", ContextBid(auction=AUCTION, hop=1, amount=3))]


# ---------------------------------------------------------------------------- stage 3: seller


def test_seller_hosts_hop_one_with_reserve_zero_and_opens_to_all_invitees() -> None:
    s = make("s", ["a", "b", "c"])
    s.start(0.0)
    s.receive("a", bid(8), 2.0)
    s.receive("b", DECLINE, 2.0)  # b chose another parent but is still a participant
    effects = s.receive("c", bid(5), 3.0)
    hop1 = opener(1, 0, GENESIS, HOST_BUDGET)
    assert effects == [
        StageChanged("hosting"),
        Send("a", hop1),
        Send("b", hop1),
        Send("c", hop1),
        Wake(3.0 + CONTEXT),
    ]
    assert s.bought_at == 0
    assert s.next_deadline() == 3.0 + CONTEXT


def test_seller_without_neighbours_keeps_the_item_at_once() -> None:
    s = make("s", [])
    settled = Settled(auction=AUCTION, winner="s", hops=0, price=0)
    assert s.start(0.0) == [
        StageChanged("aggregating"),
        StageChanged("hosting"),
        StageChanged("settled"),
        Outcome("s", 0, 0),
    ]
    assert s.result == settled
    assert s.next_deadline() is None


def test_host_awards_with_the_ledger_entry_hash() -> None:
    s = seller_hosting(["a", "b"], 0, {"a": 8, "b": None})
    assert s.receive("a", ContextBid(auction=AUCTION, hop=1, amount=8), 3.0) == []
    effects = s.receive("b", ContextBid(auction=AUCTION, hop=1, amount=5), 3.5)
    entry = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="a", price=5, prev=GENESIS)
    assert effects == [
        StageChanged("reported"),
        Record(entry),
        Send("a", Award(auction=AUCTION, hop=1, price=5, entry=entry.hash)),
    ]
    assert s.sold_at == 5
    assert s.entries == [entry]
    assert s.next_deadline() is None


def test_origin_seller_with_one_bidder_sells_at_her_reserve() -> None:
    s = seller_hosting(["a"], 0, {"a": 8})
    effects = s.receive("a", ContextBid(auction=AUCTION, hop=1, amount=8), 3.0)
    entry = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="a", price=0, prev=GENESIS)
    assert effects[-1] == Send("a", Award(auction=AUCTION, hop=1, price=0, entry=entry.hash))


def test_origin_seller_reserve_is_a_price_floor() -> None:
    s = seller_hosting(["a", "b"], 4, {"a": 8, "b": 2})
    s.receive("a", ContextBid(auction=AUCTION, hop=1, amount=8), 3.0)
    effects = s.receive("b", ContextBid(auction=AUCTION, hop=1, amount=2), 3.0)
    entry = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="a", price=4, prev=GENESIS)
    assert effects[-1] == Send("a", Award(auction=AUCTION, hop=1, price=4, entry=entry.hash))


def test_origin_seller_sells_when_the_best_bid_equals_her_reserve() -> None:
    s = seller_hosting(["a", "b"], 8, {"a": 8, "b": 2})
    s.receive("a", ContextBid(auction=AUCTION, hop=1, amount=8), 3.0)
    effects = s.receive("b", ContextBid(auction=AUCTION, hop=1, amount=2), 3.0)
    entry = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="a", price=8, prev=GENESIS)
    assert effects[-1] == Send("a", Award(auction=AUCTION, hop=1, price=8, entry=entry.hash))


def test_origin_seller_keeps_when_no_bid_reaches_her_reserve() -> None:
    s = seller_hosting(["a", "b"], 9, {"a": 8, "b": 2})
    s.receive("a", ContextBid(auction=AUCTION, hop=1, amount=8), 3.0)
    effects = s.receive("b", ContextBid(auction=AUCTION, hop=1, amount=2), 3.0)
    settled = Settled(auction=AUCTION, winner="s", hops=0, price=0)
    assert effects == [
        StageChanged("settled"),
        Outcome("s", 0, 0),
        Send("a", settled),
        Send("b", settled),
    ]
    assert s.sold_at is None
    assert s.entries == []


def test_host_context_timeout_closes_the_hop_with_the_bids_it_has() -> None:
    s = seller_hosting(["a", "b", "c"], 0, {"a": 8, "b": 6, "c": None})
    s.receive("a", ContextBid(auction=AUCTION, hop=1, amount=8), 3.0)
    s.receive("b", ContextBid(auction=AUCTION, hop=1, amount=6), 3.0)
    assert s.next_deadline() == 2.0 + CONTEXT
    assert s.on_timer(2.0 + CONTEXT - 0.01) == []
    effects = s.on_timer(2.0 + CONTEXT)
    entry = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="a", price=6, prev=GENESIS)
    assert effects == [
        StageChanged("reported"),
        Record(entry),
        Send("a", Award(auction=AUCTION, hop=1, price=6, entry=entry.hash)),
    ]
    # c's context bid after the close is rejected.
    assert_rejected(s, "c", ContextBid(auction=AUCTION, hop=1, amount=99))


# ---------------------------------------------------------------------------- stage 3: participant


def test_participant_without_children_sends_its_context_bid_at_once() -> None:
    b = reported("b", ["s"], 5, inviters=["s"])
    assert b.receive("s", opener(1, 0, GENESIS), 3.0) == [Send("s", ContextBid(auction=AUCTION, hop=1, amount=5))]
    assert b.receive("s", opener(1, 0, GENESIS), 3.1) == []  # duplicate Open


def test_declined_participant_bids_its_own_subtree_only() -> None:
    # b is s's invitee but chose x as parent: s still opens to b, and b bids its context.
    seed = seed_with_parent("b", ["s", "x"], ["s", "x"], "x")
    b = reported("b", ["s", "x"], 6, inviters=["s", "x"], seed=seed)
    assert b.parents == ["x"]
    assert b.receive("s", opener(1, 0, GENESIS), 3.0) == [Send("s", ContextBid(auction=AUCTION, hop=1, amount=6))]


def test_context_convergecast_over_children() -> None:
    a = reported("a", ["s", "c", "d"], 3, inviters=["s"], bids={"c": 9, "d": 6})
    # Open without a budget: a's own CONTEXT, so deadline 3 + 20 - 0.5 = 22.5, handed down 22.5 - 3 - 0.5 = 19.
    asked = ctx_request(1, "s", 19.0)
    assert a.receive("s", opener(1, 0, GENESIS), 3.0) == [
        Send("c", asked),
        Send("d", asked),
        Wake(22.5),
    ]
    assert a.next_deadline() == 22.5
    assert a.receive("c", ContextReply(auction=AUCTION, hop=1, amount=9), 4.0) == []
    assert a.receive("d", ContextReply(auction=AUCTION, hop=1, amount=6), 4.0) == [
        Send("s", ContextBid(auction=AUCTION, hop=1, amount=9))
    ]
    assert a.next_deadline() is None


def test_child_that_is_the_hosts_invitee_is_cut_off_on_the_parent_side() -> None:
    # c chose a as parent but s also invited c: in s's hop c bids to s directly, so a bids alone.
    a = reported("a", ["s", "c"], 4, inviters=["s"], bids={"c": 9})
    assert a.aggregate == 9
    a.receive("s", opener(1, 0, GENESIS), 3.0)
    assert a.receive("c", ContextReply(auction=AUCTION, hop=1, amount=None), 4.0) == [
        Send("s", ContextBid(auction=AUCTION, hop=1, amount=4))
    ]


def test_child_that_is_the_hosts_invitee_answers_cut_and_bids_to_the_host() -> None:
    seed = seed_with_parent("c", ["s", "a"], ["s", "a"], "a")
    c = reported("c", ["s", "a"], 9, inviters=["s", "a"], seed=seed)
    assert c.parents == ["a"]
    request = ContextRequest(auction=AUCTION, hop=1, host="s")
    assert c.receive("a", request, 3.0) == [Send("a", ContextReply(auction=AUCTION, hop=1, amount=None))]
    assert c.receive("s", opener(1, 0, GENESIS), 3.1) == [Send("s", ContextBid(auction=AUCTION, hop=1, amount=9))]


def test_cut_child_answers_the_same_when_the_open_comes_first() -> None:
    seed = seed_with_parent("c", ["s", "a"], ["s", "a"], "a")
    c = reported("c", ["s", "a"], 9, inviters=["s", "a"], seed=seed)
    assert c.receive("s", opener(1, 0, GENESIS), 3.0) == [Send("s", ContextBid(auction=AUCTION, hop=1, amount=9))]
    request = ContextRequest(auction=AUCTION, hop=1, host="s")
    assert c.receive("a", request, 3.1) == [Send("a", ContextReply(auction=AUCTION, hop=1, amount=None))]


def test_context_request_is_relayed_down_the_subtree() -> None:
    c = reported("c", ["a", "e"], 2, inviters=["a"], bids={"e": 11})
    asked = ctx_request(1, "s", 7.0)
    # Deadline 3 + 7 - 0.5 = 9.5; e is handed 9.5 - 3 - 0.5 = 6.
    assert c.receive("a", asked, 3.0) == [Send("e", ctx_request(1, "s", 6.0)), Wake(9.5)]
    assert c.receive("a", asked, 3.125) == []  # duplicate request
    assert c.receive("e", ContextReply(auction=AUCTION, hop=1, amount=11), 4.0) == [
        Send("a", ContextReply(auction=AUCTION, hop=1, amount=11))
    ]
    # In a's own hop, c is a's invitee: it is cut from a's context and bids to a directly.
    request2 = ContextRequest(auction=AUCTION, hop=2, host="a")
    assert c.receive("a", request2, 5.0) == [Send("a", ContextReply(auction=AUCTION, hop=2, amount=None))]


def test_context_timeout_sends_the_best_bid_so_far() -> None:
    a = reported("a", ["s", "c", "d"], 3, inviters=["s"], bids={"c": 9, "d": 6})
    a.receive("s", opener(1, 0, GENESIS, HOST_BUDGET), 3.0)  # s waits until 22.5: a until 22
    a.receive("d", ContextReply(auction=AUCTION, hop=1, amount=6), 4.0)
    assert a.next_deadline() == 22.0
    assert a.on_timer(22.0 - 0.01) == []
    assert a.on_timer(22.0) == [Send("s", ContextBid(auction=AUCTION, hop=1, amount=6))]
    assert a.next_deadline() is None
    assert_rejected(a, "c", ContextReply(auction=AUCTION, hop=1, amount=9))


def _winner_a(value: int) -> tuple[SraNode, HopEntry]:
    """a bought hop 1 from s at 5; its participants c (bid 9) and d (bid 6)."""
    a = reported("a", ["s", "c", "d"], value, inviters=["s"], bids={"c": 9, "d": 6})
    a.receive("s", opener(1, 0, GENESIS), 3.0)
    a.receive("c", ContextReply(auction=AUCTION, hop=1, amount=9), 3.5)
    a.receive("d", ContextReply(auction=AUCTION, hop=1, amount=6), 3.5)
    entry = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="a", price=5, prev=GENESIS)
    return a, entry


def test_winner_records_the_entry_and_hosts_the_next_hop_with_reserve_price() -> None:
    a, entry = _winner_a(3)
    effects = a.receive("s", Award(auction=AUCTION, hop=1, price=5, entry=entry.hash), 4.0)
    hop2 = opener(2, 5, entry.hash, HOST_BUDGET)  # a host waits CONTEXT, however it got the item
    assert effects == [
        Record(entry),
        StageChanged("hosting"),
        Send("c", hop2),
        Send("d", hop2),
        Wake(4.0 + CONTEXT),
    ]
    assert a.bought_at == 5
    assert a.bought_entry == entry.hash
    a.receive("c", ContextBid(auction=AUCTION, hop=2, amount=9), 5.0)
    effects = a.receive("d", ContextBid(auction=AUCTION, hop=2, amount=6), 5.0)
    entry2 = HopEntry(auction=AUCTION, hop=2, seller="a", buyer="c", price=6, prev=entry.hash)
    assert effects == [
        StageChanged("reported"),
        Record(entry2),
        Send("c", Award(auction=AUCTION, hop=2, price=6, entry=entry2.hash)),
    ]
    assert a.sold_at == 6
    assert a.entries == [entry, entry2]


@pytest.mark.parametrize(("value", "keeps"), [(5, False), (6, True), (7, True)])
def test_reselling_host_keeps_on_ties(value: int, keeps: bool) -> None:
    a, entry = _winner_a(value)
    a.receive("s", Award(auction=AUCTION, hop=1, price=5, entry=entry.hash), 4.0)
    a.receive("c", ContextBid(auction=AUCTION, hop=2, amount=9), 5.0)
    effects = a.receive("d", ContextBid(auction=AUCTION, hop=2, amount=6), 5.0)  # price max(5, 6) = 6
    if keeps:
        settled = Settled(auction=AUCTION, winner="a", hops=1, price=5)
        assert effects == [
            StageChanged("settled"),
            Outcome("a", 5, 1),
            Send("c", settled),
            Send("d", settled),
            Send("s", settled),
        ]
        assert a.sold_at is None
    else:
        assert isinstance(effects[-1], Send) and effects[-1].to == "c"
        assert isinstance(effects[-1].msg, Award) and effects[-1].msg.price == 6


def test_reselling_host_reserve_is_the_price_floor() -> None:
    # Second context bid 2 is below a's purchase price 5: c pays 5.
    a = reported("a", ["s", "c", "d"], 1, inviters=["s"], bids={"c": 9, "d": 2})
    a.receive("s", opener(1, 0, GENESIS), 3.0)
    a.receive("c", ContextReply(auction=AUCTION, hop=1, amount=9), 3.5)
    a.receive("d", ContextReply(auction=AUCTION, hop=1, amount=2), 3.5)
    entry = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="a", price=5, prev=GENESIS)
    a.receive("s", Award(auction=AUCTION, hop=1, price=5, entry=entry.hash), 4.0)
    a.receive("c", ContextBid(auction=AUCTION, hop=2, amount=9), 5.0)
    effects = a.receive("d", ContextBid(auction=AUCTION, hop=2, amount=2), 5.0)
    entry2 = HopEntry(auction=AUCTION, hop=2, seller="a", buyer="c", price=5, prev=entry.hash)
    assert effects[-1] == Send("c", Award(auction=AUCTION, hop=2, price=5, entry=entry2.hash))


def test_reselling_host_keeps_when_the_best_bid_is_below_its_reserve() -> None:
    a = reported("a", ["s", "c"], 0, inviters=["s"], bids={"c": 3})
    a.receive("s", opener(1, 0, GENESIS), 3.0)
    a.receive("c", ContextReply(auction=AUCTION, hop=1, amount=3), 3.5)
    entry = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="a", price=3, prev=GENESIS)
    a.receive("s", Award(auction=AUCTION, hop=1, price=3, entry=entry.hash), 4.0)
    # c does not repeat its bid in a's own hop (the paper's rule leaves a holding the item).
    effects = a.receive("c", ContextBid(auction=AUCTION, hop=2, amount=2), 5.0)
    assert effects[:2] == [StageChanged("settled"), Outcome("a", 3, 1)]


def test_winner_without_participants_settles_and_floods() -> None:
    b = reported("b", ["s", "x"], 5, inviters=["s", "x"])
    b.receive("s", opener(1, 0, GENESIS), 3.0)
    entry = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="b", price=2, prev=GENESIS)
    settled = Settled(auction=AUCTION, winner="b", hops=1, price=2)
    assert b.receive("s", Award(auction=AUCTION, hop=1, price=2, entry=entry.hash), 4.0) == [
        Record(entry),
        StageChanged("hosting"),
        StageChanged("settled"),
        Outcome("b", 2, 1),
        Send("s", settled),
        Send("x", settled),
    ]
    assert b.result == settled
    assert b.next_deadline() is None


def test_settled_is_flooded_once_and_deduplicated() -> None:
    a = reported("a", ["s", "c", "d"], 3, inviters=["s"], bids={"c": 9, "d": 6})
    settled = Settled(auction=AUCTION, winner="c", hops=2, price=6)
    assert a.receive("c", settled, 9.0) == [
        StageChanged("settled"),
        Outcome("c", 6, 2),
        Send("d", settled),
        Send("s", settled),
    ]
    assert a.stage is NodeStage.SETTLED
    assert a.receive("d", settled, 9.5) == []
    assert a.receive("s", settled, 9.6) == []
    assert_rejected(a, "d", Settled(auction=AUCTION, winner="d", hops=2, price=6))
    assert_rejected(a, "d", Settled(auction=AUCTION, winner="c", hops=2, price=7))


def test_settled_clears_every_deadline() -> None:
    a = make("a", ["s", "c"], 3)
    a.receive("s", INVITE, 1.0)
    a.on_timer(1.5)
    assert a.next_deadline() is not None
    a.receive("s", Settled(auction=AUCTION, winner="s", hops=0, price=0), 2.0)
    assert a.next_deadline() is None
    assert a.on_timer(1000.0) == []


# ---------------------------------------------------------------------------- bad messages


def test_message_from_a_non_neighbour_is_rejected() -> None:
    a = make("a", ["s", "c"], 3)
    assert_rejected(a, "zz", INVITE)
    a.receive("s", INVITE, 1.0)
    assert_rejected(a, "zz", INVITE)
    assert_rejected(a, "zz", bid(1))
    assert_rejected(a, "zz", Settled(auction=AUCTION, winner="zz", hops=0, price=0))


@pytest.mark.parametrize(
    "msg",
    [
        Invite(auction="other", item=ITEM, seller="s", genesis=genesis_hash("other", ITEM, "s")),
        Bid(auction="other", amount=1),
        Decline(auction="other"),
        Open(auction="other", hop=1, reserve=0, prev=GENESIS),
        ContextRequest(auction="other", hop=1, host="s"),
        ContextReply(auction="other", hop=1, amount=1),
        ContextBid(auction="other", hop=1, amount=1),
        Award(auction="other", hop=1, price=1, entry="00" * 32),
        Settled(auction="other", winner="s", hops=0, price=0),
    ],
    ids=lambda m: type(m).__name__,
)
def test_wrong_auction_id_is_rejected_for_every_message_type(msg: object) -> None:
    a = make("a", ["s", "c"], 3)
    assert_rejected(a, "s", msg)
    a = reported("a", ["s", "c"], 3, inviters=["s"], bids={"c": 4})
    assert_rejected(a, "s", msg)
    assert_rejected(a, "c", msg)


@pytest.mark.parametrize(
    "msg",
    [
        Invite(auction=AUCTION, item=ITEM, seller="x", genesis=GENESIS),
        Invite(auction=AUCTION, item=ITEM, seller="s", genesis=genesis_hash(AUCTION, "other item", "s")),
        Invite(auction=AUCTION, item=ITEM, seller="s", genesis="00" * 32),
        Invite(auction=AUCTION, item="other item", seller="s", genesis=GENESIS),
    ],
)
def test_invitation_not_matching_the_auction_is_rejected(msg: Invite) -> None:
    a = make("a", ["s", "x"], 3)
    assert_rejected(a, "s", msg)
    a.receive("s", INVITE, 1.0)
    assert_rejected(a, "x", msg)


def test_seller_rejects_an_invitation_before_starting() -> None:
    s = make("s", ["a"])
    assert_rejected(s, "a", INVITE)


def test_invitation_after_replying_is_rejected() -> None:
    a = make("a", ["s", "c", "d"], 3)
    a.receive("s", INVITE, 1.0)
    a.on_timer(1.5)
    a.receive("c", DECLINE, 2.0)
    assert_rejected(a, "c", INVITE)
    a.receive("d", bid(1), 2.0)
    assert_rejected(a, "d", INVITE)


def test_stage2_replies_from_non_invitees_are_rejected() -> None:
    a = make("a", ["s", "b", "c"], 3)
    assert_rejected(a, "c", bid(1))  # idle: nobody invited yet
    a.receive("s", INVITE, 1.0)
    a.receive("b", INVITE, 1.1)
    assert_rejected(a, "c", bid(1))  # still gathering
    a.on_timer(1.5)
    assert_rejected(a, "s", bid(1))  # an inviter is not an invitee
    assert_rejected(a, "b", DECLINE)
    s = make("s", ["a", "b"])
    assert_rejected(s, "a", bid(1))  # before start


def test_second_stage2_reply_is_rejected() -> None:
    a = make("a", ["s", "c", "d"], 3)
    a.receive("s", INVITE, 1.0)
    a.on_timer(1.5)
    a.receive("c", bid(4), 2.0)
    assert_rejected(a, "c", bid(4))
    assert_rejected(a, "c", DECLINE)
    a.receive("d", DECLINE, 2.0)
    assert_rejected(a, "d", DECLINE)
    assert_rejected(a, "d", bid(2))


def test_negative_bid_is_rejected() -> None:
    a = make("a", ["s", "c"], 3)
    a.receive("s", INVITE, 1.0)
    a.on_timer(1.5)
    assert_rejected(a, "c", bid(-1))
    # and c can still answer properly afterwards
    assert a.receive("c", bid(1), 2.0) == [StageChanged("reported"), Send("s", bid(3))]


def test_bad_open_is_rejected() -> None:
    seed = seed_with_parent("a", ["s", "x", "c"], ["s", "x"], "s")
    a = make("a", ["s", "x", "c"], 3, seed=seed)
    a.receive("s", INVITE, 1.0)
    assert_rejected(a, "s", opener(1, 0, GENESIS))  # still gathering
    a.receive("x", INVITE, 1.1)
    a.on_timer(1.5)
    assert_rejected(a, "s", opener(1, 0, GENESIS))  # still waiting for c: not reported
    a.receive("c", bid(4), 2.0)
    assert_rejected(a, "c", opener(1, 0, GENESIS))  # from its invitee, not an inviter
    assert_rejected(a, "s", opener(0, 0, GENESIS))  # hop 0
    assert_rejected(a, "s", opener(1, -1, GENESIS))  # negative reserve
    a.receive("s", opener(1, 0, GENESIS), 3.0)
    assert_rejected(a, "s", opener(1, 1, GENESIS))  # hop 1 again, different content
    assert_rejected(a, "x", opener(1, 0, GENESIS))  # hop 1 again, another inviter


def test_context_request_from_a_non_parent_is_rejected() -> None:
    seed = seed_with_parent("a", ["s", "x", "c"], ["s", "x"], "s")
    a = reported("a", ["s", "x", "c"], 3, inviters=["s", "x"], bids={"c": 5}, seed=seed)
    request = ContextRequest(auction=AUCTION, hop=1, host="q")
    assert_rejected(a, "x", request)  # an inviter it declined
    assert_rejected(a, "c", request)  # its own child
    assert_rejected(a, "s", ContextRequest(auction=AUCTION, hop=0, host="q"))


def test_unexpected_context_reply_is_rejected() -> None:
    a = reported("a", ["s", "c", "d"], 3, inviters=["s"], bids={"c": 5}, declines=("d",))
    reply = ContextReply(auction=AUCTION, hop=1, amount=5)
    assert_rejected(a, "c", reply)  # nobody asked yet
    a.receive("s", opener(1, 0, GENESIS), 3.0)
    assert_rejected(a, "d", reply)  # d is not a's tree child
    assert_rejected(a, "s", reply)
    assert_rejected(a, "c", ContextReply(auction=AUCTION, hop=2, amount=5))  # wrong hop
    assert_rejected(a, "c", ContextReply(auction=AUCTION, hop=1, amount=-1))  # negative
    a.receive("c", reply, 4.0)
    assert_rejected(a, "c", reply)  # second reply


def test_unexpected_context_bid_is_rejected() -> None:
    s = make("s", ["a", "b", "c"])
    s.start(0.0)
    assert_rejected(s, "a", ContextBid(auction=AUCTION, hop=1, amount=1))  # not hosting yet
    s.receive("a", bid(8), 2.0)
    s.receive("b", DECLINE, 2.0)
    s.on_timer(REPLY)  # c silent: not a participant
    assert s.stage is NodeStage.HOSTING
    assert_rejected(s, "c", ContextBid(auction=AUCTION, hop=1, amount=1))  # not a participant
    assert_rejected(s, "a", ContextBid(auction=AUCTION, hop=2, amount=1))  # wrong hop
    assert_rejected(s, "a", ContextBid(auction=AUCTION, hop=1, amount=-1))  # negative
    s.receive("a", ContextBid(auction=AUCTION, hop=1, amount=8), 3.0)
    assert_rejected(s, "a", ContextBid(auction=AUCTION, hop=1, amount=8))  # second bid


def test_bad_award_is_rejected() -> None:
    a, entry = _winner_a(3)
    good = Award(auction=AUCTION, hop=1, price=5, entry=entry.hash)
    assert_rejected(a, "c", good)  # not the host of hop 1
    assert_rejected(a, "s", Award(auction=AUCTION, hop=2, price=5, entry=entry.hash))  # hop not opened
    assert_rejected(a, "s", Award(auction=AUCTION, hop=1, price=6, entry=entry.hash))  # hash of another price
    assert_rejected(a, "s", Award(auction=AUCTION, hop=1, price=5, entry="00" * 32))
    other_prev = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="a", price=5, prev="11" * 32)
    assert_rejected(a, "s", Award(auction=AUCTION, hop=1, price=5, entry=other_prev.hash))
    a.receive("s", good, 4.0)
    assert_rejected(a, "s", good)  # it already bought


def test_award_below_the_announced_reserve_is_rejected() -> None:
    b = reported("b", ["s"], 5, inviters=["s"])
    prev = "ab" * 32
    b.receive("s", opener(2, 4, prev), 3.0)
    low = HopEntry(auction=AUCTION, hop=2, seller="s", buyer="b", price=3, prev=prev)
    assert_rejected(b, "s", Award(auction=AUCTION, hop=2, price=3, entry=low.hash))
    negative = HopEntry(auction=AUCTION, hop=2, seller="s", buyer="b", price=0, prev=prev)
    assert_rejected(b, "s", Award(auction=AUCTION, hop=2, price=-1, entry=negative.hash))
    ok = HopEntry(auction=AUCTION, hop=2, seller="s", buyer="b", price=4, prev=prev)
    assert b.receive("s", Award(auction=AUCTION, hop=2, price=4, entry=ok.hash), 4.0)[0] == Record(ok)


def test_malformed_settlement_is_rejected() -> None:
    a = make("a", ["s"], 3)
    assert_rejected(a, "s", Settled(auction=AUCTION, winner="s", hops=0, price=-1))
    assert_rejected(a, "s", Settled(auction=AUCTION, winner="s", hops=-1, price=0))


# ---------------------------------------------------------------------------- ranges
# Amounts and hop numbers are ints in [0, 2**63 - 1] (bool is not an int here), Open.prev
# is 64 lowercase hex digits, a budget is None or a number in [0, 1e9).  Anything else is
# rejected before any state changes, so it can never crash the ledger encoding later.

MAX = 2**63 - 1
BAD_AMOUNTS = [MAX + 1, 2**128, -1, True, 1.0, "1", None]
BAD_BUDGETS = [-0.5, -1, 1e9, float("inf"), float("nan"), True, "5"]


def _aggregating() -> SraNode:
    a = make("a", ["s", "c", "x"], 3)
    a.receive("s", INVITE, 1.0)
    a.on_timer(1.5)
    return a


@pytest.mark.parametrize(
    "amount",
    [
        *BAD_AMOUNTS[:-1],
        None,  # a Bid must carry an amount; None is not a Decline
    ],
    ids=repr,
)
def test_stage2_bid_out_of_range_is_rejected(amount: object) -> None:
    a = _aggregating()
    assert_rejected(a, "c", Bid(auction=AUCTION, amount=amount))  # type: ignore[arg-type]


def test_largest_amount_is_accepted() -> None:
    a = _aggregating()
    a.receive("x", DECLINE, 2.0)
    assert a.receive("c", bid(MAX), 2.0) == [StageChanged("reported"), Send("s", bid(MAX))]


@pytest.mark.parametrize("budget", BAD_BUDGETS, ids=repr)
def test_invite_with_a_budget_out_of_range_is_rejected(budget: object) -> None:
    bad = invite(budget)  # type: ignore[arg-type]
    a = make("a", ["s", "b", "c"], 3)
    assert_rejected(a, "s", bad)  # idle
    a.receive("s", INVITE, 1.0)
    assert_rejected(a, "b", bad)  # gathering
    a.on_timer(1.5)
    assert_rejected(a, "c", bad)  # a crossing invitation from a pending invitee
    s = make("s", ["a"])
    s.start(0.0)
    assert_rejected(s, "a", bad)


def test_budget_bounds_are_accepted() -> None:
    a = make("a", ["s", "b", "c"], 3)
    a.receive("s", invite(0), 1.0)  # an int budget is fine too
    a.receive("b", invite(1e9 - 1), 1.0)
    assert a.inviters == ["s", "b"]
    effects = a.on_timer(1.5)
    # The budget 0 counts: the wait ends when a forwards, so the same call also reports.
    assert effects[:3] == [StageChanged("aggregating"), Send("c", invite(0.0)), Wake(1.5)]
    assert a.stage is NodeStage.REPORTED and a.silent == {"c"}


@pytest.mark.parametrize(
    "bad",
    [
        opener(1, 0, "not-a-hash"),
        opener(1, 0, GENESIS.upper()),
        opener(1, 0, GENESIS[:-1]),
        opener(1, 0, GENESIS + "0"),
        opener(1, 0, " " + GENESIS[1:]),
        opener(1, 0, GENESIS.encode()),  # type: ignore[arg-type]
        opener(1, 0, 7),  # type: ignore[arg-type]
        *(opener(hop, 0, GENESIS) for hop in (0, MAX + 1, True, 1.0)),  # type: ignore[arg-type]
        *(opener(1, reserve, GENESIS) for reserve in BAD_AMOUNTS),  # type: ignore[arg-type]
        *(opener(1, 0, GENESIS, budget) for budget in BAD_BUDGETS),  # type: ignore[arg-type]
    ],
    ids=repr,
)
def test_malformed_open_is_rejected(bad: Open) -> None:
    b = reported("b", ["s"], 5, inviters=["s"])
    assert_rejected(b, "s", bad)
    # The host can still open properly afterwards.
    assert b.receive("s", opener(1, 0, GENESIS), 3.0) == [Send("s", ContextBid(auction=AUCTION, hop=1, amount=5))]


def test_open_with_malformed_prev_never_reaches_the_award() -> None:
    # Regression: a non-hex prev used to be accepted and the Award then crashed the
    # machine with ValueError (bytes.fromhex) instead of a RemoteProtocolError.
    b = reported("b", ["s"], 5, inviters=["s"])
    assert_rejected(b, "s", opener(1, 0, "not-a-hash"))
    assert_rejected(b, "s", Award(auction=AUCTION, hop=1, price=1, entry="00" * 32))  # hop 1 was never opened


@pytest.mark.parametrize("price", [MAX + 1, 2**128, True, 5.0, "5"], ids=repr)
def test_award_with_a_price_out_of_range_is_rejected_not_a_crash(price: object) -> None:
    # Regression: 2**128 did not fit the entry's 16 bytes and raised OverflowError.
    b = reported("b", ["s"], 5, inviters=["s"])
    b.receive("s", opener(1, 0, GENESIS), 3.0)
    assert_rejected(b, "s", Award(auction=AUCTION, hop=1, price=price, entry="00" * 32))  # type: ignore[arg-type]


def test_award_at_the_largest_price_is_accepted() -> None:
    b = reported("b", ["s"], MAX, inviters=["s"])
    b.receive("s", opener(1, 0, GENESIS), 3.0)
    entry = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="b", price=MAX, prev=GENESIS)
    assert b.receive("s", Award(auction=AUCTION, hop=1, price=MAX, entry=entry.hash), 4.0)[0] == Record(entry)


def test_award_signature_field_is_ignored_by_the_machine() -> None:
    b = reported("b", ["s"], 5, inviters=["s"])
    b.receive("s", opener(1, 0, GENESIS), 3.0)
    entry = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="b", price=2, prev=GENESIS)
    signed = Award(auction=AUCTION, hop=1, price=2, entry=entry.hash, seller_sig=b"\x01" * 64)
    assert b.receive("s", signed, 4.0)[0] == Record(entry)


@pytest.mark.parametrize(
    "bad",
    [
        *(ctx_request(hop, "s") for hop in (0, MAX + 1, True, 1.0)),  # type: ignore[arg-type]
        *(ctx_request(1, "s", budget) for budget in BAD_BUDGETS),  # type: ignore[arg-type]
    ],
    ids=repr,
)
def test_malformed_context_request_is_rejected(bad: ContextRequest) -> None:
    c = reported("c", ["a", "e"], 2, inviters=["a"], bids={"e": 11})
    assert_rejected(c, "a", bad)


@pytest.mark.parametrize("amount", [a for a in BAD_AMOUNTS if a is not None], ids=repr)
def test_context_amounts_out_of_range_are_rejected(amount: object) -> None:
    a = reported("a", ["s", "c"], 3, inviters=["s"], bids={"c": 9})
    a.receive("s", opener(1, 0, GENESIS), 3.0)
    assert_rejected(a, "c", ContextReply(auction=AUCTION, hop=1, amount=amount))  # type: ignore[arg-type]
    s = seller_hosting(["a"], 0, {"a": 8})
    assert_rejected(s, "a", ContextBid(auction=AUCTION, hop=1, amount=amount))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        *(Settled(auction=AUCTION, winner="s", hops=hops, price=0) for hops in BAD_AMOUNTS),  # type: ignore[arg-type]
        *(Settled(auction=AUCTION, winner="s", hops=0, price=price) for price in BAD_AMOUNTS),  # type: ignore[arg-type]
        Settled(auction=AUCTION, winner=5, hops=0, price=0),  # type: ignore[arg-type]
    ],
    ids=repr,
)
def test_settlement_out_of_range_is_rejected(bad: Settled) -> None:
    a = reported("a", ["s", "c"], 3, inviters=["s"], bids={"c": 9})
    assert_rejected(a, "s", bad)


@pytest.mark.parametrize("hop", [1.0, True])  # regression: these once matched hop 1 (and 1.0 crashed)
def test_stage3_answers_name_their_hop_as_an_int(hop: object) -> None:
    b = reported("b", ["s"], 5, inviters=["s"])
    b.receive("s", opener(1, 0, GENESIS), 3.0)
    entry = HopEntry(auction=AUCTION, hop=1, seller="s", buyer="b", price=2, prev=GENESIS)
    assert_rejected(b, "s", Award(auction=AUCTION, hop=hop, price=2, entry=entry.hash))  # type: ignore[arg-type]
    a = reported("a", ["s", "c"], 3, inviters=["s"], bids={"c": 9})
    a.receive("s", opener(1, 0, GENESIS), 3.0)
    assert_rejected(a, "c", ContextReply(auction=AUCTION, hop=hop, amount=9))  # type: ignore[arg-type]
    s = seller_hosting(["a"], 0, {"a": 8})
    assert_rejected(s, "a", ContextBid(auction=AUCTION, hop=hop, amount=8))  # type: ignore[arg-type]
