"""Counting what a round really sends, beside the paper's relay-model formulas (Prop. 11).

Two models are counted from the same broadcasts:

- *direct* (what peer sends): one frame per (message, recipient); a Commit
  carries a digest, a Reveal carries one value.  A broadcast to g members
  other than the sender costs g frames.
- *relay* (the paper's Sec. V-A): a revealed value goes up to the relay once
  and comes back to every member of its group, the sender included: 1 + (g+1)
  values.  Summed over a fully cooperative round this is exactly
  ``n + n**2`` (QPQ) and ``n + sum n_c**2 + k + n*k`` (multilevel).

So direct values = relay values - 2 per reveal (no upload, no echo to the
sender): for a full round, formula - 2 (n + k) (k = 1: formula - 2n).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Traffic:
    frames: Counter[str] = field(default_factory=Counter)  # "cluster/commit" -> frames
    values: int = 0  # values carried by direct frames (one per Reveal delivery)
    relay_values: int = 0  # the same reveals in the paper's relay model
    broadcasts: int = 0

    def add(self, level: str, kind: str, recipients: int, times: int = 1) -> None:
        """``times`` broadcasts of one ``kind`` to ``recipients`` members each."""
        if times <= 0:
            return
        self.frames[f"{level}/{kind}"] += recipients * times
        self.broadcasts += times
        if kind == "reveal":
            self.values += recipients * times
            self.relay_values += (1 + recipients + 1) * times

    @property
    def total_frames(self) -> int:
        return sum(self.frames.values())

    def merge(self, other: Traffic) -> None:
        self.frames.update(other.frames)
        self.values += other.values
        self.relay_values += other.relay_values
        self.broadcasts += other.broadcasts

    def per_round(self, rounds: int) -> dict[str, float]:
        r = max(rounds, 1)
        out = {k: v / r for k, v in sorted(self.frames.items())}
        out.update(frames=self.total_frames / r, values=self.values / r, relay_values=self.relay_values / r)
        return out


def qpq_values(n: int) -> int:
    """The paper's V_QPQ = n + n^2 values per resource."""
    return n + n * n


def mqpq_values(sizes: Sequence[int]) -> int:
    """The paper's V_mQPQ = n + sum n_c^2 + k + n k (k = 1 is plain QPQ: no winner level)."""
    n, k = sum(sizes), len(sizes)
    if k == 1:
        return qpq_values(n)
    return n + sum(s * s for s in sizes) + k + n * k


def direct_values(sizes: Sequence[int]) -> int:
    """Values peer's direct broadcasts carry in a fully cooperative round."""
    n, k = sum(sizes), len(sizes)
    cluster = sum(s * (s - 1) for s in sizes)
    return cluster if k == 1 else cluster + k * (n - 1)


def direct_frames(sizes: Sequence[int]) -> int:
    """Frames (commits and reveals) in a fully cooperative round: twice the values."""
    return 2 * direct_values(sizes)


def optimal_k(n: int) -> float:
    """The k minimising n + n^2/k + k + n k (equal clusters): sqrt(n^2 / (n + 1)) ~ sqrt(n)."""
    return math.sqrt(n * n / (n + 1))


def equal_sizes(n: int, k: int) -> list[int]:
    base, extra = divmod(n, k)
    return [base + (1 if i < extra else 0) for i in range(k)]
