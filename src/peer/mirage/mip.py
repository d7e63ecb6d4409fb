"""The MIP clearing of Sec. 4.1: choose bids and start hours to maximise the total value allocated.

One binary variable per (bid, start) pair at which the bid fits on its own;
constraints: at most one start per bid, nodes per hour within what is free,
each user's winnings within its budget, and with the no-overlap rule at most
one of a user's blocks in any hour.  The objective is the bids' values (in
whole units, floats only inside the solver) minus a tie-break far below one
minor unit that prefers earlier starts, so the solver, like greedy, starts
blocks as soon as it can.

The solver's answer is only a candidate: :func:`peer.mirage.clearing.clear`
re-checks it in exact integers and keeps it only if its exact value beats greedy's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from peer.mirage.clearing import candidate_starts, free_hours, user_busy_mask
from peer.mirage.model import Allocation, Bid, Rules, RoundState
from peer.money import SCALE


def solve_mip(state: RoundState, bids: Sequence[Bid], rules: Rules) -> list[Allocation] | None:
    """The best allocation the solver finds within ``rules.mip_time_limit_ms``; None if it finds none."""
    window = len(state.used)
    free = free_hours(state)
    busy = user_busy_mask(state, window) if rules.no_overlap_per_user else {}
    budget = state.budget_of()
    var_bid: list[int] = []
    var_start: list[int] = []
    for i, b in enumerate(bids):
        if budget.get(b.user, 0) < b.value:
            continue
        for k in candidate_starts(b, free, busy.get(b.user), state, rules):
            var_bid.append(i)
            var_start.append(int(k))
    n_vars = len(var_bid)
    if n_vars == 0:
        return None
    vb = np.asarray(var_bid)
    vs = np.asarray(var_start)
    hours = np.asarray([bids[i].hours for i in var_bid])
    nodes = np.asarray([bids[i].nodes for i in var_bid], dtype=float)
    values = np.asarray([bids[i].value for i in var_bid], dtype=float) / SCALE
    # Far below one minor unit per variable in total: it only orders equal-value optima.
    tie = 1e-3 / SCALE / (window * n_vars)
    cost = -(values - tie * vs)

    rows, cols, data, upper = [], [], [], []
    row = 0
    # Capacity: per window hour, the nodes of every block covering it.
    cover_var = np.repeat(np.arange(n_vars), hours)
    cover_hour = np.concatenate([np.arange(s, s + h) for s, h in zip(vs, hours)])
    rows.append(cover_hour)
    cols.append(cover_var)
    data.append(nodes[cover_var])
    upper.append(free.astype(float))
    row += window
    # One start per bid.
    bid_row = np.unique(vb, return_inverse=True)[1]
    rows.append(row + bid_row)
    cols.append(np.arange(n_vars))
    data.append(np.ones(n_vars))
    upper.append(np.ones(bid_row.max() + 1))
    row += bid_row.max() + 1
    # Budgets: a user's winnings within what it can pay.
    users = sorted({bids[i].user for i in var_bid})
    user_index = {u: j for j, u in enumerate(users)}
    var_user = np.asarray([user_index[bids[i].user] for i in var_bid])
    rows.append(row + var_user)
    cols.append(np.arange(n_vars))
    data.append(values)
    upper.append(np.asarray([budget.get(u, 0) / SCALE for u in users]) + 0.5 / SCALE)
    row += len(users)
    if rules.no_overlap_per_user:
        # At most one of a user's blocks in any hour (hours it already holds were excluded above).
        rows.append(row + var_user[cover_var] * window + cover_hour)
        cols.append(cover_var)
        data.append(np.ones(cover_var.size))
        upper.append(np.ones(len(users) * window))
        row += len(users) * window
    matrix = coo_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(row, n_vars))
    result = milp(
        cost,
        constraints=LinearConstraint(matrix.tocsr(), -np.inf, np.concatenate(upper)),
        integrality=np.ones(n_vars),
        bounds=Bounds(0, 1),
        options={"time_limit": rules.mip_time_limit_ms / 1000, "presolve": True},
    )
    if result.x is None:
        return None
    picked = np.flatnonzero(result.x > 0.5)
    out = []
    for v in picked:
        b = bids[var_bid[v]]
        out.append(Allocation(b.bid_id, b.user, state.now + var_start[v], b.hours, b.nodes, b.value))
    return out
