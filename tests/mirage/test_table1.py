"""The paper's Table 1 (strategy S4 on 97 MICA2 motes, 2 April 2005) replayed through the market.

Hour 0 is 04-02-2005 00:00.  The SenSys deadline has the window full: every
hour before 78 is booked, so under A2 (starts within the next 72 hours) the
first round in which any block can start is the one clearing at hour 7
(7 + 71 = 78).  The four bids arrive as in the table: U2 at 03:58 (round 4),
U1 at 05:05 and 05:28 (round 6) and 06:12 (round 7).
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from peer.mirage.clearing import clear
from peer.mirage.market import MirageMarket
from peer.mirage.model import A2, A2_MIP, Bid, MarketError, Rules
from peer.money import SCALE

MOTES = 97
FULL_UNTIL = 78  # hours 0..77 already allocated
TABLE_1 = [  # (round it arrives before, bid id, user, value, nodes, hours) in the table's order
    (4, "u2-1590", "U2", 1590, 97, 32),
    (6, "u1-5", "U1", 5, 24, 4),
    (6, "u1-130", "U1", 130, 40, 4),
    (7, "u1-1", "U1", 1, 33, 4),
]
BUDGETS = {"U1": 2000 * SCALE, "U2": 2000 * SCALE}  # U2 bid 1590: its balance was above the 1000 baseline


def replay(rules: Rules, order: list[tuple[int, str, str, int, int, int]] = TABLE_1, last_round: int = 11):
    """Run rounds 4..last_round; return the market, per-round clearings and the refused submissions."""
    market = MirageMarket(rules, MOTES)
    for h in range(FULL_UNTIL):  # the other users' allocations that fill the window
        market.used[h] = MOTES
    refused, clearings = [], {}
    for now in range(4, last_round + 1):
        for arrives, bid_id, user, value, nodes, hours in order:
            if arrives == now:
                bid = Bid(bid_id, user, value * SCALE, nodes, hours, earliest=now, latest=now + 200)
                try:
                    market.submit(bid, now)
                except MarketError:
                    refused.append(bid_id)
        state, bids = market.round_inputs(now, BUDGETS)
        clearing = clear(state, bids, rules)
        market.apply(clearing)
        clearings[now] = clearing
    return market, clearings, refused


def won(clearing) -> dict[str, tuple[int, int]]:
    return {a.bid_id: (a.start, a.nodes) for a in clearing.allocations}


def test_the_table_values_per_node_hour() -> None:
    by_id = {b[1]: Fraction(b[3], b[4] * b[5]) for b in TABLE_1}
    assert by_id["u1-130"] == Fraction(13, 16)  # 0.8125: the paper's 0.813
    # The paper prints 1590 / (32 * 97) as 0.0512; it is 0.5122.  U2 still ranks below the 130 bid,
    # but above U1's low backfill bids, which matters under the one-bid rule.
    assert by_id["u2-1590"] == Fraction(1590, 3104) and round(float(by_id["u2-1590"]), 4) == 0.5122
    assert by_id["u1-130"] > by_id["u2-1590"] > by_id["u1-5"] > by_id["u1-1"]


def test_no_block_can_start_before_round_7() -> None:
    _, clearings, _ = replay(A2)
    assert all(not clearings[r].allocations for r in (4, 5, 6))


def test_greedy_the_sandwich_takes_all_97_motes_for_136() -> None:
    market, clearings, refused = replay(A2)
    assert refused == []
    assert won(clearings[7]) == {"u1-130": (78, 40), "u1-5": (78, 24), "u1-1": (78, 33)}
    assert dict(clearings[7].payments) == {"U1": 136 * SCALE}
    # 388 node-hours for 136: 0.35 per node-hour, where the 0.8125 it bid to win would cost 315.
    # U2's 32-hour block cannot start at 78; it waits until the round at 11 can start it at 82.
    assert [r for r in range(8, 11) if clearings[r].allocations] == []
    assert won(clearings[11]) == {"u2-1590": (82, 97)}


def test_mip_keeps_u2_and_the_sandwich_loses() -> None:
    _, clearings, _ = replay(A2_MIP, last_round=7)
    c = clearings[7]
    assert c.greedy_value == 136 * SCALE and c.mip_value == 1590 * SCALE
    assert c.algorithm == "mip" and won(c) == {"u2-1590": (78, 97)}


def test_one_bid_rule_refuses_the_backfill_and_u2_wins() -> None:
    _, clearings, refused = replay(replace(A2, name="A2+one-bid", one_bid_per_user=True), last_round=7)
    assert refused == ["u1-130", "u1-1"]  # U1's 24-node bid is still outstanding when they arrive
    assert won(clearings[7]) == {"u2-1590": (78, 97)}  # 0.5122 outranks U1's only bid at 0.052


def test_one_bid_rule_when_u1_leads_with_the_high_bid() -> None:
    """The rule stops the backfill but not greedy's blocking: U1 gets 40 motes, U2 still waits."""
    order = [TABLE_1[0], (6, "u1-130", "U1", 130, 40, 4), (6, "u1-5", "U1", 5, 24, 4), TABLE_1[3]]
    _, clearings, refused = replay(replace(A2, name="A2+one-bid", one_bid_per_user=True), order, last_round=7)
    assert refused == ["u1-5", "u1-1"]
    assert won(clearings[7]) == {"u1-130": (78, 40)}
    assert dict(clearings[7].payments) == {"U1": 130 * SCALE}


def test_no_overlap_rule_leaves_u1_only_its_high_bid() -> None:
    _, clearings, refused = replay(replace(A2, name="A2+no-overlap", no_overlap_per_user=True), last_round=7)
    assert refused == []
    assert won(clearings[7]) == {"u1-130": (78, 40)}


@pytest.mark.parametrize("rules", [A2, A2_MIP])
def test_every_replay_allocation_is_within_capacity(rules: Rules) -> None:
    market, _, _ = replay(rules, last_round=14)
    assert max(market.used.values()) <= MOTES
