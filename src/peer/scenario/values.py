"""Value models: how a scenario draws its nodes' private values (exactly, in minor units)."""

from __future__ import annotations

import random

from peer.money import SCALE


def uniform_units(rng: random.Random, low: int, high: int) -> int:
    """A value uniform on the minor-unit grid of [low, high]."""
    return rng.randint(low, high)


def depth_bounds(depth: int) -> tuple[int, int]:
    """The paper's Sec. 5.2 model, U[0.1 + 0.1 d, 0.6 + 0.1 d], in minor units."""
    tenth = SCALE // 10
    return tenth * (1 + depth), tenth * (6 + depth)


def draw_values(
    kind: str,
    nodes: list[str],
    depths: dict[str, int],
    seller: str,
    *,
    seed: int,
    low: int = 0,
    high: int = SCALE,
) -> dict[str, int]:
    """Draw every buyer's value; the seller's reserve is left to the caller (0 by default)."""
    rng = random.Random(f"values/{kind}/{seed}")
    values: dict[str, int] = {}
    for node in nodes:  # sorted by the caller: the draw order is part of the seed's meaning
        if node == seller:
            values[node] = 0
        elif kind == "uniform":
            values[node] = uniform_units(rng, low, high)
        elif kind == "depth":
            # Nodes the seller cannot reach never take part; they get 0.
            values[node] = uniform_units(rng, *depth_bounds(depths[node])) if node in depths else 0
        else:
            raise ValueError(f"unknown value model {kind!r}")
    return values
