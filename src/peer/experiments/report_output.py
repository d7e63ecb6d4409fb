"""Output of ``peer experiment deviations``: CSV files and rich tables."""

from __future__ import annotations

import csv
from fractions import Fraction
from pathlib import Path

from peer.experiments.report import DevRecord, Report
from peer.money import format_money

KIND_COLUMNS = ("kind", "group", "runs", "completed", "aborted", "stalled/bug", "mean u truthful", "mean u deviant",
                "mean gain", "max gain", "gains", "loses", "min honest u", "honest IR broken", "detected",
                "evidence", "rejected", "ledger bad", "abort reasons")
CHAOS_COLUMNS = ("setting", "chaos", "runs", "completed", "aborted", "stalled/bug", "same outcome", "ledger bad",
                 "min honest u", "honest IR broken", "abort reasons")
SHARES = {"gains", "loses", "detected", "rejected", "same outcome"}
# The terminal table leaves out what the CSV has room for.
SCREEN_KIND_COLUMNS = ("kind", "runs", "completed", "aborted", "stalled/bug", "mean gain", "max gain", "gains",
                       "min honest u", "detected", "evidence", "ledger bad")
SCREEN_CHAOS_COLUMNS = ("setting", "runs", "completed", "aborted", "stalled/bug", "same outcome", "ledger bad",
                        "min honest u", "abort reasons")


def cell(key: str, value: object) -> str:
    """Shares as percentages, utilities (fractions of top) with 3 decimals."""
    if value is None:
        return "-"
    if isinstance(value, Fraction):
        if key in SHARES:
            return f"{float(value) * 100:.1f}%"
        return f"{float(value):.3f}"
    return str(value)


def write_csv(report: Report, out: Path) -> dict[str, Path]:
    """deviations.csv and chaos.csv (the tables), runs.csv and chaos-runs.csv (every run).

    Amounts in the per-run files are whole units (exact decimals), as in every other output;
    the tables' utilities are fractions of the scenario's top value.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.csv" for name in ("deviations", "chaos", "runs", "chaos-runs")}
    _table_csv(paths["deviations"], KIND_COLUMNS, report.kind_rows())
    _table_csv(paths["chaos"], CHAOS_COLUMNS, report.chaos_rows())
    with paths["runs"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["kind", "graph", "seed", "node", "behaviour", "top", "truthful", "deviant", "gain", "status",
                    "reason", "min_honest", "detections", "rejected", "ledger_ok"])
        for r in report.devs:
            w.writerow([r.kind, r.graph, r.seed, r.node, r.behaviour, _money(r.top), _money(r.truthful),
                        _money(r.deviant), _money(r.gain), r.status, r.reason, _money(r.min_honest),
                        " ".join(r.detections), r.rejected, r.ledger_ok])
    with paths["chaos-runs"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["setting", "graph", "seed", "status", "reason", "ledger_ok", "same_outcome", "min_honest",
                    "top", "dropped"])
        for c in report.chaos:
            w.writerow([c.setting, c.graph, c.seed, c.status, c.reason, c.ledger_ok, c.same_outcome,
                        _money(c.min_honest), _money(c.top), c.dropped])
    return paths


def _table_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for row in rows:
            w.writerow([cell(c, row[c]) for c in columns])


def render(report: Report) -> list[object]:
    """The two tables and the largest gain of each kind that has one."""
    from rich.table import Table
    from rich.text import Text

    c = report.config
    title = (f"Behaviours: {report.graphs} graphs, {len(report.devs)} deviant runs, {report.seconds:.1f} s "
             f"(utilities in units of the scenario's highest value)")
    kinds = Table(title=title, title_justify="left")
    for col in SCREEN_KIND_COLUMNS:
        kinds.add_column(col, justify="left" if col in ("kind", "evidence") else "right")
    rows = report.kind_rows()
    for row in rows:
        kinds.add_row(*(cell(col, row[col]) for col in SCREEN_KIND_COLUMNS))
    chaos = Table(title=f"Faults: {len(report.chaos)} chaos runs ({c.seeds} seeds per graph)", title_justify="left")
    for col in SCREEN_CHAOS_COLUMNS:
        chaos.add_column(col, justify="left" if col in ("setting", "abort reasons") else "right")
    for row in report.chaos_rows():
        chaos.add_row(*(cell(col, row[col]) for col in SCREEN_CHAOS_COLUMNS))
    out: list[object] = [kinds, chaos]
    for row in rows:
        best = row["best"]
        if isinstance(best, DevRecord):
            out.append(Text(f"largest gain, {row['kind']}: {describe(best)}"))
    return out


def _money(units: int) -> str:
    return format_money(units)  # whole units, exact (a negative utility keeps its sign)


def describe(r: DevRecord) -> str:
    return (f"{r.graph} seed {r.seed}, node {r.node} ({r.behaviour}): utility {_money(r.truthful)} -> "
            f"{_money(r.deviant)} (gain {_money(r.gain)}, {float(Fraction(r.gain, r.top)):.3f} of top)")
