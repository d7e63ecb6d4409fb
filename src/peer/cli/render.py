"""Rich renderings of run results (pure: result -> renderable)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from peer.money import format_money
from peer.result import RunResult, amount_to_decimal


def _amount(value: object) -> str:
    if value is None:
        return ""
    return str(amount_to_decimal(value))  # type: ignore[arg-type]


def result_view(run: RunResult, *, max_rows: int = 40) -> Group:
    """The per-node table, the resale path and the totals of one run."""
    title = f"{run.mechanism} — seller {run.seller}, seed {run.seed}"
    table = Table(title=title, title_justify="left")
    table.add_column("node")
    table.add_column("value", justify="right")
    table.add_column("role")
    table.add_column("bought at", justify="right")
    table.add_column("sold at", justify="right")
    table.add_column("utility", justify="right")
    probs = run.extra.get("win_probability")
    if probs is not None:
        table.add_column("P(win)", justify="right")

    def interest(node: str) -> tuple[int, str]:
        role = run.role(node)
        rank = {"seller": 0, "local seller": 1, "winner": 2}.get(role, 3)
        if rank == 3 and (run.utilities.get(node, 0) or (probs and probs.get(node))):
            rank = 2
        return rank, node

    ordered = sorted(run.nodes, key=interest)
    for node in ordered[:max_rows]:
        report = run.nodes[node]
        row = [
            node,
            format_money(report.value),
            run.role(node),
            format_money(report.bought_at),
            format_money(report.sold_at),
            _amount(run.utilities.get(node, 0)),
        ]
        if probs is not None:
            row.append(_amount_plain(probs.get(node, 0)))
        table.add_row(*row)
    parts: list[Table | Text] = [table]
    if len(ordered) > max_rows:
        parts.append(Text(f"… {len(ordered) - max_rows} more nodes with nothing to show (use --json for all)"))
    if run.hops:
        path = " → ".join([run.seller, *(f"{h.buyer} ({format_money(h.price)})" for h in run.hops)])
        parts.append(Text(f"resale path: {path}"))
    elif run.winner is not None:
        parts.append(Text(f"resale path: {run.seller} keeps the item"))
    totals = f"winner: {run.winner if run.winner is not None else '(randomised: see P(win))'}   revenue: {_amount(run.revenue)}"
    if run.messages:
        counts = ", ".join(f"{k} {v}" for k, v in run.messages.items())
        totals += f"   messages: {counts} (total {sum(run.messages.values())})"
    if "trees" in run.extra:
        kind = "all" if run.extra.get("trees_exact") else "sampled"
        totals += f"   spanning trees: {run.extra['trees']} ({kind})"
    parts.append(Text(totals))
    return Group(*parts)


def _amount_plain(prob: object) -> str:
    return f"{prob:.4f}" if prob else "0"
