"""Pure views: snapshots in, rich renderables out.  No I/O, no clocks, no trio.

The dashboards refresh these from a trio task with ``Live(auto_refresh=False)``
(rich's own refresh thread would read our state from another OS thread).
"""

from __future__ import annotations

import re
from collections import Counter

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from peer.money import format_money
from peer.tui.snapshot import STAGES, LedgerRow, NodeIdentity, NodeSnapshot

_STAGE_STYLE = {
    "idle": "dim",
    "gathering": "cyan",
    "aggregating": "yellow",
    "reported": "blue",
    "hosting": "magenta",
    "settled": "green",
}
_STAGE_OF_PROTOCOL = {  # which of the paper's three stages a node state belongs to
    "gathering": "1 diffusion",
    "aggregating": "2 aggregation",
    "reported": "3 allocation",
    "hosting": "3 allocation",
    "settled": "done",
}


def _names(items: list[str], limit: int = 4) -> str:
    if len(items) <= limit:
        return ",".join(items)
    return ",".join(items[:limit]) + f",+{len(items) - limit}"


def node_view(
    node: NodeSnapshot, *, events: list[str] | None = None, identity: NodeIdentity | None = None, max_events: int = 6,
) -> Panel:
    """The compact live view of one node (``peer run``)."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # a key or neighbour string folds; it is never cut
    if identity is not None:
        table.add_row("listen", identity.url)
        table.add_row("key", identity.public_key)
        table.add_row("neighbours", Text(identity.neighbour_spec, style="cyan"))
    stage = Text(node.stage, style=_STAGE_STYLE.get(node.stage, ""))
    stage.append(f"  ({_STAGE_OF_PROTOCOL.get(node.stage, 'waiting')})", style="dim")
    table.add_row("stage", stage)
    table.add_row("role", node.role)
    table.add_row("value", format_money(node.value))
    table.add_row("links", f"{node.links_up}/{node.links_total} up")
    table.add_row("inviters", _names(node.inviters, 8) or "-")
    table.add_row("invitees", _names(node.invitees, 8) or "-")
    table.add_row("parent", node.parent or "-")
    table.add_row("bought at", format_money(node.bought_at) or "-")
    table.add_row("sold at", format_money(node.sold_at) or "-")
    table.add_row("messages", f"in {node.messages_in}  out {node.messages_out}  bad {node.bad_frames}")
    table.add_row("ledger", f"{node.ledger_entries} entries")
    if node.winner:
        table.add_row("winner", node.winner)
    body: list[Table | Text] = [table]
    for line in (events or [])[-max_events:] if max_events > 0 else []:
        body.append(Text(line, style="dim", overflow="ellipsis", no_wrap=True))
    return Panel(Group(*body), title=Text(f"peer node {node.name} [{node.key}]"), title_align="left", expand=False)


def _bar(done: int, total: int, *, width: int) -> Text:
    """A plain progress bar (a Text, so it always ends its own line and snapshots exactly)."""
    filled = 0 if total <= 0 else round(width * done / total)
    bar = Text("█" * filled, style="green")
    bar.append("░" * (width - filled), style="dim")
    bar.append(f" {done}/{total} settled")
    return bar


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts 2 before 10: digit runs compare as numbers."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p)


def _interest(node: NodeSnapshot) -> tuple[int, tuple[tuple[int, int | str], ...]]:
    order = {"seller": 0, "local seller": 1, "winner": 2}
    return order.get(node.role, 3), natural_key(node.name)


def sales_line(ledger: list[LedgerRow], winner: str | None) -> Text:
    """The auction so far in one line: the resale path with prices, and the winner once settled."""
    line = Text("sales ", style="bold", no_wrap=True, overflow="ellipsis")
    if not ledger:
        line.append("none yet" if winner is None else "none: the seller keeps the item", style="dim")
        return line
    if winner is not None:
        line.append(f"winner {winner}", style="bold green")
        line.append(": ")
    line.append(ledger[0].seller)
    for row in ledger:
        line.append(" → ")
        line.append(row.buyer, style="bold")
        line.append(f" ({format_money(row.price)})", style="dim")
    return line


_SHORT_ROLE = {"local seller": "resold", "seller": "seller", "winner": "winner", "other": ""}
LEDGER_ROWS = 6  # most recent hops shown; the sales line above always has the whole path


def network_view(
    nodes: list[NodeSnapshot],
    ledger: list[LedgerRow],
    *,
    title: str,
    elapsed: float,
    message_rate: float,
    max_rows: int = 24,
    height: int | None = None,
    width: int | None = None,
    footer: str | None = None,
) -> Group:
    """The whole-network dashboard of ``tools/launch``: summary first, then the ledger, then the nodes.

    With ``height`` (the terminal's), the node table is cut to what fits, so the summary and
    the ledger are never pushed off the screen.
    """
    counts = Counter(n.stage for n in nodes)
    linked = sum(1 for n in nodes if n.links_total and n.links_up == n.links_total)
    settled = counts.get("settled", 0)
    header = Text(no_wrap=True, overflow="ellipsis")
    header.append(f"{title}  ", style="bold")
    header.append(f"{len(nodes)} nodes  linked {linked}/{len(nodes)}  ")
    header.append(f"{message_rate:,.0f} msg/s  t={elapsed:5.1f}s")
    stages = Text(no_wrap=True, overflow="ellipsis")
    protocol = Counter(_STAGE_OF_PROTOCOL.get(n.stage, "0 waiting") for n in nodes)
    for label in ("0 waiting", "1 diffusion", "2 aggregation", "3 allocation", "done"):
        stages.append(f"{label.split(' ', 1)[-1]} {protocol.get(label, 0)}  ",
                      style="bold" if protocol.get(label) else "dim")
    progress = _bar(settled, len(nodes), width=40)

    recent = ledger[-LEDGER_ROWS:]
    ledger_table = Table(box=None, pad_edge=False, show_edge=False)
    for col in ("hop", "seller", "buyer", "price", "entry", "copies"):
        ledger_table.add_column(col, no_wrap=True, style="dim" if col == "entry" else "")
    for row in recent:
        ledger_table.add_row(
            str(row.hop), row.seller, row.buyer, format_money(row.price), row.digest[:12], f"{row.copies}/{len(nodes)}"
        )
    if not ledger:
        ledger_table.add_row("-", "", "", "", "", "")
    ledger_title = Text("ledger", style="bold")
    if len(ledger) > len(recent):
        ledger_title.append(f"  (last {len(recent)} of {len(ledger)} hops)", style="dim")

    narrow = width is not None and width < 110
    any_bad = any(n.bad_frames for n in nodes)
    columns = [("node", "left"), ("stage", "left"), ("role", "left")]
    # Narrow terminals get counts of inviters/invitees instead of their names.
    columns += [("inv→", "right")] if narrow else [("inviters", "left"), ("invitees", "left")]
    columns += [("bought", "right"), ("sold", "right"), ("in/out", "right")]
    if any_bad or not narrow:
        columns.append(("bad", "right"))
    table = Table(expand=False, box=None, pad_edge=False)
    for col, justify in columns:
        table.add_column(col, justify=justify, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]
    fixed = 4 + 2 + max(1, len(recent)) + 1 + 1 + (1 if footer else 0)  # summary, ledger, table header, "more"
    rows = max_rows if height is None else max(3, height - fixed - 1)
    shown = sorted(nodes, key=_interest)[:rows]
    for n in shown:
        cells: list[object] = [
            n.name if n.alive else f"{n.name} ✗",
            Text(n.stage, style=_STAGE_STYLE.get(n.stage, "")),
            _SHORT_ROLE.get(n.role, n.role) if narrow else n.role,
        ]
        cells += [f"{len(n.inviters)}→{len(n.invitees)}"] if narrow else [_names(n.inviters, 3), _names(n.invitees, 3)]
        cells += [format_money(n.bought_at), format_money(n.sold_at), f"{n.messages_in}/{n.messages_out}"]
        if any_bad or not narrow:
            cells.append(str(n.bad_frames) if n.bad_frames else "")
        table.add_row(*cells)
    parts: list[object] = [header, stages, progress, sales_line(ledger, next((n.winner for n in nodes if n.winner), None)), ledger_title, ledger_table, table]
    if len(nodes) > len(shown):
        parts.append(Text(f"… {len(nodes) - len(shown)} more nodes (sellers and the winner first)", style="dim"))
    if footer:
        parts.append(Text(footer, style="bold reverse"))
    return Group(*parts)  # type: ignore[arg-type]
