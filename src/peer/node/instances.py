"""The instances a node hosts, keyed by id, with the bounds that keep one neighbour from filling them.

An *instance* is one run of one mechanism: an SRA auction (keyed by its
auction id), a QPQ stream.  Each has its own sans-I/O machine behind the small
interface below; the node routes each message to its instance by id and waits
for the earliest deadline of all of them.  A finished instance leaves the
table (its ledger entries stay on disk), and the ids of recently finished ones
are remembered, bounded, so that their stragglers (an echoed Settled, a late
reply) are dropped quietly instead of counted against an honest sender.

Admission is bounded three ways (issue #15.6, Invite pre-emption): in total,
per neighbour that opened the instance here (the inviter), and per owner (the
seller).  Past any bound the node refuses the new instance; the refusal is not
the sender's fault, so it costs it no abuse point.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol


class Instance(Protocol):
    """What the node needs of one hosted instance."""

    @property
    def key(self) -> str: ...  # the id messages are routed by

    @property
    def owner(self) -> str: ...  # who started it (the seller's key)

    origin: str | None  # the neighbour whose message opened it here; None if started locally
    finished: bool

    def receive(self, sender: str, msg: Any, now: float) -> list[Any]: ...

    def on_timer(self, now: float) -> list[Any]: ...

    def next_deadline(self) -> float | None: ...


@dataclass(frozen=True)
class Limits:
    """Bounds on instances in flight (see the module docstring)."""

    total: int = 64
    per_neighbour: int = 32
    per_owner: int = 8

    def __post_init__(self) -> None:
        for name in ("total", "per_neighbour", "per_owner"):
            if getattr(self, name) < 1:
                raise ValueError(f"limit {name} must be at least 1")


class InstanceTable:
    """Live instances by key, plus a bounded memory of finished keys."""

    def __init__(self, limits: Limits | None = None, *, remember: int = 4096) -> None:
        self.limits = limits or Limits()
        self._live: dict[str, Instance] = {}
        self._finished: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._remember = remember

    def __len__(self) -> int:
        return len(self._live)

    def __iter__(self) -> Iterator[Instance]:
        return iter(list(self._live.values()))

    def get(self, key: str) -> Instance | None:
        return self._live.get(key)

    def is_finished(self, key: str) -> bool:
        return key in self._finished

    def finished_reason(self, key: str) -> str | None:
        return self._finished.get(key)

    def refusal(self, *, origin: str | None, owner: str) -> str | None:
        """Why a new instance opened by ``origin`` for ``owner`` may not start now, or None."""
        if len(self._live) >= self.limits.total:
            return f"{len(self._live)} auctions in flight, the limit is {self.limits.total}"
        if origin is not None:
            by_origin = sum(1 for i in self._live.values() if i.origin == origin)
            if by_origin >= self.limits.per_neighbour:
                return f"{by_origin} auctions in flight opened by this neighbour, the limit is " \
                       f"{self.limits.per_neighbour}"
        by_owner = sum(1 for i in self._live.values() if i.owner == owner)
        if by_owner >= self.limits.per_owner:
            return f"{by_owner} auctions in flight of this seller, the limit is {self.limits.per_owner}"
        return None

    def add(self, instance: Instance) -> None:
        if instance.key in self._live:
            raise KeyError(f"instance {instance.key!r} already exists")
        self._live[instance.key] = instance

    def finish(self, key: str, reason: str) -> None:
        """``key`` is over: forget its instance, remember that it was."""
        self._live.pop(key, None)
        self.mark_finished(key, reason)

    def mark_finished(self, key: str, reason: str) -> None:
        self._finished[key] = reason
        self._finished.move_to_end(key)
        while len(self._finished) > self._remember:
            self._finished.popitem(last=False)

    def next_deadline(self) -> float | None:
        times = [t for t in (i.next_deadline() for i in self._live.values()) if t is not None]
        return min(times) if times else None
