"""Per-slot ring buffers of past declarations: what the goodness-of-fit test looks at.

A slot is a cluster member at the cluster level and a cluster at the winner
level (the paper's "each cluster behaves as one player of a supercluster"),
so a node keeps n_c + k windows instead of QPQ's n: the memory saving of the
paper's Sec. V-B.  Stored values are the *declared* ones, not their
replacements: a cheater's window keeps showing its own distribution, so one
lucky replacement does not wash its history clean.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


class HistoryStore:
    """Fixed-width windows, one row per slot, in the slots' canonical order."""

    def __init__(self, slots: Sequence[str], window: int) -> None:
        self.slots = tuple(slots)
        self.index = {slot: i for i, slot in enumerate(self.slots)}
        if len(self.index) != len(self.slots):
            raise ValueError("duplicate slot")
        self.window = window
        self.buf = np.zeros((len(self.slots), window), dtype=np.uint32)
        self.count = np.zeros(len(self.slots), dtype=np.int64)

    def rows(self, slots: Sequence[str]) -> np.ndarray:
        return np.fromiter((self.index[s] for s in slots), dtype=np.intp, count=len(slots))

    def append(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Record one declaration for each of ``rows`` (distinct rows)."""
        if len(rows) == 0:
            return
        pos = self.count[rows] % self.window
        self.buf[rows, pos] = values
        self.count[rows] += 1

    def window_of(self, slot: str) -> list[int]:
        """The held values of ``slot``, oldest first (for views and tests)."""
        i = self.index[slot]
        held = int(min(self.count[i], self.window))
        if self.count[i] <= self.window:
            return [int(v) for v in self.buf[i, :held]]
        start = int(self.count[i] % self.window)
        return [int(v) for v in np.roll(self.buf[i], -start)]

    def digest(self) -> str:
        """Hash of every window in canonical order: equal digests mean equal histories."""
        h = hashlib.sha256()
        for i, slot in enumerate(self.slots):
            h.update(slot.encode() + b"\x00")
            h.update(np.asarray(self.window_of(slot), dtype=">u4").tobytes())
            h.update(int(self.count[i]).to_bytes(8, "big"))
        return h.hexdigest()
