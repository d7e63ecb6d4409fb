"""Data transfer between provider groups (Property 5), and the parallel task plan.

Every provider of the sending group S sends its result to every receiver; a
receiver outputs the value once every member of S sent the *same* value, and ⊥
as soon as it holds two different ones.  With |S| > k at least one sender is
honest, so a coalition of at most k can cause ⊥ but never a different value.

The plan (Sec. 4.2) gives each task to a group of at least k+1 providers:
``groups`` deals the sorted providers into p = floor(m / (k+1)) groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def groups(providers: Sequence[bytes], k: int) -> list[tuple[bytes, ...]]:
    """p = floor(m/(k+1)) groups of consecutive sorted providers, sizes differing by at most one, each > k."""
    ordered = sorted(providers)
    if k < 0 or len(ordered) < k + 1:
        raise ValueError(f"{len(ordered)} providers cannot form a group of k+1 = {k + 1}")
    p = len(ordered) // (k + 1)
    base, extra = divmod(len(ordered), p)
    out, start = [], 0
    for g in range(p):
        size = base + (1 if g < extra else 0)
        out.append(tuple(ordered[start : start + size]))
        start += size
    return out


@dataclass(frozen=True, slots=True)
class TransferFault:
    kind: str  # "two-values-from-one" | "conflict" | "missing"
    culprits: tuple[bytes, ...]
    proved: bool


class Transfer:
    """One receiver's side of one data transfer.  ``on_value`` checks before it stores."""

    def __init__(self, task: str, senders: Sequence[bytes]) -> None:
        if not senders:
            raise ValueError("a transfer needs senders")
        self.task = task
        self.senders = tuple(senders)
        self.values: dict[bytes, bytes] = {}

    def on_value(self, sender: bytes, value: bytes) -> TransferFault | None:
        if sender not in self.senders:
            raise ValueError("not a sender of this task")
        held = self.values.get(sender)
        if held is not None:
            return None if held == value else TransferFault("two-values-from-one", (sender,), True)
        self.values[sender] = value
        return None

    def conflicting(self) -> bool:
        return len(set(self.values.values())) > 1

    def result(self) -> bytes | None:
        """The value once all senders agree on it, else ``None``."""
        if len(self.values) != len(self.senders) or self.conflicting():
            return None
        return next(iter(self.values.values()))

    def wrong(self, correct: bytes) -> tuple[bytes, ...]:
        """The senders whose value differs from ``correct`` (the receiver recomputed it)."""
        return tuple(s for s in self.senders if s in self.values and self.values[s] != correct)

    def missing(self) -> tuple[bytes, ...]:
        return tuple(s for s in self.senders if s not in self.values)
