"""Mirage's market vocabulary: bids, allocations, the clearing rules and one round's state.

Everything here is an immutable value with exact integer money (minor units of
:mod:`peer.money`), so a round's inputs can be hashed, sent to every provider
of the distributed auctioneer and cleared identically by each of them.

Time is in whole hours.  A round clears at hour ``now``; the leftmost column
of its window is hour ``now`` (the hour right after the auction, never again
for sale) and the window is hours ``now .. now + window_hours - 1``.

Nodes are interchangeable (a bid asks for *any* ``nodes`` motes), so the state
of the window is the number of nodes in use per hour.  That is exact, not an
approximation: the allocations are intervals in time, and binding concrete
nodes lazily when an allocation starts always succeeds as long as no hour is
over capacity (the allocations active at any hour are exactly the ones that
started and have not ended, and their node counts sum to at most the
capacity), so a node-by-node calendar would accept the same allocations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

MAX_BLOCK_HOURS = 32  # the paper's d_i in {1, ..., 32}


class MarketError(ValueError):
    """A bid, rule set or round state that the market cannot accept (nothing is changed)."""


@dataclass(frozen=True, slots=True)
class Bid:
    """``nodes`` nodes together for ``hours`` consecutive hours, starting in ``[earliest, latest]``, for ``value``.

    ``seq`` is the bid's submission order in the market: the clearing's last tie-break,
    so every provider orders equal bids identically.
    """

    bid_id: str
    user: str
    value: int  # minor units: the most the user pays for the whole block
    nodes: int
    hours: int
    earliest: int  # absolute hour
    latest: int  # absolute hour
    seq: int = 0

    def __post_init__(self) -> None:
        if not self.bid_id or not self.user:
            raise MarketError("a bid needs a bid id and a user")
        for name in ("value", "nodes", "hours", "earliest", "latest", "seq"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise MarketError(f"bid {self.bid_id}: {name} must be an integer, got {v!r}")
        if self.value < 0:
            raise MarketError(f"bid {self.bid_id}: negative value")
        if self.nodes < 1:
            raise MarketError(f"bid {self.bid_id}: asks for {self.nodes} nodes")
        if not 1 <= self.hours <= MAX_BLOCK_HOURS:
            raise MarketError(f"bid {self.bid_id}: a block is 1-{MAX_BLOCK_HOURS} hours, got {self.hours}")
        if self.latest < self.earliest:
            raise MarketError(f"bid {self.bid_id}: latest start {self.latest} before earliest {self.earliest}")

    @property
    def node_hours(self) -> int:
        return self.nodes * self.hours

    @property
    def value_per_node_hour(self) -> Fraction:
        """The greedy ranking, exact (the paper's v / nk)."""
        return Fraction(self.value, self.node_hours)


@dataclass(frozen=True, slots=True)
class Allocation:
    """A winning bid placed in the calendar: ``nodes`` nodes for hours ``start .. start + hours - 1``."""

    bid_id: str
    user: str
    start: int
    hours: int
    nodes: int
    price: int  # first price: the bid's value

    @property
    def end(self) -> int:
        return self.start + self.hours


@dataclass(frozen=True, slots=True)
class Rules:
    """One mechanism: the window, who sees what, how it clears, and the proposed rules (each switchable).

    ``start_horizon`` bounds how far ahead a block may start (A2: 72 of a 104-hour
    window); ``None`` means anywhere the whole block fits (A1).
    """

    name: str
    window_hours: int = 72
    start_horizon: int | None = None
    sealed: bool = False
    mip: bool = False  # run the MIP beside greedy and keep the higher-value allocation
    one_bid_per_user: bool = False
    no_overlap_per_user: bool = False
    fee: int = 0  # minor units charged per bid submitted or revised
    mip_time_limit_ms: int = 2000  # a MIP that overruns keeps its best answer so far, or loses to greedy

    def __post_init__(self) -> None:
        if self.window_hours < MAX_BLOCK_HOURS:
            raise MarketError(f"{self.name}: the window must hold a {MAX_BLOCK_HOURS}-hour block")
        if self.start_horizon is not None and not (
            1 <= self.start_horizon and self.start_horizon + MAX_BLOCK_HOURS - 1 <= self.window_hours
        ):
            raise MarketError(f"{self.name}: start horizon {self.start_horizon} does not fit the window")
        if self.fee < 0:
            raise MarketError(f"{self.name}: negative fee")

    def start_range(self, now: int, hours: int) -> tuple[int, int]:
        """The absolute start hours this mechanism offers a block of ``hours`` at the round clearing at ``now``."""
        last_fit = now + self.window_hours - hours
        if self.start_horizon is None:
            return now, last_fit
        return now, min(last_fit, now + self.start_horizon - 1)


A1 = Rules("A1", window_hours=72)
A2 = Rules("A2", window_hours=104, start_horizon=72, sealed=True)
A2_MIP = Rules("A2+MIP", window_hours=104, start_horizon=72, sealed=True, mip=True)
A2_RULES = Rules("A2+rules", window_hours=104, start_horizon=72, sealed=True, one_bid_per_user=True,
                 no_overlap_per_user=True)
MECHANISMS = {r.name: r for r in (A1, A2, A2_MIP, A2_RULES)}


@dataclass(frozen=True, slots=True)
class RoundState:
    """What a clearing needs besides the bids: the window's occupancy and each user's means.

    ``used[k]`` is the number of nodes already allocated in hour ``now + k``
    (``len(used) == window_hours``).  ``busy`` lists, per user, the hours (absolute)
    in which the user already holds an allocation (for the no-overlap rule).
    ``budgets`` is what each user can still pay this round; a bid whose user
    cannot pay it is not allocated.
    """

    now: int
    capacity: int
    used: tuple[int, ...]
    budgets: tuple[tuple[str, int], ...] = ()
    busy: tuple[tuple[str, tuple[int, ...]], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise MarketError("the testbed needs at least one node")
        if any(u < 0 or u > self.capacity for u in self.used):
            raise MarketError("a window hour is used beyond capacity")

    def budget_of(self) -> dict[str, int]:
        return dict(self.budgets)

    def busy_of(self) -> dict[str, tuple[int, ...]]:
        return dict(self.busy)


@dataclass(frozen=True, slots=True)
class Clearing:
    """One round's outcome: the allocations, what each winner pays, and which algorithm won."""

    allocations: tuple[Allocation, ...]
    payments: tuple[tuple[str, int], ...]  # (user, minor units), sorted by user
    algorithm: str  # "greedy" or "mip"
    greedy_value: int
    mip_value: int | None = None

    @property
    def value(self) -> int:
        return sum(a.price for a in self.allocations)
