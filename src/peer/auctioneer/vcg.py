"""The standard auction (Sec. 5.2.2) with *exact* VCG: a mixed-integer program solved by HiGHS.

Each user i asks for ``d_i`` units at ``v_i`` per unit and must be served whole
by one provider j of capacity ``C_j``.  The welfare-maximising allocation is

    max  sum_ij w_i x_ij   s.t.  sum_j x_ij <= 1,  sum_i d_i x_ij <= C_j,  x binary,

with w_i = v_i d_i (an integer).  VCG charges a winner the welfare the others
lose by its presence: ``p_i = W*(without i) - (W* - w_i)``; a loser pays 0
(removing it leaves the optimum unchanged).  The solver works in floats, so
``mip_rel_gap`` is 0 and every solution is rounded, checked for feasibility and
re-valued in exact integers here; payments depend only on optimal *values*,
which are unique even when several allocations tie.

Algorithm 1 splits the work: task 1 is the allocation, tasks 2.S the payments
of the users in subset S (:func:`payments_for`), one subset per provider group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from peer.auctioneer.bids import Side, SignedBid
from peer.auctioneer.outcome import Allocation, Trade


class SolverError(RuntimeError):
    """HiGHS did not return a proven optimum (limits, numerical trouble)."""


@dataclass(frozen=True, slots=True)
class Market:
    users: tuple[bytes, ...]
    values: tuple[int, ...]  # per unit
    demands: tuple[int, ...]
    providers: tuple[bytes, ...]
    capacities: tuple[int, ...]

    @staticmethod
    def of(bids: Sequence[SignedBid]) -> Market:
        users = sorted((b for b in bids if b.side == Side.USER and b.quantity > 0), key=lambda b: b.bidder)
        provs = sorted((b for b in bids if b.side == Side.PROVIDER), key=lambda b: b.bidder)
        return Market(
            tuple(b.bidder for b in users), tuple(b.value for b in users), tuple(b.quantity for b in users),
            tuple(b.bidder for b in provs), tuple(b.quantity for b in provs),
        )

    def weight(self, i: int) -> int:
        return self.values[i] * self.demands[i]


#: Seconds one MILP may take before the task fails (the provider then outputs ⊥, never a guess).
TIME_LIMIT = 120.0


def solve(
    market: Market, without: int | None = None, bounds: tuple[int, int] | None = None
) -> tuple[int, dict[int, int]]:
    """The optimal welfare (exact) and an optimal assignment user index -> provider index."""
    pairs = [
        (i, j)
        for i in range(len(market.users)) if i != without and market.weight(i) > 0
        for j in range(len(market.providers)) if market.demands[i] <= market.capacities[j]
    ]
    if not pairs:
        return 0, {}
    # Imported here: scipy costs seconds to import on a loaded machine, and a double-auction
    # provider or a bid client never needs it.
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_array

    n = len(pairs)
    users = sorted({i for i, _ in pairs})
    row_of_user = {i: r for r, i in enumerate(users)}
    nu, m = len(users), len(market.providers)
    rows, cols, data = [], [], []
    for col, (i, j) in enumerate(pairs):
        rows += [row_of_user[i], nu + j]
        cols += [col, col]
        data += [1.0, float(market.demands[i])]
    cuts_lo: list[float] = []
    cuts_hi: list[float] = []
    if bounds is not None:
        # The optimum without one user lies in [W* - w_i, W*]: a welfare row with these bounds
        # prunes most of the tree, and it is exact (both ends are achievable or valid).
        r = nu + m
        for col, (i, _) in enumerate(pairs):
            rows.append(r); cols.append(col); data.append(float(market.weight(i)))
        cuts_lo, cuts_hi = [float(bounds[0])], [float(bounds[1])]
    a = coo_array((data, (rows, cols)), shape=(nu + m + len(cuts_lo), n)).tocsr()
    lower = np.concatenate([np.full(nu + m, -np.inf), np.array(cuts_lo)])
    upper = np.concatenate([np.ones(nu), np.array(market.capacities, dtype=float), np.array(cuts_hi)])
    cost = -np.array([float(market.weight(i)) for i, _ in pairs])
    res = milp(
        cost, constraints=LinearConstraint(a, lower, upper), integrality=np.ones(n),
        bounds=Bounds(0, 1), options={"mip_rel_gap": 0.0, "time_limit": TIME_LIMIT},
    )
    if res.status != 0 or res.x is None:
        raise SolverError(f"HiGHS: {res.message}")
    chosen = [pairs[c] for c in np.flatnonzero(res.x > 0.5)]
    assign = dict(chosen)
    load = [0] * m
    for i, j in chosen:
        load[j] += market.demands[i]
    if len(assign) != len(chosen) or any(load[j] > market.capacities[j] for j in range(m)):
        raise SolverError("HiGHS returned an infeasible allocation after rounding")
    return sum(market.weight(i) for i in assign), assign


def allocate(market: Market) -> tuple[int, dict[int, int]]:
    """Task 1 of Algorithm 1."""
    return solve(market)


def payments_for(market: Market, welfare: int, assign: dict[int, int], subset: Sequence[int]) -> dict[int, int]:
    """Task 2.S: the VCG payment of every user index in ``subset`` (losers pay 0)."""
    out: dict[int, int] = {}
    for i in subset:
        if i not in assign:
            out[i] = 0
            continue
        without, _ = solve(market, without=i, bounds=(welfare - market.weight(i), welfare))
        out[i] = without - (welfare - market.weight(i))
    return out


def subsets(n_users: int, groups: int) -> list[list[int]]:
    """User indices dealt round-robin to ``groups`` subsets (winners spread evenly on average)."""
    return [list(range(g, n_users, groups)) for g in range(groups)]


def allocation_of(market: Market, assign: dict[int, int], payments: dict[int, int]) -> Allocation:
    """Task 3: the output, with each provider credited what its users pay."""
    trades = [Trade(market.users[i], market.providers[j], market.demands[i]) for i, j in assign.items()]
    charges = {market.users[i]: p for i, p in payments.items() if p}
    credits: dict[bytes, int] = {}
    for i, j in assign.items():
        key = market.providers[j]
        credits[key] = credits.get(key, 0) + payments.get(i, 0)
    return Allocation.build(trades, charges, credits)


def standard_auction(bids: Sequence[SignedBid]) -> Allocation:
    """The whole auction in one place (the centralised reference and the tests' oracle)."""
    market = Market.of(bids)
    welfare, assign = allocate(market)
    return allocation_of(market, assign, payments_for(market, welfare, assign, range(len(market.users))))
