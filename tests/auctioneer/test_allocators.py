"""The two allocators of Sec. 5.2 and the task groups: properties against brute force and invariants."""

from __future__ import annotations

import itertools
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from peer.auctioneer.bids import Side
from peer.auctioneer.double import double_auction
from peer.auctioneer.transfer import Transfer, groups
from peer.auctioneer.vcg import Market, standard_auction
from tests.auctioneer._helpers import bid

values = st.integers(1, 60)
quantities = st.integers(0, 12)


@st.composite
def double_market(draw):
    users = [bid(i, draw(values), draw(quantities)) for i in range(draw(st.integers(0, 8)))]
    provs = [bid(j, draw(values), draw(quantities), Side.PROVIDER) for j in range(draw(st.integers(0, 4)))]
    return users + provs, draw(st.binary(min_size=32, max_size=32))


def utilities(bids, allocation):
    got = defaultdict(int)
    for t in allocation.trades:
        got[t.user] += t.quantity
        got[t.provider] += t.quantity
    charges, credits = dict(allocation.charges), dict(allocation.credits)
    return got, charges, credits


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(double_market())
def test_double_auction_is_feasible_individually_rational_and_budget_balanced(market):
    bids, coin = market
    alloc = double_auction(bids, coin)
    got, charges, credits = utilities(bids, alloc)
    assert sum(charges.values()) == sum(credits.values())  # strong budget balance, exact
    for b in bids:
        assert got[b.bidder] <= b.quantity  # demand and capacity respected
        if b.side == Side.USER:
            assert charges.get(b.bidder, 0) <= b.value * got[b.bidder]  # never pays above its value
        else:
            assert credits.get(b.bidder, 0) >= b.value * got[b.bidder]  # never paid below its cost
    assert double_auction(bids, coin) == alloc  # deterministic given the coin


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(double_market(), st.data())
def test_double_auction_no_user_gains_by_misreporting_its_value(market, data):
    """Truthful for every coin outcome (hence in expectation): a user's utility at its true value is
    at least its utility under any other reported value, the others' bids and the coin fixed."""
    bids, coin = market
    users = [i for i, b in enumerate(bids) if b.side == Side.USER]
    if not users:
        return
    i = data.draw(st.sampled_from(users))
    true = bids[i]
    # the allocator never checks signatures (the agreement did), so the lie keeps the old one
    lie = type(true)(true.round, true.bidder, true.side, data.draw(values), true.quantity, true.sig)

    def utility(report):
        alloc = double_auction([*bids[:i], report, *bids[i + 1 :]], coin)
        got, charges, _ = utilities(bids, alloc)
        return true.value * got[true.bidder] - charges.get(true.bidder, 0)

    assert utility(true) >= utility(lie)


def brute_force_vcg(market: Market):
    """Every assignment of users to providers or nobody: the optimal welfare with and without each user."""
    n, m = len(market.users), len(market.providers)

    def best(excluded):
        top = 0
        for choice in itertools.product(range(-1, m), repeat=n):
            load = [0] * m
            welfare = 0
            for i, j in enumerate(choice):
                if j >= 0 and i != excluded:
                    load[j] += market.demands[i]
                    welfare += market.weight(i)
            if all(load[j] <= market.capacities[j] for j in range(m)):
                top = max(top, welfare)
        return top

    return best(None), {i: best(i) for i in range(n)}


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    st.lists(st.tuples(st.integers(1, 30), st.integers(1, 6)), min_size=1, max_size=5),
    st.lists(st.integers(0, 10), min_size=1, max_size=3),
)
def test_exact_vcg_matches_brute_force(users, capacities):
    bids = [bid(i, v, d) for i, (v, d) in enumerate(users)]
    bids += [bid(j, 0, c, Side.PROVIDER) for j, c in enumerate(capacities)]
    market = Market.of(bids)
    alloc = standard_auction(bids)
    welfare, without = brute_force_vcg(market)
    served = {t.user: t for t in alloc.trades}
    assert sum(market.weight(market.users.index(u)) for u in served) == welfare
    charges = dict(alloc.charges)
    for i, user in enumerate(market.users):
        expected = without[i] - (welfare - market.weight(i)) if user in served else 0
        assert charges.get(user, 0) == expected
    assert sum(charges.values()) == sum(dict(alloc.credits).values())
    load = defaultdict(int)
    for t in alloc.trades:
        load[t.provider] += t.quantity
    assert all(load[p] <= c for p, c in zip(market.providers, market.capacities, strict=True))


@settings(deadline=None, derandomize=True, database=None)
@given(st.integers(1, 20), st.integers(0, 6))
def test_groups_partition_the_providers_into_p_groups_of_more_than_k(m, k):
    providers = [bytes([i]) * 32 for i in range(m)]
    if m < k + 1:
        return
    out = groups(providers, k)
    assert len(out) == m // (k + 1)
    assert sorted(p for g in out for p in g) == sorted(providers)
    assert all(len(g) >= k + 1 for g in out)


def test_transfer_outputs_only_a_value_all_senders_agree_on():
    a, b, c = (bytes([i]) * 32 for i in range(3))
    t = Transfer("pay.0", (a, b))
    assert t.on_value(a, b"x") is None and t.result() is None
    assert t.on_value(b, b"y") is None and t.conflicting() and t.result() is None
    assert t.wrong(b"x") == (b,)
    assert t.on_value(a, b"z").culprits == (a,)
    try:
        t.on_value(c, b"x")
    except ValueError:
        pass
    else:
        raise AssertionError("a non-sender's value was taken")
