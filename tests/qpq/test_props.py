"""The paper's figures within statistical tolerance, and the traffic formulas where the model matches."""

from __future__ import annotations

import pytest

from peer.qpq.exp_props import props_row, props_run
from peer.qpq.exp_traffic import traffic_row, traffic_run
from peer.qpq.gof import GofConfig
from peer.qpq.traffic import direct_values, equal_sizes, mqpq_values, optimal_k


@pytest.mark.parametrize("k", [1, 3])
def test_prop7_and_prop8(k: int) -> None:
    # n = 8; two players always fail the test (Beta(20,1) declarations).  Tolerance: 4 standard
    # errors plus 2% for the real test's false positives (the paper assumes a perfect test).
    row = props_row(props_run(8, k, rounds=4000, warmup=100, seed=11, beta=20.0, gof=GofConfig()))
    assert row.failing_replaced_share == 1.0
    assert abs(row.honest_mean - row.honest_theory) < 4 * row.honest_se + 0.02 * row.honest_theory
    assert abs(row.failing_mean - row.failing_theory) < 4 * row.failing_se + 0.02 * row.failing_theory
    assert row.failing_mean < row.honest_mean  # Corollary 7


@pytest.mark.parametrize(("n", "k"), [(16, 1), (16, 4), (20, 3), (64, 8)])
def test_traffic_equals_the_formula(n: int, k: int) -> None:
    fast, machines = traffic_run(n, k, rounds=2, seed=1, machines=True)
    row = traffic_row(fast, machines)
    sizes = equal_sizes(n, k)
    assert row.relay_values == row.paper_values == mqpq_values(sizes)  # the paper's relay model, counted
    assert row.direct_values == direct_values(sizes) == mqpq_values(sizes) - 2 * (n + (k if k > 1 else 0))
    assert row.direct_frames == row.machines_frames == 2 * row.direct_values


def test_formula_optimum_is_near_sqrt_n() -> None:
    for n in (16, 64, 256, 1024):
        best = min(range(1, n + 1), key=lambda k: mqpq_values(equal_sizes(n, k)))
        assert abs(best - n**0.5) <= 1 and abs(optimal_k(n) - n**0.5) < 0.15
