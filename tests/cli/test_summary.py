"""Multi-run statistics: exact means, Student t half-widths, win shares."""

from __future__ import annotations

from fractions import Fraction

from scipy import stats as scipy_stats

from peer.cli.summary import stat, summarise
from peer.result import Hop, NodeReport, RunResult


def test_stat_mean_is_exact_and_the_interval_is_student_t() -> None:
    samples = [1_000_000, 2_000_000, 4_000_000]
    s = stat(samples)
    assert s.mean == Fraction(7_000_000, 3) and (s.low, s.high) == (1_000_000, 4_000_000)
    low, high = scipy_stats.t.interval(0.95, 2, loc=7_000_000 / 3, scale=scipy_stats.sem(samples))
    assert abs(s.half_width - (high - low) / 2) < 1e-6  # type: ignore[operator]


def test_stat_of_one_run_has_no_interval_and_of_equal_runs_a_zero_one() -> None:
    assert stat([5]).half_width is None
    assert stat([5, 5, 5]).half_width == 0.0


def _run(seed: int, winner: str, price: int) -> RunResult:
    nodes = {n: NodeReport(value=v) for n, v in {"s": 0, "a": 8, "b": 5}.items()}
    utilities = {"s": price, "a": 8 - price if winner == "a" else 0, "b": 5 - price if winner == "b" else 0}
    return RunResult("sra", "s", seed, nodes, [Hop(1, "s", winner, price)], winner, utilities, price,
                     messages={"x": 10 + seed}, extra={"status": "completed"})


def test_summarise_counts_wins_and_orders_nodes_by_them() -> None:
    summary = summarise([_run(1, "a", 5), _run(2, "a", 4), _run(3, "b", 3)])
    assert [n.node for n in summary.nodes] == ["a", "b"]
    assert summary.nodes[0].wins == Fraction(2, 3) and summary.nodes[1].wins == Fraction(1, 3)
    assert summary.revenue.mean == 4 and summary.messages is not None and summary.messages.mean == 12
    assert summary.statuses == {"completed": 3} and summary.seeds == [1, 2, 3]
