"""The fast path and the full machine path agree round by round."""

from __future__ import annotations

import pytest

from peer.qpq.fast import run_fast
from peer.qpq.router import Router
from ._helpers import setup

CASES = {
    "plain-qpq": dict(n=7, k=1, profiles={"p1": "beta_cheater(4)", "p4": "uniform_liar"}),
    "multilevel": dict(n=12, k=3, profiles={"p00": "beta_cheater(3)", "p05": "uniform_liar"}),
    "faults": dict(n=12, k=4, profiles={"p00": "beta_cheater(10)", "p04": "silent", "p07": "mismatch",
                                         "p11": "absent", "p09": "uniform_liar"}),
    "whole-cluster-silent": dict(n=6, k=2, profiles={"p0": "silent", "p1": "mismatch", "p2": "absent"}),
    "uneven": dict(n=10, k=3, profiles={"p3": "beta_cheater(1.5)"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_equals_machines(case: str) -> None:
    s = setup(rounds=120, seed=3, **CASES[case])  # type: ignore[arg-type]
    fast = run_fast(s, measure_from=20)
    router = Router(s, measure_from=20)
    slow = router.run_rounds(120)
    assert slow.disagreements == 0 and not slow.rejected
    assert [e.hash for e in fast.entries] == [e.hash for e in slow.entries]
    assert fast.winners == slow.winners
    assert fast.flags == slow.flags
    assert fast.traffic == slow.traffic
    assert fast.replaced == slow.replaced and fast.winner_replaced == slow.winner_replaced
    assert fast.utility == slow.utility


def test_a_run_replays_exactly() -> None:
    s = setup(n=12, k=3, rounds=80, profiles={"p00": "uniform_liar"})
    assert [e.hash for e in run_fast(s).entries] == [e.hash for e in run_fast(s).entries]
    other = setup(n=12, k=3, rounds=80, seed=2, profiles={"p00": "uniform_liar"})
    assert run_fast(s).winners != run_fast(other).winners
