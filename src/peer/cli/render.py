"""Rich renderings of run results (pure: result -> renderable)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from peer.money import format_money
from peer.result import RunResult, amount_to_decimal
from peer.tui.views import natural_key


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

    def interest(node: str) -> tuple[int, tuple[tuple[int, int | str], ...]]:
        role = run.role(node)
        rank = {"seller": 0, "local seller": 1, "winner": 2}.get(role, 3)
        if rank == 3 and (run.utilities.get(node, 0) or (probs and probs.get(node))):
            rank = 2
        return rank, natural_key(node)  # 2 before 10, as in the live views

    ordered = sorted(run.nodes, key=interest)
    settled = _settled(run)
    on_ledger_bought = {h.buyer: h.price for h in run.hops}
    on_ledger_sold = {h.seller: h.price for h in run.hops}

    def trade(node: str, price: int | None, on_ledger: dict[str, int]) -> str:
        # A node's own view of a trade that the ledger does not hold (an aborted run) says so.
        if price is None or settled or on_ledger.get(node) == price:
            return format_money(price)
        return f"{format_money(price)} (not on the ledger)"

    for node in ordered[:max_rows]:
        report = run.nodes[node]
        row = [
            node,
            format_money(report.value),
            "holder" if not settled and node == run.winner else run.role(node),
            trade(node, report.bought_at, on_ledger_bought),
            trade(node, report.sold_at, on_ledger_sold),
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
    who = "winner" if settled else "holder (by the ledger)"
    if run.winner is not None:
        held_by = run.winner
    else:
        held_by = "(randomised: see P(win))" if probs is not None else "nobody"
    totals = f"{who}: {held_by}   revenue: {_amount(run.revenue)}"
    if run.messages:
        counts = ", ".join(f"{k} {v}" for k, v in run.messages.items())
        totals += f"   messages: {counts} (total {sum(run.messages.values())})"
    if "trees" in run.extra:
        kind = "all" if run.extra.get("trees_exact") else "sampled"
        totals += f"   spanning trees: {run.extra['trees']} ({kind})"
    parts.append(Text(totals))
    parts.extend(_outcome_lines(run))
    return Group(*parts)


def _settled(run: RunResult) -> bool:
    """True unless a distributed run says it did not complete (reference mechanisms always do)."""
    return run.extra.get("status", "completed") == "completed"


def _outcome_lines(run: RunResult) -> list[Text]:
    """How a distributed run ended, when not simply completed: status, reason, checks that fired."""
    lines: list[Text] = []
    if not _settled(run):
        reason = run.extra.get("reason")
        detail = run.extra.get("detail")
        head = f"status: {run.extra.get('status')}" + (f" ({reason})" if reason else "")
        lines.append(Text(head + (f": {detail}" if detail else ""), style="bold red"))
        if run.extra.get("unsettled"):
            lines.append(Text(f"unsettled: {', '.join(run.extra['unsettled'])}"))
    for d in run.extra.get("detections", []):
        amounts = ", ".join(f"{k} {_amount_or_text(d.get(k))}" for k in ("claimed", "recorded")
                            if d.get(k) is not None)
        where = f" at hop {d['hop']}" if d.get("hop") is not None else ""
        lines.append(Text(f"detected: {d.get('by')}'s {d.get('check')} check refused {d.get('against')}{where}: "
                          f"{d.get('detail')}" + (f" ({amounts})" if amounts else "")))
    if run.extra.get("rejected"):
        lines.append(Text(f"messages rejected by the receiving machines: {run.extra['rejected']}"))
    return lines


def _amount_or_text(value: object) -> str:
    # Detections hold amounts already in whole units (Decimal) or a text claim.
    return str(value)


def _amount_plain(prob: object) -> str:
    return f"{prob:.4f}" if prob else "0"
