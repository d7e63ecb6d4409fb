"""The workload dashboard (``tools/launch SCENARIO --auctions N``): pure, a snapshot in, a renderable out.

A stream of auctions on a network that stays up: how many are in flight and at
which stage, how many completed or aborted, the rate and latency so far, and
the last outcomes (item, seller, winner, price, hops).  It is built to fit an
80x24 terminal: the summary lines come first and the outcome table gets what
is left of the height.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table
from rich.text import Text

# The stages an auction in flight is shown in, in protocol order (see peer.launch.stream_monitor).
STREAM_STAGES = ("starting", "diffusion", "aggregation", "allocation", "settling")
WINNER_WIDTH = 34  # columns the winner (or an abort's reason) may take in the outcome table
_STAGE_STYLE = {"starting": "dim", "diffusion": "cyan", "aggregation": "yellow", "allocation": "magenta",
                "settling": "green"}


@dataclass(frozen=True)
class OutcomeRow:
    index: int
    item: str
    seller: str
    outcome: str  # completed | aborted | failed
    winner: str | None = None
    price: str | None = None  # exact decimal string, as the node reported it
    hops: int = 0
    latency: float = 0.0
    reason: str | None = None  # why an auction aborted or failed


@dataclass
class StreamSnapshot:
    title: str
    nodes: int
    linked: int
    total: int  # auctions the run will start
    concurrency: int
    elapsed: float  # seconds since the first auction started (0 before)
    in_flight: dict[str, int] = field(default_factory=dict)  # stage -> auctions in it
    completed: int = 0
    aborted: int = 0
    failed: int = 0
    rate: float | None = None  # auctions finished per second so far
    recent_rate: float | None = None  # ... over the last few seconds
    p50: float | None = None
    p95: float | None = None
    last: list[OutcomeRow] = field(default_factory=list)  # oldest first
    status: str = ""  # what the launcher is doing (linking, running, checking)


def _bar(done: int, total: int, width: int) -> Text:
    filled = 0 if total <= 0 else min(width, round(width * done / total))
    bar = Text("█" * filled, style="green")
    bar.append("░" * (width - filled), style="dim")
    return bar


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def stream_view(snap: StreamSnapshot, *, height: int | None = None, footer: str | None = None) -> Group:
    """Summary, in flight by stage, rate and latency, then the last outcomes (newest first)."""
    header = Text(no_wrap=True, overflow="ellipsis")
    header.append(f"{snap.title}  ", style="bold")
    header.append(f"{snap.nodes} nodes  linked {snap.linked}/{snap.nodes}  t={snap.elapsed:5.1f}s")
    if snap.status:
        header.append(f"  {snap.status}", style="dim")

    finished = snap.completed + snap.aborted + snap.failed
    progress = _bar(finished, snap.total, 30)
    progress.append(f" {finished}/{snap.total}  ")
    progress.append(f"completed {snap.completed}", style="green" if snap.completed else "dim")
    progress.append("  ")
    progress.append(f"aborted {snap.aborted}", style="bold red" if snap.aborted else "dim")
    if snap.failed:
        progress.append(f"  failed {snap.failed}", style="bold red")
    progress.no_wrap, progress.overflow = True, "ellipsis"

    flying = sum(snap.in_flight.values())
    stages = Text(no_wrap=True, overflow="ellipsis")
    stages.append(f"in flight {flying}/{snap.concurrency}: ", style="bold")
    for i, stage in enumerate(STREAM_STAGES):
        count = snap.in_flight.get(stage, 0)
        stages.append(("  " if i else "") + f"{stage} {count}", style=_STAGE_STYLE[stage] if count else "dim")

    rate = Text(no_wrap=True, overflow="ellipsis")
    rate.append("rate ", style="bold")
    rate.append("-" if snap.rate is None else f"{snap.rate:.2f}")
    rate.append(" auctions/s")
    if snap.recent_rate is not None:
        rate.append(f" (last 10 s: {snap.recent_rate:.2f})", style="dim")
    rate.append("  latency ", style="bold")
    rate.append(f"p50 {_seconds(snap.p50)}  p95 {_seconds(snap.p95)}")

    fixed = 4 + 1 + 1 + (1 if footer else 0)  # summary, table title, table header, footer
    room = 10 if height is None else max(1, height - fixed - 1)
    shown = list(reversed(snap.last[-room:]))
    table = Table(box=None, pad_edge=False, show_edge=False)
    for col, justify in (("#", "right"), ("item", "left"), ("seller", "left"), ("winner", "left"),
                         ("price", "right"), ("hops", "right"), ("took", "right")):
        # An abort's reason goes in the winner column: capped, so it never squeezes the others out.
        table.add_column(col, justify=justify, no_wrap=True, overflow="ellipsis",  # type: ignore[arg-type]
                         max_width=WINNER_WIDTH if col == "winner" else None)
    for row in shown:
        if row.outcome == "completed":
            winner: Text | str = row.winner or "-"
            if row.winner == row.seller:
                winner = Text(f"{row.winner} (kept)", style="dim")
            table.add_row(str(row.index), row.item, row.seller, winner, row.price or "-", str(row.hops),
                          f"{row.latency:.2f}s")
        else:
            what = Text(f"{row.outcome}: {row.reason or 'no reason given'}", style="red")
            table.add_row(str(row.index), row.item, row.seller, what, "", "", f"{row.latency:.2f}s")
    title = Text("last outcomes", style="bold")
    if not shown:
        title.append("  (none yet)", style="dim")
    elif finished > len(shown):
        title.append(f"  (newest first, {len(shown)} of {finished})", style="dim")
    parts: list[object] = [header, progress, stages, rate, title]
    if shown:
        parts.append(table)
    if footer:
        parts.append(Text(footer, style="bold reverse", no_wrap=True, overflow="ellipsis"))
    return Group(*parts)  # type: ignore[arg-type]
