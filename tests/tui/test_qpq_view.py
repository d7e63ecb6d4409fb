"""The QPQ launch dashboard: clusters, round and phase, commitments and reveals, flags, allocations."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from peer.launch.plan import NodePlan
from peer.launch.qpq_mode import QpqWatch
from peer.net.identity import Identity
from peer.tui.qpq_view import AllocationRow, ClusterRow, QpqSnapshot, qpq_view


def render(renderable: object, width: int = 80) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(renderable)
    return buffer.getvalue()


def test_view_fits_80_columns_and_says_what_a_round_is_made_of() -> None:
    snap = QpqSnapshot(
        title="qpq-small", nodes=16, linked=16, rounds=5, round=2, phase=1, rounds_done=2,
        clusters=[ClusterRow("c10", ["3", "11", "7"], commits=3, reveals=2, flags=1, wins=1),
                  ClusterRow("c2", ["2", "10", "8", "12", "20"], commits=5, reveals=5, winner_commits=1)],
        allocations=[AllocationRow(0, "12", "c2", 4.35), AllocationRow(1, "", "", None)],
        flags=["round 2, cluster level: 7 missing reveal (seen by 2 nodes)"], messages=99, elapsed=12.5,
    )
    text = render(qpq_view(snap, height=24, footer="done: press any key"))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80 and len(lines) <= 23
    assert "round 3/5" in lines[1] and "phase: cluster reveal" in lines[1] and "flags: 1" in lines[1]
    c2 = next(line for line in lines if line.startswith("c2 "))
    c10 = next(line for line in lines if line.startswith("c10"))
    assert lines.index(c2) < lines.index(c10)  # natural order
    assert "5: 2,8,10,12,+1" in c2 and "5/5" in c2
    assert "3: 3,7,11" in c10 and "3/3" in c10 and "2/3" in c10
    assert any(line.split()[:3] == ["1", "12", "c2"] for line in lines)
    assert any(line.split()[:2] == ["2", "(nobody)"] for line in lines)
    assert "flag: round 2, cluster level: 7 missing reveal" in text
    assert "{" not in text  # no raw Python dict


def test_watch_counts_each_fault_once_and_commitments_per_cluster(tmp_path: Path) -> None:
    names = ["a", "b", "c"]
    plans = []
    for name in names:
        log = tmp_path / f"{name}.ndjson"
        plans.append(NodePlan(name=name, identity=Identity.from_seed(name.encode() * 32), port=1,
                              key_path=tmp_path / "k", data_dir=tmp_path, log_path=log, out_path=tmp_path / "o",
                              argv=[]))
    events = {
        "a": [{"kind": "qpq_kickoff", "start": 1000.0}, {"kind": "send", "type": "Commit", "peer": "cluster:x"},
              {"kind": "qpq_flag", "round": 0, "level": 0, "member": "b", "reason": "missing_reveal"},
              {"kind": "qpq_alloc", "round": 0, "winner": "a", "cluster": "x"},
              {"kind": "qpq_round", "round": 0, "winner": "a", "seconds": 1.5}],
        "b": [{"kind": "send", "type": "Commit", "peer": "cluster:x"}],
        "c": [{"kind": "qpq_flag", "round": 0, "level": 0, "member": "b", "reason": "missing_reveal"},
              {"kind": "send", "type": "Reveal", "peer": "all"}],
    }
    for name, evs in events.items():
        (tmp_path / f"{name}.ndjson").write_text("".join(json.dumps(e) + "\n" for e in evs))
    watch = QpqWatch(plans, {n: 0 for n in names}, {"x": ("a", "b"), "y": ("c",)}, phase=1.0)
    watch.poll()
    assert watch.current(now=1000.0 + 4.5 + 1.2) == (1, 1)  # round length 4.5 s: round 2, its reveal phase
    snap = watch.snapshot("t", rounds=3, elapsed=1.0)
    x, y = snap.clusters
    assert (x.commits, x.flags, x.wins) == (2, 1, 1)  # b's fault, seen by a and c, counts once
    assert y.winner_reveals == 1
    assert snap.flags == ["round 1, cluster level: b missing reveal (seen by 2 nodes)"]
    assert snap.allocations == [AllocationRow(0, "a", "x", 1.5)]
