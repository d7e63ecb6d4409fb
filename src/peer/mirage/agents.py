"""Mirage's users as agents: truthful bidders and the four strategies the paper observed (S1-S4).

An agent sees only what its mechanism shows (:class:`MarketView`): the
outstanding bids under open bidding (A1) or none (sealed, A2), the public
calendar and the past winning bids, and its own balance.  It answers with bids
and revisions; it never touches the market.  Money is exact: values are
integer minor units, the strategies' shares are applied with exact fractions.

A *job* is what the user truly wants: ``nodes`` nodes for ``hours`` hours,
worth ``value_per_node_hour`` per node-hour to it, to start within its
patience.  Its realised value is that rate times the node-hours it receives
(capped at the job), so a strategist's pieces (S3's short blocks, S4's
sandwich) count for what they deliver.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from peer.mirage.clearing import candidate_starts
from peer.mirage.model import Allocation, Bid, RoundState, Rules
from peer.mirage.scenario import StrategyParams

STRATEGIES = ("truthful", "S1", "S2", "S3", "S4")


@dataclass
class Job:
    job_id: str
    user: str
    arrival: int  # the first round it can bid in
    nodes: int
    hours: int
    rate: int  # true value per node-hour, minor units
    latest: int  # last start hour it accepts
    remaining_nodes: int = 0
    remaining_hours: int = 0
    received: int = 0  # node-hours
    paid: int = 0
    bids: list[str] = field(default_factory=list)  # outstanding bid ids
    revised: bool = False
    pinned: int | None = None  # S4: the start hour its high bid won

    def __post_init__(self) -> None:
        self.remaining_nodes, self.remaining_hours = self.nodes, self.hours

    @property
    def value(self) -> int:
        return self.rate * self.nodes * self.hours

    @property
    def realised(self) -> int:
        return self.rate * min(self.received, self.nodes * self.hours)

    @property
    def open(self) -> bool:
        return self.remaining_nodes > 0 and self.remaining_hours > 0


@dataclass(frozen=True)
class MarketView:
    now: int
    rules: Rules
    capacity: int
    free: np.ndarray  # free nodes per window hour
    visible: tuple[Bid, ...]  # outstanding bids (empty when sealed)
    recent: tuple[Allocation, ...]  # public past winners within the history horizon
    balance: int


def share(amount: int, fraction: float) -> int:
    """``amount`` times a scenario share, exactly (the share as its decimal reading), at least one minor unit."""
    return max(1, int(amount * Fraction(str(fraction))))


def _fits_now(view: MarketView, nodes: int, hours: int) -> bool:
    return _first_start(view, nodes, hours) is not None


def _rates(allocs: tuple[Allocation, ...] | tuple[Bid, ...]) -> list[Fraction]:
    return [Fraction(a.price if isinstance(a, Allocation) else a.value, a.nodes * a.hours) for a in allocs]


class Agent:
    """Truthful: one bid for the whole job at its true value (capped at what it can pay)."""

    name = "truthful"

    def __init__(self, params: StrategyParams) -> None:
        self.p = params

    def bid_for(self, job: Job, view: MarketView, nodes: int, hours: int, value: int, tag: str) -> Bid:
        value = max(0, min(value, view.balance))
        return Bid(f"{job.job_id}/{tag}", job.user, value, nodes, hours, view.now, job.latest)

    def open_bids(self, job: Job, view: MarketView) -> list[Bid]:
        """Bids for a job with no outstanding bid (on arrival, or after a partial win)."""
        nodes, hours = job.remaining_nodes, job.remaining_hours
        return [self.bid_for(job, view, nodes, hours, job.rate * nodes * hours, f"b{len(job.bids)}{view.now}")]

    def revisions(self, job: Job, bid: Bid, view: MarketView) -> int | None:
        """A new value for an outstanding bid, after this hour's arrivals (only S2 revises)."""
        return None

    def stale(self, job: Job, bids: list[Bid], view: MarketView) -> bool:
        """Whether to withdraw the job's outstanding bids and bid afresh (only S4's pinned bids go stale)."""
        return False


class S1Underbid(Agent):
    """Bids low when the visible demand is low; else just above the best competing rate it can see.

    Under sealed bids nothing is visible, so it prices against the recent winners instead.
    """

    name = "S1"

    def open_bids(self, job: Job, view: MarketView) -> list[Bid]:
        nodes, hours = job.remaining_nodes, job.remaining_hours
        true = job.rate * nodes * hours
        others = [b for b in view.visible if b.user != job.user]
        if view.rules.sealed:
            rates = _rates(view.recent)
            guess = statistics.median(rates) if rates else Fraction(0)
            value = min(true, max(share(true, self.p.s1_underbid), int(guess * nodes * hours * Fraction(str(self.p.s1_margin)))))
        elif sum(b.nodes * b.hours for b in others) < self.p.s1_low_demand * float(view.free.sum()):
            value = share(true, self.p.s1_underbid)
        else:
            best = max(_rates(tuple(others)), default=Fraction(0))
            value = min(true, max(share(true, self.p.s1_underbid),
                                  int(best * nodes * hours * Fraction(str(self.p.s1_margin)))))
        return [self.bid_for(job, view, nodes, hours, value, f"b{len(job.bids)}{view.now}")]


class S2Iterative(Agent):
    """Bids a small share of its value, then revises once, just above the best competing rate it sees."""

    name = "S2"

    def open_bids(self, job: Job, view: MarketView) -> list[Bid]:
        nodes, hours = job.remaining_nodes, job.remaining_hours
        value = share(job.rate * nodes * hours, self.p.s2_first)
        return [self.bid_for(job, view, nodes, hours, value, f"b{len(job.bids)}{view.now}")]

    def revisions(self, job: Job, bid: Bid, view: MarketView) -> int | None:
        if job.revised:
            return None
        job.revised = True
        true = job.rate * bid.nodes * bid.hours
        pool = view.recent if view.rules.sealed else tuple(b for b in view.visible if b.user != job.user)
        best = max(_rates(pool), default=Fraction(0))
        value = min(true, view.balance, max(bid.value, int(best * bid.nodes * bid.hours * Fraction(str(self.p.s2_margin)))))
        return value if value != bid.value else None


class S3ShortBlocks(Agent):
    """When its block cannot fit in the window, asks for fewer hours than any competing bid, and repeats."""

    name = "S3"

    def open_bids(self, job: Job, view: MarketView) -> list[Bid]:
        nodes, hours = job.remaining_nodes, job.remaining_hours
        if not _fits_now(view, nodes, hours):
            competing = [b.hours for b in view.visible if b.user != job.user]
            shorter = min(competing) - self.p.s3_undercut if competing else hours // 2
            hours = max(1, min(hours, shorter))
        return [self.bid_for(job, view, nodes, hours, job.rate * nodes * hours, f"b{len(job.bids)}{view.now}")]


class S4Sandwich(Agent):
    """The auction sandwich: one high-rate bid on part of the nodes, low-rate backfill on the rest.

    Only when the job is big and most recent winning node-hours were in blocks
    too big to backfill the rest (the paper's "all other users were requesting
    97 motes").  The backfill
    is split like Table 1's 24 and 33 nodes; if a rule refuses it now, the agent
    bids it again after the high bid wins (the sequential sandwich).
    """

    name = "S4"

    def stale(self, job: Job, bids: list[Bid], view: MarketView) -> bool:
        """Its bids are pinned to one start hour: stale once that hour has passed or no longer has room."""
        if not bids:
            return False
        start = bids[0].earliest
        k = start - view.now
        if k < 0:
            return True
        need = sum(b.nodes for b in bids)
        return bool(view.free[k : k + bids[0].hours].min() < need)

    def open_bids(self, job: Job, view: MarketView) -> list[Bid]:
        nodes, hours = job.remaining_nodes, job.remaining_hours
        true = job.rate * nodes * hours
        recent = view.recent
        if job.pinned is not None:  # the high bid won: backfill the rest of its hours, low
            return self._backfill(job, view, nodes, hours, recent, job.pinned)
        main_nodes = max(1, int(nodes * Fraction(str(self.p.s4_main_share))))
        # The workload estimate from past winning bids: the share of recent winning node-hours in
        # blocks too big to fit beside the high bid (the paper's "everyone asks for 97 motes").
        total = sum(a.nodes * a.hours for a in recent)
        big = sum(a.nodes * a.hours for a in recent if a.nodes > nodes - main_nodes)
        if nodes < self.p.s4_min_nodes or not total or big < Fraction(str(self.p.s4_big_share)) * total:
            return super().open_bids(job, view)
        start = _first_start(view, nodes, hours)  # where the whole job fits: the column set it means to fill
        if start is None:
            return []  # no room this round: wait for the window to roll
        # The rate to beat: the bids too big to backfill beside it (visible ones under open bidding,
        # else the recent winners), which its high bid must outrank.
        rivals = tuple(b for b in view.visible if b.user != job.user) or recent
        big = tuple(a for a in rivals if a.nodes > nodes - main_nodes) or rivals
        best = statistics.median(_rates(big))
        main_value = int(best * main_nodes * hours * Fraction(str(self.p.s4_main_premium)))
        main_value = max(1, min(main_value, true, view.balance))
        main = Bid(f"{job.job_id}/m{view.now}", job.user, main_value, main_nodes, hours, start, start)
        return [main, *self._backfill(job, view, nodes - main_nodes, hours, recent, start, main_value)]

    def _backfill(self, job: Job, view: MarketView, nodes: int, hours: int, recent: tuple[Allocation, ...],
                  start: int, committed: int = 0) -> list[Bid]:
        if start < view.now:
            return []  # the high bid's block has begun: too late to fill beside it
        rates = _rates(recent)
        low = statistics.median(rates) * Fraction(str(self.p.s4_backfill)) if rates else Fraction(job.rate)
        rate = min(Fraction(job.rate), low)
        parts = min(self.p.s4_backfill_bids, nodes)
        out = []
        for i in range(parts):
            size = nodes // parts + (1 if i < nodes % parts else 0)
            value = max(1, int(rate * size * hours))
            if committed + value > view.balance:
                break
            committed += value
            out.append(Bid(f"{job.job_id}/f{i}.{view.now}", job.user, value, size, hours, start, start))
        return out


def _first_start(view: MarketView, nodes: int, hours: int) -> int | None:
    state = RoundState(view.now, view.capacity, tuple(int(x) for x in view.capacity - view.free))
    probe = Bid("probe", "probe", 0, nodes, hours, view.now, view.now + view.rules.window_hours)
    starts = candidate_starts(probe, view.free, None, state, view.rules)
    return view.now + int(starts[0]) if starts.size else None


AGENTS: dict[str, type[Agent]] = {
    "truthful": Agent, "S1": S1Underbid, "S2": S2Iterative, "S3": S3ShortBlocks, "S4": S4Sandwich,
}
