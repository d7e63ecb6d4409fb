"""The QPQ launch dashboard: pure, a snapshot in and a rich renderable out.

Shows what a multilevel QPQ round is made of: the clusters, the current round
and phase, each cluster's commitments and reveals this round, the flags
raised, and each round's allocation (winner and its cluster).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table
from rich.text import Text

from peer.tui.views import natural_key

PHASE_NAMES = ("cluster commit", "cluster reveal", "winner commit", "winner reveal", "between rounds")


@dataclass
class ClusterRow:
    cluster: str
    members: list[str]
    commits: int = 0  # this round, cluster level
    reveals: int = 0
    winner_commits: int = 0  # this round, winner level (from this cluster's members)
    winner_reveals: int = 0
    flags: int = 0  # all rounds
    wins: int = 0  # resources won by this cluster's members


@dataclass(frozen=True)
class AllocationRow:
    round: int
    winner: str  # "" when nobody got the resource
    cluster: str
    seconds: float | None = None  # from the round's start to the last node's record of it


@dataclass
class QpqSnapshot:
    title: str
    nodes: int
    linked: int
    rounds: int
    round: int | None  # the round in progress (0-based), None before the kickoff
    phase: int | None  # index into PHASE_NAMES
    rounds_done: int  # rounds every node has finished
    clusters: list[ClusterRow]
    allocations: list[AllocationRow]
    flags: list[str] = field(default_factory=list)  # most recent last, one line each
    messages: int = 0
    elapsed: float = 0.0


def qpq_view(snap: QpqSnapshot, *, height: int | None = None, footer: str | None = None) -> Group:
    header = Text(no_wrap=True, overflow="ellipsis")
    header.append(f"{snap.title}  ", style="bold")
    header.append(f"QPQ  {snap.nodes} nodes in {len(snap.clusters)} clusters  linked {snap.linked}/{snap.nodes}  "
                  f"msgs {snap.messages}  t={snap.elapsed:5.1f}s")
    where = Text(no_wrap=True, overflow="ellipsis")
    if snap.round is None:
        where.append("waiting for every node to link, then the kickoff", style="dim")
    else:
        where.append(f"round {min(snap.round + 1, snap.rounds)}/{snap.rounds}", style="bold")
        phase = PHASE_NAMES[snap.phase] if snap.phase is not None and snap.phase < len(PHASE_NAMES) else "-"
        where.append(f"  phase: {phase}  ", style="cyan")
        where.append(f"done on every node: {snap.rounds_done}/{snap.rounds}", style="dim")
    total_flags = sum(c.flags for c in snap.clusters)
    where.append(f"  flags: {total_flags}", style="bold red" if total_flags else "dim")

    clusters = Table(box=None, pad_edge=False, title_justify="left")
    for col, justify in (("cluster", "left"), ("members", "left"), ("commits", "right"), ("reveals", "right"),
                         ("winner lvl", "right"), ("flags", "right"), ("wins", "right")):
        clusters.add_column(col, justify=justify, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]
    for row in sorted(snap.clusters, key=lambda c: natural_key(c.cluster)):
        n = len(row.members)
        members = ",".join(sorted(row.members, key=natural_key)[:4]) + (f",+{n - 4}" if n > 4 else "")
        clusters.add_row(row.cluster, f"{n}: {members}", f"{row.commits}/{n}", f"{row.reveals}/{n}",
                         f"{row.winner_commits}c {row.winner_reveals}r",
                         Text(str(row.flags), style="red") if row.flags else "0", str(row.wins))

    shown_flags = snap.flags[-3:]
    fixed = 2 + 1 + len(snap.clusters) + 1 + 1 + len(shown_flags) + (1 if footer else 0) + 1
    room = 10 if height is None else max(2, height - fixed - 1)
    recent = snap.allocations[-room:]
    allocations = Table(box=None, pad_edge=False)
    for col, justify in (("round", "right"), ("winner", "left"), ("cluster", "left"), ("took", "right")):
        allocations.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for a in recent:
        allocations.add_row(str(a.round + 1), a.winner or "(nobody)", a.cluster or "-",
                            "" if a.seconds is None else f"{a.seconds:.2f}s")
    if not recent:
        allocations.add_row("-", "", "", "")
    title = Text("allocations", style="bold")
    if len(snap.allocations) > len(recent):
        title.append(f"  (last {len(recent)} of {len(snap.allocations)})", style="dim")
    wins = Counter(a.winner for a in snap.allocations if a.winner)
    if wins:
        title.append("  most: " + ", ".join(f"{w} {k}" for w, k in wins.most_common(3)), style="dim")
    parts: list[object] = [header, where, clusters, title, allocations]
    for line in shown_flags:
        parts.append(Text(f"flag: {line}", style="red", no_wrap=True, overflow="ellipsis"))
    if footer:
        parts.append(Text(footer, style="bold reverse"))
    return Group(*parts)  # type: ignore[arg-type]
