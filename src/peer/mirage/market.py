"""The market between rounds: outstanding bids, the rolling calendar, and the rules applied on submission.

A sans-I/O machine: ``submit``/``revise``/``withdraw`` are fed by whoever
carries the users' messages (a simulator, or a provider node), ``close_round``
builds the round's inputs, and ``apply`` commits a :class:`Clearing` that was
computed by :func:`peer.mirage.clearing.clear` (here, or by the providers of
the distributed auctioneer, each of whom runs the same pure function).

The calendar is absolute: ``used[h]`` is the nodes allocated in hour ``h``.
Nothing is ever deleted from it; the window is just the slice from the round's
hour, which is what "a new column rolls in every hour" means.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from peer.mirage.model import Allocation, Bid, Clearing, MarketError, RoundState, Rules


@dataclass(frozen=True, slots=True)
class Submitted:
    bid: Bid
    fee: int


class MirageMarket:
    """Outstanding bids, the calendar and the public record of winners for one mechanism."""

    def __init__(self, rules: Rules, capacity: int) -> None:
        if capacity < 1:
            raise MarketError("the testbed needs at least one node")
        self.rules = rules
        self.capacity = capacity
        self.pending: dict[str, Bid] = {}
        self.used: defaultdict[int, int] = defaultdict(int)
        self.busy: defaultdict[str, set[int]] = defaultdict(set)
        self.winners: list[Allocation] = []  # public in both auctions: the price feedback
        self._seq = 0
        self._fees: defaultdict[str, int] = defaultdict(int)  # charged this round, settled with it

    # ----------------------------------------------------------------------------- users' messages

    def submit(self, bid: Bid, now: int) -> Submitted:
        """Accept a new bid (it gets the next submission number) or raise MarketError, changing nothing."""
        if bid.bid_id in self.pending:
            raise MarketError(f"bid {bid.bid_id} is already outstanding")
        if self.rules.one_bid_per_user and any(b.user == bid.user for b in self.pending.values()):
            raise MarketError(f"{bid.user} already has an outstanding bid (one-bid rule)")
        if bid.latest < now:
            raise MarketError(f"bid {bid.bid_id}: its latest start {bid.latest} has passed")
        if bid.nodes > self.capacity:
            raise MarketError(f"bid {bid.bid_id}: asks for {bid.nodes} of {self.capacity} nodes")
        self._seq += 1
        accepted = replace(bid, seq=self._seq)
        self.pending[bid.bid_id] = accepted
        self._fees[bid.user] += self.rules.fee
        return Submitted(accepted, self.rules.fee)

    def revise(self, bid_id: str, user: str, value: int) -> Submitted:
        """Change an outstanding bid's value (it keeps its place in submission order); charged like a bid."""
        old = self.pending.get(bid_id)
        if old is None or old.user != user:
            raise MarketError(f"{user} has no outstanding bid {bid_id}")
        new = replace(old, value=value)  # re-validated by Bid.__post_init__
        self.pending[bid_id] = new
        self._fees[user] += self.rules.fee
        return Submitted(new, self.rules.fee)

    def withdraw(self, bid_id: str, user: str) -> None:
        old = self.pending.get(bid_id)
        if old is None or old.user != user:
            raise MarketError(f"{user} has no outstanding bid {bid_id}")
        del self.pending[bid_id]

    # ----------------------------------------------------------------------------- what users see

    def visible_bids(self) -> list[Bid]:
        """All outstanding bids under open bidding (A1); none under sealed bids (A2)."""
        return [] if self.rules.sealed else sorted(self.pending.values(), key=lambda b: b.seq)

    def free_window(self, now: int) -> list[int]:
        """Free nodes per hour of the window clearing at ``now`` (public: the calendar is)."""
        return [self.capacity - self.used.get(h, 0) for h in range(now, now + self.rules.window_hours)]

    # ----------------------------------------------------------------------------- one round

    def round_inputs(self, now: int, budgets: dict[str, int]) -> tuple[RoundState, tuple[Bid, ...]]:
        """Drop bids whose start range has passed, then the state and bids of the round clearing at ``now``."""
        for bid_id in [k for k, b in self.pending.items() if b.latest < now]:
            del self.pending[bid_id]
        window = range(now, now + self.rules.window_hours)
        used = tuple(self.used.get(h, 0) for h in window)
        busy: tuple[tuple[str, tuple[int, ...]], ...] = ()
        if self.rules.no_overlap_per_user:
            users = sorted({b.user for b in self.pending.values()})
            busy = tuple((u, tuple(sorted(h for h in self.busy[u] if h >= now))) for u in users if self.busy[u])
        state = RoundState(now, self.capacity, used, tuple(sorted(budgets.items())), busy)
        return state, tuple(sorted(self.pending.values(), key=lambda b: b.seq))

    def take_fees(self) -> dict[str, int]:
        """The fees charged since the last call (settled with the round), and reset."""
        fees = {u: f for u, f in self._fees.items() if f}
        self._fees.clear()
        return fees

    def apply(self, clearing: Clearing) -> None:
        """Commit a round's allocations: book the calendar, retire the winning bids, publish the winners."""
        added: defaultdict[int, int] = defaultdict(int)
        for a in clearing.allocations:
            if a.bid_id not in self.pending:
                raise MarketError(f"clearing allocates {a.bid_id}, which is not outstanding")
            for h in range(a.start, a.end):
                added[h] += a.nodes
        over = [h for h, n in added.items() if self.used.get(h, 0) + n > self.capacity]
        if over:  # a clearing computed for another state: refuse it whole
            raise MarketError(f"clearing books hour {min(over)} beyond capacity")
        for h, n in added.items():
            self.used[h] += n
        for a in clearing.allocations:
            self.busy[a.user].update(range(a.start, a.end))
            del self.pending[a.bid_id]
            self.winners.append(a)
