"""The best possible allocation of a whole job stream, in hindsight: the denominator of allocative efficiency.

A clairvoyant planner that knows every job (its true value, nodes, hours and
start range) in advance places each job within the testbed's capacity in
every hour.  Its integer problem over weeks of jobs is too big to solve in the
experiment's time (HiGHS finds no incumbent in 20 s on the 4-week scenario),
so the denominator is its LP relaxation: an upper bound on the value of any
allocation of the stream, computed once per scenario (the jobs are the same
for every mechanism and strategy) with HiGHS's dual simplex in a few seconds.
Efficiency against it is therefore a lower bound on the true efficiency, and
the mechanisms' ratios are comparable because they share the denominator.

Budgets are ignored (the best *allocation*, not the best affordable one);
values are floats only inside the solver.
"""

from __future__ import annotations

from collections.abc import Sequence
import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from peer.mirage.workload import JobSpec
from peer.money import SCALE


def hindsight_bound(jobs: Sequence[JobSpec], capacity: int, last_start: int) -> int:
    """Minor units no allocation of ``jobs`` can exceed: the LP relaxation of the whole-job planning problem.

    Starts range over ``[arrival, min(latest, last_start)]``; each job is placed at most once.
    """
    var_job, var_start = [], []
    for i, j in enumerate(jobs):
        starts = np.arange(j.arrival, min(j.latest, last_start) + 1)
        var_job.extend([i] * starts.size)
        var_start.extend(starts.tolist())
    if not var_job:
        return 0
    vj, vs = np.asarray(var_job), np.asarray(var_start)
    hours = np.asarray([jobs[i].hours for i in var_job])
    nodes = np.asarray([jobs[i].nodes for i in var_job], dtype=float)
    values = np.asarray([jobs[i].rate * jobs[i].nodes * jobs[i].hours for i in var_job], dtype=float) / SCALE
    n_vars, horizon = vj.size, int((vs + hours).max())
    cover_var = np.repeat(np.arange(n_vars), hours)
    cover_hour = np.concatenate([np.arange(s, s + h) for s, h in zip(vs, hours)])
    rows = np.concatenate([cover_hour, horizon + vj])
    cols = np.concatenate([cover_var, np.arange(n_vars)])
    data = np.concatenate([nodes[cover_var], np.ones(n_vars)])
    upper = np.concatenate([np.full(horizon, float(capacity)), np.ones(len(jobs))])
    matrix = coo_matrix((data, (rows, cols)), shape=(horizon + len(jobs), n_vars)).tocsr()
    result = linprog(-values, A_ub=matrix, b_ub=upper, bounds=(0, 1), method="highs-ds")
    if result.status != 0:
        raise RuntimeError(f"the hindsight LP did not solve: {result.message}")
    total = sum(j.rate * j.nodes * j.hours for j in jobs)
    # Round up, with a margin for the solver's tolerance; never above placing every job.
    return min(total, int(np.ceil(-result.fun * (1 + 1e-9) * SCALE)) + 1)
