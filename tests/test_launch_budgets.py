"""The launcher's topology checks: what it refuses before starting any process, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from peer.launch.budgets import MARGIN, Topology, minimum_timeouts, timeout_problems
from peer.scenario.load import load_scenario
from peer.tui.views import natural_key

ROOT = Path(__file__).resolve().parents[1]


def scenario(tmp_path: Path, edges: str, values: str = "s = 0\na = 3\nb = 5\nc = 4\n") -> Path:
    path = tmp_path / "g.toml"
    path.write_text(f'name = "g"\nseller = "s"\nseed = 1\n[values]\n{values}[graph]\nedges = {edges}\n')
    return path


def test_disconnected_graph_names_the_unreachable_nodes(tmp_path: Path) -> None:
    loaded = load_scenario(scenario(tmp_path, '[["s", "a"], ["b", "c"]]'))
    topology = Topology.of(loaded)
    assert topology.unreachable == ["b", "c"] and topology.depth == 1


def test_depth_is_the_sellers_farthest_node() -> None:
    assert Topology.of(load_scenario(ROOT / "scenarios" / "ws-20.toml")).depth == 3
    assert Topology.of(load_scenario(ROOT / "scenarios" / "paper-figure2.toml")).depth == 4


def test_minimums_follow_the_machines_budget_arithmetic() -> None:
    # Each level of the tree takes two margins off a budget (and the gather window in stage 2);
    # the realised tree may be twice as deep as the seller's farthest distance (3 here, so 6
    # levels), and the deepest level must keep two margins of slack.
    need = minimum_timeouts(3, gather_window=0.2)
    assert MARGIN == 0.5
    assert need.reply == pytest.approx(0.5 + 5 * (1.0 + 0.2) + 0.2 + 1.0)
    assert need.context == pytest.approx(11 * 0.5 + 1.0)
    deeper = minimum_timeouts(4, gather_window=0.2)
    assert deeper.reply > need.reply and deeper.context > need.context and deeper.confirm > need.confirm


def test_the_reported_short_timeouts_are_refused_with_what_is_needed() -> None:
    # Defect 5: ws-20 with --context-timeout 2 failed its replay check in 4 of 6 runs, and
    # --reply-timeout 3 on a busy machine; the launcher accepted both.
    topology = Topology.of(load_scenario(ROOT / "scenarios" / "ws-20.toml"))
    short_context = timeout_problems(topology, gather_window=0.2, reply_timeout=60, context_timeout=2,
                                     confirm_timeout=90, guarded=True)
    assert len(short_context) == 1 and "--context-timeout 2" in short_context[0]
    assert "at least 6.5" in short_context[0] and "3 hop(s) away" in short_context[0]
    short_reply = timeout_problems(topology, gather_window=0.2, reply_timeout=3, context_timeout=30,
                                   confirm_timeout=90, guarded=True)
    assert len(short_reply) == 1 and "--reply-timeout 3" in short_reply[0] and "at least 7.7" in short_reply[0]
    assert timeout_problems(topology, gather_window=0.2, reply_timeout=60, context_timeout=30,
                            confirm_timeout=90, guarded=True) == []
    # The confirm wait matters only under guarded resale.
    assert timeout_problems(topology, gather_window=0.2, reply_timeout=60, context_timeout=30,
                            confirm_timeout=1, guarded=False) == []


def test_natural_order_puts_2_before_10() -> None:
    assert sorted(["10", "2", "1", "b10", "b2", "a"], key=natural_key) == ["1", "2", "10", "a", "b2", "b10"]


def test_linger_never_waits_off_a_terminal() -> None:
    import time

    from peer.launch.linger import wait_for_key

    started = time.monotonic()
    assert wait_for_key(30) is False  # pytest's stdin is not a terminal
    assert time.monotonic() - started < 1
