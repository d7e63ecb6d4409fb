"""End to end: a staged start (peer.launch.plan.start_order, Children.start(staged=True)).

Real processes, bounded: the 3 nodes of small-tree, one per wave.  Every node is
forked at once; a wave starts only once every earlier node listens, and each
node dials only the neighbours that started before it, so every link comes up
on its first dial.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from peer.launch.plan import plan_nodes, start_order
from peer.launch.processes import Children
from peer.node.eventlog import read_all
from peer.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork server forks")


def events(plan, kind: str) -> list[dict]:
    return [e for e in read_all(plan.log_path) if e.get("kind") == kind]


def test_each_node_dials_only_the_neighbours_started_before_it(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "small-tree.toml")
    plans = plan_nodes(scenario, tmp_path / "run", seed=1, gather_window=0.2, reply_timeout=60, context_timeout=30,
                       wave_size=1)
    order = start_order({p.name: p.identity for p in plans})
    assert [p.identity.public_key for p in sorted(plans, key=lambda p: order.index(p.name))] == sorted(
        (p.identity.public_key for p in plans), reverse=True)  # highest key first: every dialler is the lower key
    by_name = {p.name: p for p in plans}
    for plan in plans:
        assert plan.wave == order.index(plan.name)
        assert plan.degree == len(scenario.neighbours(plan.name))
        spec = plan.argv[plan.argv.index("--neighbours") + 1]
        for item in spec.split(","):
            name, _, rest = item.partition("=")
            dials = not rest.startswith("#")
            assert dials == (by_name[name].wave < plan.wave), (plan.name, item)

    children = Children("fork")
    try:
        children.start(plans, staged=True)
        assert len(children.procs) == 3  # all forked at once
        first, *later = (by_name[n] for n in order)
        deadline = time.monotonic() + 60
        while not events(first, "started"):
            assert time.monotonic() < deadline, "the first wave did not start"
            time.sleep(0.05)
        time.sleep(0.5)  # without release_waves, the later waves wait for their "go"
        assert not any(p.log_path.exists() and events(p, "started") for p in later)
        children.release_waves({first.name}, set())  # the second wave: the first listens
        children.release_waves({first.name}, set())  # not the third: the first has not dialled (waves <= 1 only)
        assert len(children._released) == 2

        while not all(len(events(p, "link")) >= p.degree for p in plans):
            assert time.monotonic() < deadline, "the nodes did not all start and link"
            started = {p.name for p in plans if p.log_path.exists() and events(p, "started")}
            linked = {p.name for p in plans if p.name in started
                      and {e["peer"] for e in events(p, "link")} >= set(p.dials)}
            children.release_waves(started, linked)
            time.sleep(0.05)
        for plan in plans:  # one dial per link, each to a listening node: nothing failed or went down
            assert all(e.get("up") for e in events(plan, "link")), plan.name
            assert not events(plan, "handshake_failed"), plan.name
    finally:
        children.stop()
    assert not children.dead().keys() - {p.name for p in plans}
