"""Clearing one round: ``clear(state, bids, rules) -> Clearing``, a pure function.

No I/O, no clock, no randomness: the providers of the distributed auctioneer
can each run it on the same round inputs and must get the same allocation.

Greedy (both of the paper's auctions): bids sorted by value per node-hour,
highest first (ties: earlier submission, then bid id), each placed at the
earliest start its mechanism offers where enough nodes are free for the whole
block.  With ``rules.mip`` the MIP (:mod:`peer.mirage.mip`) runs beside it and
the allocation of higher total value is kept (greedy on ties), as Sec. 4.1
proposes; the MIP's answer is re-checked here in exact integers first, so a
solver tolerance can never over-allocate a node-hour or overspend a budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from peer.mirage.model import Allocation, Bid, Clearing, MarketError, Rules, RoundState


def admissible(bids: Iterable[Bid], rules: Rules) -> list[Bid]:
    """The bids this round may allocate, in greedy order; with the one-bid rule, each user's first bid only.

    The market already refuses a second outstanding bid, but the clearing must
    be total on any input a provider is handed, so it enforces the rule too.
    """
    ordered = sorted(bids, key=lambda b: (-b.value_per_node_hour, b.seq, b.bid_id))
    ids = [b.bid_id for b in ordered]
    if len(set(ids)) != len(ids):
        raise MarketError("duplicate bid ids in one round")
    if not rules.one_bid_per_user:
        return ordered
    first: dict[str, Bid] = {}
    for b in sorted(ordered, key=lambda b: (b.seq, b.bid_id)):
        first.setdefault(b.user, b)
    keep = {b.bid_id for b in first.values()}
    return [b for b in ordered if b.bid_id in keep]


def free_hours(state: RoundState) -> np.ndarray:
    return state.capacity - np.asarray(state.used, dtype=np.int64)


def user_busy_mask(state: RoundState, window: int) -> dict[str, np.ndarray]:
    """Per user, a boolean mask over the window: hours where the user already holds an allocation."""
    out: dict[str, np.ndarray] = {}
    for user, hours in state.busy:
        mask = np.zeros(window, dtype=bool)
        for h in hours:
            k = h - state.now
            if 0 <= k < window:
                mask[k] = True
        out[user] = mask
    return out


def candidate_starts(bid: Bid, free: np.ndarray, busy: np.ndarray | None, state: RoundState, rules: Rules) -> np.ndarray:
    """Window offsets where ``bid`` fits now (enough free nodes every hour; no own allocation if no-overlap)."""
    lo, hi = rules.start_range(state.now, bid.hours)
    lo, hi = max(lo, bid.earliest) - state.now, min(hi, bid.latest) - state.now
    if hi < lo or bid.nodes > state.capacity:
        return np.empty(0, dtype=np.int64)
    # A start fits iff no hour of its block is short of nodes: count short hours with a prefix sum
    # (cheaper than a sliding-window view on these short windows, and this runs for every bid every round).
    short = np.concatenate(([0], np.cumsum(free < bid.nodes)))
    ok = short[lo + bid.hours : hi + bid.hours + 1] == short[lo : hi + 1]
    if busy is not None:
        held = np.concatenate(([0], np.cumsum(busy)))
        ok &= held[lo + bid.hours : hi + bid.hours + 1] == held[lo : hi + 1]
    return np.flatnonzero(ok) + lo


def greedy(state: RoundState, ordered: Sequence[Bid], rules: Rules) -> list[Allocation]:
    """The paper's greedy clearing over ``ordered`` (already in value-per-node-hour order)."""
    window = len(state.used)
    free = free_hours(state)
    busy = user_busy_mask(state, window) if rules.no_overlap_per_user else {}
    budget = state.budget_of()
    out: list[Allocation] = []
    for bid in ordered:
        if budget.get(bid.user, 0) < bid.value:
            continue
        mask = None
        if rules.no_overlap_per_user:
            mask = busy.setdefault(bid.user, np.zeros(window, dtype=bool))
        starts = candidate_starts(bid, free, mask, state, rules)
        if starts.size == 0:
            continue
        k = int(starts[0])
        free[k : k + bid.hours] -= bid.nodes
        if mask is not None:
            mask[k : k + bid.hours] = True
        budget[bid.user] -= bid.value
        out.append(Allocation(bid.bid_id, bid.user, state.now + k, bid.hours, bid.nodes, bid.value))
    return out


def check_allocation(state: RoundState, bids: Sequence[Bid], allocations: Sequence[Allocation], rules: Rules) -> None:
    """Raise MarketError unless ``allocations`` is feasible for ``state`` and ``rules``, in exact integers."""
    by_id = {b.bid_id: b for b in bids}
    window = len(state.used)
    used = np.asarray(state.used, dtype=np.int64).copy()
    spent: dict[str, int] = {}
    held = user_busy_mask(state, window)
    seen: set[str] = set()
    for a in allocations:
        bid = by_id.get(a.bid_id)
        if bid is None or a.bid_id in seen:
            raise MarketError(f"allocation of unknown or repeated bid {a.bid_id}")
        seen.add(a.bid_id)
        lo, hi = rules.start_range(state.now, bid.hours)
        if not (max(lo, bid.earliest) <= a.start <= min(hi, bid.latest)):
            raise MarketError(f"bid {a.bid_id} placed at {a.start}, outside its start range")
        if (a.user, a.hours, a.nodes, a.price) != (bid.user, bid.hours, bid.nodes, bid.value):
            raise MarketError(f"allocation of {a.bid_id} does not match the bid")
        k = a.start - state.now
        used[k : k + a.hours] += a.nodes
        spent[a.user] = spent.get(a.user, 0) + a.price
        if rules.no_overlap_per_user:
            mask = held.setdefault(a.user, np.zeros(window, dtype=bool))
            if mask[k : k + a.hours].any():
                raise MarketError(f"bid {a.bid_id} overlaps another allocation of {a.user}")
            mask[k : k + a.hours] = True
    if (used > state.capacity).any():
        raise MarketError("allocation exceeds the testbed's capacity")
    budget = state.budget_of()
    for user, amount in spent.items():
        if amount > budget.get(user, 0):
            raise MarketError(f"{user} is allocated more than it can pay")
    if rules.one_bid_per_user and len({a.user for a in allocations}) != len(allocations):
        raise MarketError("two allocations for one user under the one-bid rule")


def clear(state: RoundState, bids: Iterable[Bid], rules: Rules) -> Clearing:
    """Clear one round: greedy, and with ``rules.mip`` the MIP beside it, keeping the better allocation."""
    if len(state.used) != rules.window_hours:
        raise MarketError(f"{rules.name}: round state has {len(state.used)} window hours, expected {rules.window_hours}")
    ordered = admissible(bids, rules)
    chosen = greedy(state, ordered, rules)
    greedy_value = sum(a.price for a in chosen)
    algorithm, mip_value = "greedy", None
    if rules.mip and not _greedy_took_every_placeable_bid(state, ordered, chosen, rules):
        from peer.mirage.mip import solve_mip

        candidate = solve_mip(state, ordered, rules)
        if candidate is not None and _feasible(state, ordered, candidate, rules):
            mip_value = sum(a.price for a in candidate)
            if mip_value > greedy_value:
                chosen, algorithm = candidate, "mip"
    payments: dict[str, int] = {}
    for a in chosen:
        payments[a.user] = payments.get(a.user, 0) + a.price
    chosen = sorted(chosen, key=lambda a: (a.start, a.bid_id))
    return Clearing(tuple(chosen), tuple(sorted(payments.items())), algorithm, greedy_value, mip_value)


def _feasible(state: RoundState, bids: Sequence[Bid], allocations: Sequence[Allocation], rules: Rules) -> bool:
    try:
        check_allocation(state, bids, allocations, rules)
    except MarketError:
        return False  # a solver answer off by its float tolerance: greedy's stands
    return True


def _greedy_took_every_placeable_bid(state: RoundState, ordered: Sequence[Bid], chosen: Sequence[Allocation],
                                     rules: Rules) -> bool:
    """True when greedy allocated every bid that could be placed at all: then no allocation is worth more."""
    won = {a.bid_id for a in chosen}
    free = free_hours(state)
    budget = state.budget_of()
    busy = user_busy_mask(state, len(state.used)) if rules.no_overlap_per_user else {}
    for b in ordered:
        if b.bid_id in won or budget.get(b.user, 0) < b.value:
            continue
        if candidate_starts(b, free, busy.get(b.user), state, rules).size:
            return False
    return True


def best_of(state: RoundState, bids: Iterable[Bid], rules: Rules,
            candidates: Iterable[Sequence[Allocation]]) -> tuple[Allocation, ...]:
    """The highest-value feasible candidate: how providers that each solved the round agree on one answer.

    A time-limited MIP may find different allocations on different machines;
    every candidate is checked exactly, and the winner is the one of highest
    value, ties to the smallest canonical form, so all honest providers that
    see the same candidates pick the same one.  Infeasible candidates are ignored.
    """
    ordered = admissible(bids, rules)
    best: tuple[Allocation, ...] | None = None
    best_key: tuple[int, tuple] | None = None
    for cand in candidates:
        if not _feasible(state, ordered, cand, rules):
            continue
        alloc = tuple(sorted(cand, key=lambda a: (a.start, a.bid_id)))
        key = (-sum(a.price for a in alloc), tuple((a.start, a.bid_id) for a in alloc))
        if best_key is None or key < best_key:
            best, best_key = alloc, key
    if best is None:
        raise MarketError("no candidate allocation is feasible")
    return best
