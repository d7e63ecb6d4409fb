"""The double auction (Sec. 5.2.1): sorted bids, water-filling, a random split for truthfulness.

Pricing (after MUDA, Segal-Halevi, Hassidim and Aumann): the common coin splits
every trader (users and providers alike) into two halves L and R.  In each half
the users are sorted by decreasing value and the providers by increasing cost
and water-filled onto each other while value >= cost; the half's *clearing
price* is the midpoint (rounded down) of the last matched user's value and the
last matched provider's cost.  Then each half trades at the *other* half's
price: users of L with value >= p_R buy, providers of L with cost <= p_R sell,
the short side is served in full and the long side is rationed in an order the
coin draws (not by value: rationing by value would reward overbidding), and
the quantities are matched by water-filling again (users by decreasing value,
providers by increasing cost).

Why: a trader's price comes only from the other half, and its quantity given
that it trades does not depend on its own value, so reporting the true value is
a dominant strategy for every outcome of the coin (truthful in expectation and
universally); and users pay p * q exactly where providers receive p * q, so the
auction is strongly budget balanced (sum of charges = sum of credits, exactly).
The cost is welfare: trades across halves are lost, as the paper says of [16].
"""

from __future__ import annotations

from collections.abc import Sequence

from peer.auctioneer.bids import Side, SignedBid
from peer.auctioneer.outcome import Allocation, Trade
from peer.coin import CoinStream

Trader = tuple[int, int, bytes]  # (value, quantity, key)


def water_fill(users: Sequence[Trader], providers: Sequence[Trader], *, stop_unprofitable: bool) -> list[Trade]:
    """Users in the order given onto providers in the order given, each user's demand on the first
    providers with capacity left.  With ``stop_unprofitable`` it stops at the first user/provider pair
    whose value is below the cost (the efficient frontier)."""
    trades: list[Trade] = []
    caps = [q for _, q, _ in providers]
    j = 0
    for value, demand, user in users:
        left = demand
        while left > 0 and j < len(providers):
            if stop_unprofitable and value < providers[j][0]:
                return trades
            take = min(left, caps[j])
            if take > 0:
                trades.append(Trade(user, providers[j][2], take))
                left -= take
                caps[j] -= take
            if caps[j] == 0:
                j += 1
    return trades


def _by_value(users: Sequence[Trader], providers: Sequence[Trader]) -> tuple[list[Trader], list[Trader]]:
    return sorted(users, key=lambda t: (-t[0], t[2])), sorted(providers, key=lambda t: (t[0], t[2]))


def clearing_price(users: Sequence[Trader], providers: Sequence[Trader]) -> int | None:
    """The midpoint of the marginal matched pair, or ``None`` if no user values any unit above its cost."""
    users_sorted, providers_sorted = _by_value(users, providers)
    trades = water_fill(users_sorted, providers_sorted, stop_unprofitable=True)
    if not trades:
        return None
    values = {k: v for v, _, k in users}
    costs = {k: v for v, _, k in providers}
    last = trades[-1]
    return (values[last.user] + costs[last.provider]) // 2


def _ration(traders: list[Trader], total: int, stream: CoinStream) -> list[Trader]:
    """Serve ``total`` units of the traders' quantities, in a coin-drawn order."""
    out: list[Trader] = []
    for value, qty, key in stream.shuffled(traders):
        take = min(qty, total)
        if take == 0:
            break
        out.append((value, take, key))
        total -= take
    return out


def trade_at(price: int | None, users: list[Trader], providers: list[Trader], stream: CoinStream) -> list[Trade]:
    if price is None:
        return []
    buyers = [u for u in users if u[0] >= price]
    sellers = [p for p in providers if p[0] <= price]
    volume = min(sum(q for _, q, _ in buyers), sum(q for _, q, _ in sellers))
    if volume == 0:
        return []
    buyers = _ration(buyers, volume, stream)
    sellers = _ration(sellers, volume, stream)
    buyers_sorted, sellers_sorted = _by_value(buyers, sellers)
    return water_fill(buyers_sorted, sellers_sorted, stop_unprofitable=False)


def double_auction(bids: Sequence[SignedBid], coin: bytes) -> Allocation:
    """The allocation and exact payments for ``bids`` (the agreed vector) under ``coin``."""
    stream = CoinStream(coin, b"double-auction")
    halves: tuple[tuple[list[Trader], list[Trader]], ...] = (([], []), ([], []))
    for bid in sorted(bids, key=lambda b: b.bidder):  # canonical order, then the coin decides the half
        if bid.quantity == 0:
            continue
        half = halves[stream.bit()]
        (half[0] if bid.side == Side.USER else half[1]).append((bid.value, bid.quantity, bid.bidder))
    (users_l, provs_l), (users_r, provs_r) = halves
    price_l, price_r = clearing_price(users_l, provs_l), clearing_price(users_r, provs_r)
    trades = trade_at(price_r, users_l, provs_l, stream) + trade_at(price_l, users_r, provs_r, stream)
    charges: dict[bytes, int] = {}
    credits: dict[bytes, int] = {}
    users_in_l = {k for _, _, k in users_l}
    for t in trades:
        price = price_r if t.user in users_in_l else price_l
        assert price is not None
        charges[t.user] = charges.get(t.user, 0) + price * t.quantity
        credits[t.provider] = credits.get(t.provider, 0) + price * t.quantity
    return Allocation.build(trades, charges, credits)
