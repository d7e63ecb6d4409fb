"""The per-neighbour backlog a node keeps while a link is down or full: bounded in
bytes, with priorities, flushed fairly.

Theory of operation
-------------------
``Node._backlog`` was a deque per neighbour capped at 4,096 *messages*: 60 KiB
envelopes made that 240 MiB per neighbour, and when it was full the node
dropped whatever came next, its own auction's ``Settled`` or announcement
included, because junk gossip had filled it (issues 17.2, 17.3).

:class:`Outbox` holds, per neighbour, two FIFO queues:

* ``Priority.PROTOCOL``: messages of an auction or stream this node takes part
  in (its own announcements included).  Never dropped to make room for relay
  traffic; refused only when protocol messages alone fill the budget.
* ``Priority.RELAY``: foreign gossip this node forwards.  Dropped first, oldest
  first, whenever anything needs the room.

Both a global byte budget and a per-neighbour one apply, so one dead neighbour
cannot take the whole budget from the others.  :meth:`Outbox.flush` serves the
neighbours round-robin, one message each per turn, protocol before relay, and
skips a neighbour for the rest of the flush as soon as its link refuses: a busy
or dead link cannot starve the others, and a ``budget`` bounds the work of one call.

Order: messages of one class to one neighbour keep their order; a protocol
message may overtake queued relay messages (they are unordered with respect to
each other: gossip is flooded and deduplicated).  :meth:`Outbox.send` is the
call to use for every message: it sends at once when nothing of its class (or
higher) is queued for that neighbour, and queues otherwise.

Pure: no trio, no clock; ``send_nowait`` is injected.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import IntEnum
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
M = TypeVar("M")

DEFAULT_MAX_BYTES = 32 << 20
DEFAULT_MAX_BYTES_PER_NEIGHBOUR = 8 << 20


class Priority(IntEnum):
    PROTOCOL = 0  # this node's own auction/stream traffic: never dropped for relay
    RELAY = 1  # forwarded foreign gossip: dropped first, oldest first


@dataclass(slots=True)
class _Item(Generic[M]):
    msg: M
    size: int
    serial: int  # global push order: "oldest relay" across neighbours


class Outbox(Generic[K, M]):
    """Per-neighbour queues bounded in bytes (see the module docstring)."""

    def __init__(
        self, max_bytes: int = DEFAULT_MAX_BYTES, max_bytes_per_neighbour: int = DEFAULT_MAX_BYTES_PER_NEIGHBOUR
    ) -> None:
        if max_bytes < 1 or max_bytes_per_neighbour < 1:
            raise ValueError("outbox budgets are at least one byte")
        self.max_bytes = max_bytes
        self.max_bytes_per_neighbour = min(max_bytes_per_neighbour, max_bytes)
        self._queues: dict[K, tuple[deque[_Item[M]], deque[_Item[M]]]] = {}
        self._bytes: Counter[K] = Counter()
        self._relay_bytes: Counter[K] = Counter()
        self.bytes = 0
        self.relay_bytes = 0
        self._serial = 0
        self._turn: list[K] = []  # round-robin order of neighbours
        self._next = 0
        self.sent = 0
        self.dropped: Counter[Priority] = Counter()  # queued relay messages evicted for room
        self.refused: Counter[Priority] = Counter()  # pushes that did not fit even after evicting relay

    # --- queries --------------------------------------------------------------------

    def pending(self, to: K | None = None, priority: Priority | None = None) -> int:
        """Messages queued (for one neighbour and/or one class, or all)."""
        queues = [self._queues[to]] if to is not None and to in self._queues else (
            [] if to is not None else list(self._queues.values()))
        classes = [priority] if priority is not None else list(Priority)
        return sum(len(q[p]) for q in queues for p in classes)

    def pending_bytes(self, to: K | None = None) -> int:
        return self.bytes if to is None else self._bytes[to]

    # --- the node's calls ---------------------------------------------------------------

    def send(self, to: K, msg: M, size: int, priority: Priority, send_nowait: Callable[[K, M], bool]) -> bool:
        """Send ``msg`` now if nothing of its class or higher is queued for ``to`` and the
        link takes it; otherwise queue it.  False only if it was refused (not sent, not queued)."""
        if not any(self.pending(to, p) for p in Priority if p <= priority) and send_nowait(to, msg):
            self.sent += 1
            return True
        return self.push(to, msg, size, priority)

    def push(self, to: K, msg: M, size: int, priority: Priority) -> bool:
        """Queue ``msg`` (``size`` bytes on the wire) for ``to``.  Makes room by dropping
        relay messages, oldest first; False (counted in ``refused``) if it cannot fit."""
        if size < 0:
            raise ValueError("a message size is not negative")
        if not self._make_room(to, size, priority):
            self.refused[priority] += 1
            return False
        if to not in self._queues:
            self._queues[to] = (deque(), deque())
            self._turn.append(to)
        self._serial += 1
        self._queues[to][priority].append(_Item(msg, size, self._serial))
        self._bytes[to] += size
        self.bytes += size
        if priority is Priority.RELAY:
            self._relay_bytes[to] += size
            self.relay_bytes += size
        return True

    def flush(self, send_nowait: Callable[[K, M], bool], budget: int | None = None) -> int:
        """Send what the links take: round-robin over neighbours, one message per turn,
        protocol first; a neighbour whose link refuses is skipped until the next flush.
        Returns how many were sent (at most ``budget``)."""
        blocked: set[K] = set()
        sent = 0
        while (budget is None or sent < budget) and self._turn:
            progressed = False
            for _ in range(len(self._turn)):
                if budget is not None and sent >= budget:
                    break
                self._next %= len(self._turn)
                to = self._turn[self._next]
                self._next += 1
                if to in blocked:
                    continue
                queue = next((q for q in self._queues[to] if q), None)
                if queue is None:
                    continue
                if not send_nowait(to, queue[0].msg):
                    blocked.add(to)
                    continue
                self._take(to, queue)
                sent += 1
                progressed = True
            if not progressed:
                break
        self.sent += sent
        self._forget_empty()
        return sent

    def discard(self, to: K) -> int:
        """Drop everything queued for ``to`` (a neighbour removed from the config)."""
        queues = self._queues.pop(to, None)
        if queues is None:
            return 0
        n = sum(len(q) for q in queues)
        self.bytes -= self._bytes.pop(to, 0)
        self.relay_bytes -= self._relay_bytes.pop(to, 0)
        i = self._turn.index(to)
        self._turn.pop(i)
        if i < self._next:
            self._next -= 1
        return n

    # --- internals ------------------------------------------------------------------------

    def _take(self, to: K, queue: deque[_Item[M]]) -> _Item[M]:
        item = queue.popleft()
        self._bytes[to] -= item.size
        self.bytes -= item.size
        if queue is self._queues[to][Priority.RELAY]:
            self._relay_bytes[to] -= item.size
            self.relay_bytes -= item.size
        return item

    def _make_room(self, to: K, size: int, priority: Priority) -> bool:
        """Evict relay messages until ``size`` more bytes fit for ``to``; False if they cannot.
        Nothing is evicted unless the room can actually be made."""
        if size > self.max_bytes_per_neighbour:
            return False
        own_protocol = self._bytes[to] - self._relay_bytes[to]
        if own_protocol + size > self.max_bytes_per_neighbour or self.bytes - self.relay_bytes + size > self.max_bytes:
            return False
        while self._bytes[to] + size > self.max_bytes_per_neighbour:
            self._drop(to, self._queues[to][Priority.RELAY])
        while self.bytes + size > self.max_bytes:
            oldest = min((k for k, q in self._queues.items() if q[Priority.RELAY]),
                         key=lambda k: self._queues[k][Priority.RELAY][0].serial)
            self._drop(oldest, self._queues[oldest][Priority.RELAY])
        return True

    def _drop(self, to: K, relay: deque[_Item[M]]) -> None:
        self._take(to, relay)
        self.dropped[Priority.RELAY] += 1

    def _forget_empty(self) -> None:
        empty = [k for k, q in self._queues.items() if not q[0] and not q[1]]
        for k in empty:
            del self._queues[k]
            del self._bytes[k]
            self._relay_bytes.pop(k, None)
            i = self._turn.index(k)
            self._turn.pop(i)
            if i < self._next:
                self._next -= 1
