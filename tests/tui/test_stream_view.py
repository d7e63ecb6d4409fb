"""The workload dashboard: rendered from a snapshot, it fits 80x24 and shows the stream."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from peer.launch.plan import NodePlan
from peer.launch.stream_monitor import StreamMonitor
from peer.launch.workload import AuctionRun
from peer.net.identity import Identity
from peer.tui.stream_view import OutcomeRow, StreamSnapshot, stream_view

from tests.tui.test_views import check_golden


def render(renderable: object, width: int = 80) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(renderable)
    return buffer.getvalue()


def outcomes(count: int) -> list[OutcomeRow]:
    rows = []
    for i in range(count):
        if i == 3:
            rows.append(OutcomeRow(i, f"item-{i}", "17", "aborted", latency=61.0,
                                   reason="no progress for 60 s while hosting: a node on the resale path crashed"))
        elif i == 5:
            rows.append(OutcomeRow(i, f"item-{i}", "4", "completed", "4", "0", 0, 2.5))
        else:
            rows.append(OutcomeRow(i, f"item-{i}", str(i % 7), "completed", str(10 + i), f"{40 + i}.125", 1 + i % 3,
                                   1.5 + i / 10))
    return rows


def snapshot(finished: int = 30) -> StreamSnapshot:
    return StreamSnapshot(
        title="ws-100 (seed 5)", nodes=100, linked=100, total=50, concurrency=5, elapsed=42.25,
        in_flight={"diffusion": 1, "aggregation": 2, "allocation": 1, "settling": 1},
        completed=finished - 1, aborted=1, failed=0, rate=0.71, recent_rate=0.9, p50=3.25, p95=6.5,
        last=outcomes(finished), status="running",
    )


def test_stream_view_fits_80x24_and_shows_stages_rate_latency_and_the_last_outcomes() -> None:
    text = render(stream_view(snapshot(), height=24, footer="done: press any key for the summary"))
    lines = text.splitlines()
    assert len(lines) <= 23 and max(len(line) for line in lines) <= 80
    check_golden("stream_view_80x24.txt", text)
    assert "linked 100/100" in lines[0] and "t= 42.2s" in lines[0]
    assert "30/50" in lines[1] and "completed 29" in lines[1] and "aborted 1" in lines[1]
    assert lines[2] == ("in flight 5/5: starting 0  diffusion 1  aggregation 2  allocation 1  settling 1")
    assert "rate 0.71 auctions/s" in lines[3] and "p50 3.25s" in lines[3] and "p95 6.50s" in lines[3]
    assert "newest first" in lines[4]
    assert lines[5].split() == ["#", "item", "seller", "winner", "price", "hops", "took"]
    assert lines[6].split() == ["29", "item-29", "1", "39", "69.125", "3", "4.40s"]  # the newest first
    assert lines[-1].startswith("done: press any key")


def test_aborted_and_kept_auctions_say_so() -> None:
    text = render(stream_view(snapshot(6), height=24))
    row3 = next(line for line in text.splitlines() if line.split()[:2] == ["3", "item-3"])
    assert "aborted: no progress" in row3 and "61.00s" in row3
    row5 = next(line for line in text.splitlines() if line.split()[:2] == ["5", "item-5"])
    assert "4 (kept)" in row5  # the seller kept the item: nobody bid above its value
    assert "newest first" not in text  # every outcome fits


def test_an_empty_stream_shows_no_table_and_no_rate() -> None:
    snap = StreamSnapshot(title="ws-20 (seed 5)", nodes=20, linked=7, total=10, concurrency=2, elapsed=0.0,
                          status="linking")
    lines = render(stream_view(snap, height=24)).splitlines()
    assert "linked 7/20" in lines[0] and "linking" in lines[0]
    assert "0/10" in lines[1]
    assert "rate - auctions/s" in lines[3] and "p50 -" in lines[3]
    assert lines[4] == "last outcomes  (none yet)" and len(lines) == 5


def test_a_short_terminal_still_shows_the_summary_and_the_newest_outcome() -> None:
    lines = render(stream_view(snapshot(), height=10, footer="done")).splitlines()
    assert len(lines) <= 10
    assert lines[0].startswith("ws-100") and lines[6].split()[0] == "29"


# ------------------------------------------------------------------ the monitor


def plans(tmp_path: Path, names: list[str]) -> list[NodePlan]:
    out = []
    for name in names:
        others = ",".join(f"{n}=ws://127.0.0.1:1#00" for n in names if n != name)
        out.append(NodePlan(name=name, identity=Identity.from_seed(name.encode().ljust(32, b"\0")), port=1,
                            key_path=tmp_path / f"{name}.key", data_dir=tmp_path / name,
                            log_path=tmp_path / f"{name}.ndjson", out_path=tmp_path / f"{name}.out",
                            argv=["run", "--neighbours", others]))
    return out


def log(path: Path, *events: dict[str, object]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        for event in events:
            handle.write(json.dumps(event) + "\n")


def test_monitor_follows_each_auction_through_its_stages(tmp_path: Path) -> None:
    names = ["a", "b", "c"]
    ps = plans(tmp_path, names)
    runs = [AuctionRun(0, "a", "item-0"), AuctionRun(1, "b", "item-1")]
    now = [100.0]
    monitor = StreamMonitor(ps, runs, title="t", concurrency=2, clock=lambda: now[0])
    for p in ps:
        log(p.log_path, {"kind": "started"}, *({"kind": "link", "peer": n, "up": True} for n in names if n != p.name))
    monitor.poll()
    assert monitor.snapshot().linked == 3
    runs[0].started = runs[1].started = 100.0
    assert monitor.snapshot().in_flight == {"starting": 2}

    log(ps[0].log_path, {"kind": "announced", "auction": "A0", "item": "item-0"},
        {"kind": "stage", "auction": "A0", "stage": "aggregating"},
        {"kind": "send", "auction": "A0", "peer": "b", "type": "Invite", "stage": "1"})
    log(ps[1].log_path, {"kind": "stage", "auction": "A0", "stage": "gathering"})
    monitor.poll()
    assert monitor.snapshot().in_flight == {"diffusion": 1, "starting": 1}  # b still gathers A0

    log(ps[1].log_path, {"kind": "stage", "auction": "A0", "stage": "aggregating"},
        {"kind": "announced", "auction": "B1", "item": "item-1"})
    monitor.poll()
    assert monitor.snapshot().in_flight == {"aggregation": 2}

    log(ps[0].log_path, {"kind": "stage", "auction": "A0", "stage": "hosting"})
    log(ps[2].log_path, {"kind": "ledger", "auction": "B1", "position": 1})
    monitor.poll()
    assert monitor.snapshot().in_flight == {"allocation": 2}

    log(ps[2].log_path, {"kind": "settled", "auction": "A0"})
    monitor.poll()
    assert monitor.snapshot().in_flight == {"settling": 1, "allocation": 1}

    now[0] = 104.0
    runs[0].ended, runs[0].outcome, runs[0].winner, runs[0].price, runs[0].hops = 103.0, "completed", "c", "7", 1
    snap = monitor.snapshot()
    assert snap.in_flight == {"allocation": 1} and snap.completed == 1
    assert snap.rate == 0.25 and snap.p50 == 3.0
    assert snap.last == [OutcomeRow(0, "item-0", "a", "completed", "c", "7", 1, 3.0, None)]

    monitor.stopped = 104.0  # the stream is over: the launcher stops the nodes, their links drop
    log(ps[0].log_path, {"kind": "link", "peer": "b", "up": False})
    monitor.poll()
    assert monitor.snapshot().linked == 3


def test_monitor_skips_message_lines_unparsed_and_ignores_other_auctions(tmp_path: Path) -> None:
    ps = plans(tmp_path, ["a", "b"])
    runs = [AuctionRun(0, "a", "item-0", started=1.0)]
    monitor = StreamMonitor(ps, runs, title="t", concurrency=1, clock=lambda: 2.0)
    with open(ps[0].log_path, "a", encoding="utf-8") as handle:
        handle.write('{"kind":"send","auction":"A0", BROKEN\n')  # never parsed: no error either way
        handle.write('{"kind":"announced","auction":"Z","item":"not-ours"}\n')
        handle.write('{"kind":"stage","auction":"Z","stage":"gathering"}\n')
        handle.write('{"kind":"announced","auction":"A0","item":"item-0"}\n{"kind":"stage","auc')  # a torn line
    monitor.poll()
    assert monitor.snapshot().in_flight == {"aggregation": 1}
    with open(ps[0].log_path, "a", encoding="utf-8") as handle:
        handle.write('tion":"A0","stage":"hosting"}\n')
    monitor.poll()
    assert monitor.snapshot().in_flight == {"allocation": 1}
