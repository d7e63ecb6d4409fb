"""Rich renderings of QPQ results (pure: result -> renderable)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from peer.qpq.exp_cheaters import CheaterRow
from peer.qpq.exp_props import PropsRow
from peer.qpq.exp_traffic import TrafficRow
from peer.qpq.result import QpqRun


def run_view(run: QpqRun) -> Group:
    data = run.to_json()
    m = run.setup.membership
    sizes = sorted(set(data["cluster_sizes"]))  # type: ignore[arg-type]
    head = Text(
        f"{run.setup.name}: n={m.n} players, k={m.k} clusters (sizes {', '.join(map(str, sizes))}), "
        f"{run.rounds} rounds in {run.seconds:.2f} s ({run.mode} mode), seed {run.setup.seed}"
    )
    table = Table(title="mean normalised utility per player and resource", title_justify="left")
    for col in ("profile", "players", "mean utility", "vs 1/(n+1)", "wins", "replaced"):
        table.add_column(col, justify="left" if col == "profile" else "right")
    honest = 1 / (m.n + 1)
    for spec, row in data["profiles"].items():  # type: ignore[union-attr]
        table.add_row(spec, str(row["players"]), f"{row['mean_utility']:.5f}",
                      f"{row['mean_utility'] / honest:.3f}", str(row["wins"]), str(row["replaced"]))
    table.caption = f"1/(n+1) = {honest:.5f} (Prop. 7), 1/(2n) = {1 / (2 * m.n):.5f} (Prop. 8)"
    traffic = data["traffic_per_resource"]
    lines = [
        f"traffic per resource: {traffic['frames']:.0f} frames ({traffic['values']:.0f} values) sent directly; "  # type: ignore[index]
        f"relay model {traffic['relay_values']:.0f} values, paper's formula {data['paper_values_per_resource']}",  # type: ignore[index]
        f"flags: {', '.join(f'{k} {v}' for k, v in data['flags'].items()) or 'none'}",  # type: ignore[union-attr]
        f"unallocated rounds: {data['unallocated']}   winner-level replacements: {data['winner_level_replaced']}",
        f"ledger head: {data['ledger_head']}",
    ]
    if run.mode == "machines":
        lines.append(f"rejected messages: {data['rejected']}   rounds with disagreeing ledgers: {data['disagreements']}")
    return Group(head, table, *(Text(line) for line in lines))


def props_table(rows: list[PropsRow]) -> Table:
    table = Table(title="Props. 7 and 8: mean normalised utility (± 1 s.e.)", title_justify="left")
    for col in ("n", "k", "honest", "1/(n+1)", "test-failing", "1/(2n)", "failing replaced", "honest replaced"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r.n), str(r.k), f"{r.honest_mean:.5f} ± {r.honest_se:.5f}", f"{r.honest_theory:.5f}",
                      f"{r.failing_mean:.5f} ± {r.failing_se:.5f}", f"{r.failing_theory:.5f}",
                      f"{r.failing_replaced_share:.3f}", f"{r.honest_replaced_share:.4f}")
    return table


def traffic_table(rows: list[TrafficRow]) -> Table:
    table = Table(title="Traffic per resource: counted vs Prop. 11", title_justify="left")
    for col in ("n", "k", "paper formula", "relay counted", "direct values", "direct frames", "machines frames",
                "QPQ/this"):
        table.add_column(col, justify="right")
    for r in rows:
        machines = "-" if r.machines_frames != r.machines_frames else f"{r.machines_frames:.0f}"
        table.add_row(str(r.n), str(r.k), str(r.paper_values), f"{r.relay_values:.0f}", f"{r.direct_values:.0f}",
                      f"{r.direct_frames:.0f}", machines, f"{r.reduction_vs_qpq:.2f}")
    return table


def cheaters_table(rows: list[CheaterRow]) -> Table:
    table = Table(title="Sec. VI: cheaters' mean normalised utility (± 1 s.e.)", title_justify="left")
    for col in ("setting", "profile", "mechanism", "window", "cheater", "honest", "gain vs 1/(n+1)", "replaced"):
        table.add_column(col, justify="left" if col in ("setting", "profile", "mechanism") else "right")
    for r in rows:
        table.add_row(r.setting, r.profile, f"{r.mechanism} k={r.k}", str(r.window),
                      f"{r.cheater_mean:.5f} ± {r.cheater_se:.5f}", f"{r.honest_mean:.5f}", f"{r.cheater_gain:+.1%}",
                      f"{r.cheater_replaced_share:.2f}")
    return table
