"""The clearing (greedy, MIP, rules) and the market machine around it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer.mirage.clearing import best_of, check_allocation, clear
from peer.mirage.market import MirageMarket
from peer.mirage.model import A1, A2, A2_MIP, A2_RULES, Allocation, Bid, Clearing, MarketError, RoundState
from peer.money import SCALE

RICH = 10**12


def state(now: int, used: list[int], capacity: int = 10, users: str = "abcdef", busy=()) -> RoundState:
    return RoundState(now, capacity, tuple(used), tuple((u, RICH) for u in users), busy)


def test_a1_a_full_window_lets_only_short_blocks_in() -> None:
    """S3's lever: one free column at the end of a full A1 window takes a 1-hour block, not a 2-hour one."""
    s = state(100, [10] * 71 + [0])
    long = Bid("long", "a", 1000 * SCALE, 10, 2, 100, 400)
    short = Bid("short", "b", 1 * SCALE, 10, 1, 100, 400)
    c = clear(s, [long, short], A1)
    assert [(a.bid_id, a.start) for a in c.allocations] == [("short", 171)]


def test_a2_both_durations_compete_on_value_once_the_start_opens() -> None:
    """Under A2 the start horizon binds, not the window end: the long bid wins on value."""
    s = state(100, [10] * 71 + [0] * 33)
    long = Bid("long", "a", 1000 * SCALE, 10, 16, 100, 400)
    short = Bid("short", "b", 1 * SCALE, 10, 1, 100, 400)
    c = clear(s, [long, short], A2)
    assert [(a.bid_id, a.start) for a in c.allocations] == [("long", 171)]


def test_greedy_ranks_by_value_per_node_hour_and_ties_by_submission() -> None:
    s = state(0, [0] * 72, capacity=4)
    bids = [Bid("x", "a", 8, 4, 2, 0, 0, seq=2), Bid("y", "b", 8, 4, 2, 0, 0, seq=1), Bid("z", "c", 7, 2, 2, 0, 0, seq=0)]
    c = clear(s, bids, A1)
    assert [a.bid_id for a in c.allocations] == ["z"]  # 7/4 per node-hour beats 8/8
    c = clear(s, bids[:2], A1)
    assert [a.bid_id for a in c.allocations] == ["y"]  # equal rates: the earlier submission


def test_a_bid_beyond_its_users_budget_is_not_allocated() -> None:
    s = RoundState(0, 10, tuple([0] * 72), (("a", 5 * SCALE), ("b", 100 * SCALE)))
    bids = [Bid("pricey", "a", 6 * SCALE, 1, 1, 0, 10), Bid("cheap", "a", 5 * SCALE, 1, 1, 0, 10),
            Bid("other", "b", 1, 1, 1, 0, 10)]
    c = clear(s, bids, A1)
    assert {a.bid_id for a in c.allocations} == {"cheap", "other"}
    assert dict(c.payments) == {"a": 5 * SCALE, "b": 1}


def test_the_rules_one_bid_and_no_overlap() -> None:
    s = state(0, [0] * 104)
    bids = [Bid("a1", "a", 10, 2, 4, 0, 0, seq=1), Bid("a2", "a", 10, 2, 4, 0, 0, seq=2)]
    assert len(clear(s, bids, A2).allocations) == 2
    assert [a.bid_id for a in clear(s, bids, replace(A2, one_bid_per_user=True)).allocations] == ["a1"]
    no_overlap = replace(A2, no_overlap_per_user=True)
    assert [a.bid_id for a in clear(s, bids, no_overlap).allocations] == ["a1"]
    # ... and it counts what the user already holds: busy hours 0-3 push its block to hour 4.
    held = state(0, [2] * 4 + [0] * 100, busy=(("a", (0, 1, 2, 3)),))
    flexible = Bid("a3", "a", 10, 2, 4, 0, 50)
    assert [a.start for a in clear(held, [flexible], no_overlap).allocations] == [4]


def test_mip_beats_greedy_on_a_knapsack_and_is_kept() -> None:
    s = state(0, [0] * 104, capacity=10)
    # Greedy takes the dense 6-node bid; then neither 5-node bid fits.  Two 5-node bids are worth more.
    bids = [Bid("dense", "a", 70, 6, 1, 71, 71), Bid("b", "b", 50, 5, 1, 71, 71), Bid("c", "c", 50, 5, 1, 71, 71)]
    greedy = clear(s, bids, A2)
    mip = clear(s, bids, A2_MIP)
    assert greedy.value == 70 and [a.bid_id for a in greedy.allocations] == ["dense"]
    assert mip.algorithm == "mip" and mip.value == 100 and mip.greedy_value == 70


def test_mip_not_run_when_greedy_took_every_bid() -> None:
    s = state(0, [0] * 104)
    c = clear(s, [Bid("x", "a", 5, 3, 3, 0, 10)], A2_MIP)
    assert c.algorithm == "greedy" and c.mip_value is None and len(c.allocations) == 1


bid_lists = st.lists(
    st.tuples(st.sampled_from("abcd"), st.integers(1, 50), st.integers(1, 10), st.integers(1, 32),
              st.integers(0, 80), st.integers(0, 40)),
    min_size=1, max_size=10,
)


@settings(max_examples=60, deadline=None)
@given(raw=bid_lists, used=st.lists(st.integers(0, 10), min_size=104, max_size=104),
       rules=st.sampled_from([A1, A2, A2_MIP, A2_RULES, replace(A2_MIP, no_overlap_per_user=True)]))
def test_every_clearing_is_feasible_and_mip_never_loses_value(raw, used, rules) -> None:
    bids = [Bid(f"b{i}", u, v, n, h, e, e + w, seq=i) for i, (u, v, n, h, e, w) in enumerate(raw)]
    s = RoundState(0, 10, tuple(used[: rules.window_hours]), tuple((u, 200) for u in "abcd"))
    c = clear(s, bids, rules)
    check_allocation(s, bids, c.allocations, rules)
    if rules.mip:
        assert c.value == max(c.greedy_value, c.mip_value or 0)
    assert best_of(s, bids, rules, [c.allocations, ()]) == c.allocations or c.value == 0


def test_best_of_ignores_infeasible_candidates() -> None:
    s = state(0, [0] * 104, capacity=4)
    bids = [Bid("x", "a", 5, 4, 2, 0, 5), Bid("y", "b", 9, 4, 2, 0, 5)]
    over = (Allocation("x", "a", 0, 2, 4, 5), Allocation("y", "b", 0, 2, 4, 9))
    good = (Allocation("y", "b", 0, 2, 4, 9),)
    assert best_of(s, bids, A2, [over, good, ()]) == good
    with pytest.raises(MarketError):
        best_of(s, bids, A2, [over])


def test_the_market_refuses_bad_input_and_changes_nothing() -> None:
    m = MirageMarket(replace(A2, one_bid_per_user=True, fee=3), capacity=10)
    m.submit(Bid("x", "a", 5, 4, 2, 0, 5), 0)
    with pytest.raises(MarketError, match="one-bid rule"):
        m.submit(Bid("y", "a", 5, 4, 2, 0, 5), 0)
    with pytest.raises(MarketError, match="already outstanding"):
        m.submit(Bid("x", "b", 5, 4, 2, 0, 5), 0)
    with pytest.raises(MarketError, match="asks for 11"):
        m.submit(Bid("z", "b", 5, 11, 2, 0, 5), 0)
    with pytest.raises(MarketError, match="no outstanding bid"):
        m.revise("x", "b", 9)
    m.revise("x", "a", 9)
    assert m.take_fees() == {"a": 6} and m.take_fees() == {}
    assert m.visible_bids() == []  # sealed
    before = (dict(m.pending), dict(m.used))
    bogus = Clearing((Allocation("x", "a", 0, 2, 4, 9), Allocation("x2", "a", 0, 2, 4, 9)), (), "greedy", 0)
    with pytest.raises(MarketError, match="not outstanding"):
        m.apply(bogus)
    assert (dict(m.pending), dict(m.used)) == before
    m.used[1] = 8
    with pytest.raises(MarketError, match="beyond capacity"):
        m.apply(Clearing((Allocation("x", "a", 0, 2, 4, 9),), (), "greedy", 0))
    assert dict(m.pending) == before[0] and m.used[0] == 0 and m.used[1] == 8


def test_the_window_rolls_and_expired_bids_leave() -> None:
    m = MirageMarket(A1, capacity=2)
    m.submit(Bid("x", "a", 5, 2, 1, 0, 0), 0)
    s, bids = m.round_inputs(0, {"a": 10})
    m.apply(clear(s, bids, A1))
    assert m.free_window(0)[0] == 0 and m.free_window(1)[0] == 2 and len(m.free_window(1)) == 72
    m.submit(Bid("late", "a", 5, 2, 1, 0, 1), 0)
    _, bids = m.round_inputs(2, {"a": 10})
    assert bids == () and m.pending == {}
    assert m.visible_bids() == []


@pytest.mark.parametrize("bad", [
    dict(value=-1), dict(nodes=0), dict(hours=33), dict(hours=0), dict(latest=-1), dict(value=1.5), dict(bid_id=""),
])
def test_malformed_bids_are_refused(bad) -> None:
    fields = dict(bid_id="b", user="u", value=1, nodes=1, hours=1, earliest=0, latest=0) | bad
    with pytest.raises(MarketError):
        Bid(**fields)
