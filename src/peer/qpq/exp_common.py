"""Shared pieces of the QPQ experiments: populations, statistics, CSV and figures."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any

from peer.qpq.clusters import chunk_membership
from peer.qpq.gof import GofConfig
from peer.qpq.machine import QpqConfig
from peer.qpq.preferences import Profile
from peer.qpq.setup import QpqSetup


def player_ids(n: int) -> list[str]:
    width = len(str(n - 1))
    return [f"p{i:0{width}d}" for i in range(n)]


def population(
    n: int, k: int, *, seed: int, rounds: int, gof: GofConfig, special: dict[int, Profile] | None = None,
    name: str = "experiment",
) -> QpqSetup:
    """n players in k equal consecutive clusters; ``special`` maps player positions to profiles."""
    nodes = player_ids(n)
    profiles = {nodes[i]: p for i, p in (special or {}).items()}
    return QpqSetup(name=name, seed=seed, membership=chunk_membership(nodes, k), config=QpqConfig(gof=gof),
                    rounds=rounds, profiles=profiles)


def spread(count: int, n: int) -> list[int]:
    """``count`` player positions spread evenly over 0..n-1 (so over different clusters)."""
    count = max(1, min(count, n - 1))
    return [(i * n) // count for i in range(count)]


def mean_se(series: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of a series of independent rounds."""
    m = len(series)
    if m == 0:
        return float("nan"), float("nan")
    mean = sum(series) / m
    if m == 1:
        return mean, float("nan")
    var = sum((x - mean) ** 2 for x in series) / (m - 1)
    return mean, math.sqrt(var / m)


def write_csv(rows: Iterable[Any], path: Path) -> None:
    rows = list(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        if not rows:
            return
        names = [f.name for f in fields(rows[0])]
        writer = csv.writer(fh)
        writer.writerow(names)
        for row in rows:
            writer.writerow([_cell(getattr(row, n)) for n in names])


def write_json(payload: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dataclass(payload):
        payload = asdict(payload)  # type: ignore[arg-type]
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))  # counts stay exact
        return f"{value:.6g}"
    return value


def new_figure(width: float, height: float, panels: int = 1):  # type: ignore[no-untyped-def]
    """A matplotlib Figure on an Agg canvas: no pyplot state, no GUI backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels)
    return fig, axes
