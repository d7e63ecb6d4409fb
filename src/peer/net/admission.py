"""Admission of unauthenticated connections: a global cap and a per-source cap.

Theory of operation
-------------------
Every inbound connection holds a socket, a trio-websocket reader and buffers
until its handshake ends.  Nothing bounded how many could be pending at once,
so a junk flood held ~10,000 sockets and hundreds of MiB (issue 17.1), and past
``RLIMIT_NOFILE`` it starved the rest of the node of file descriptors (issue
15.3).  :class:`Admission` bounds the pending handshakes globally and per source
address.

When a cap is reached the *newcomer* is admitted and the least promising pending
connection is evicted: the one at the earliest stage (raw socket, then upgraded
websocket, then a Hello naming a configured neighbour), oldest first.  Refusing
the newcomer instead would let an attacker who opens ``cap`` idle sockets lock
honest neighbours out for a whole handshake timeout; evicting the stalest means
a flood only shortens the time a pending connection is given, and an honest
handshake on a live path finishes in milliseconds.

Pure: the trio side cancels the evicted connection's scope; ``now`` is passed in.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

#: File descriptors kept back from the connection cap for the ledger, logs, the
#: listener and the neighbour links themselves.
FD_RESERVE = 64
DEFAULT_MAX_PENDING = 256
DEFAULT_MAX_PENDING_PER_SOURCE = 128


class Stage(IntEnum):
    """How far a pending connection got; lower stages are evicted first."""

    RAW = 0  # accepted socket, no websocket upgrade yet
    UPGRADED = 1  # websocket open, no valid Hello yet
    CLAIMED = 2  # sent a Hello naming a configured neighbour's key


@dataclass(eq=False, slots=True)
class Ticket:
    """One pending connection.  ``evicted`` is set when admission took its place away."""

    source: Any
    admitted_at: float
    serial: int
    stage: Stage = Stage.RAW
    evicted: bool = False
    handle: Any = field(default=None, repr=False)  # the trio side's cancel scope


def pending_cap_for_fd_limit(requested: int, soft_limit: int | None = None) -> int:
    """The global cap, lowered so pending sockets can never use up the fd limit.

    Half of what is left after :data:`FD_RESERVE` goes to pending handshakes,
    leaving room for links, files and the short overlap while an evicted socket closes.
    """
    if soft_limit is None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        soft_limit = soft if soft != resource.RLIM_INFINITY else 1 << 20
    return max(2, min(requested, (soft_limit - FD_RESERVE) // 2))


class Admission:
    """Pending (not yet authenticated) connections, capped globally and per source."""

    def __init__(self, max_pending: int = DEFAULT_MAX_PENDING, max_per_source: int = DEFAULT_MAX_PENDING_PER_SOURCE):
        if max_pending < 1 or max_per_source < 1:
            raise ValueError("admission caps are at least 1")
        self.max_pending = max_pending
        self.max_per_source = min(max_per_source, max_pending)
        self._pending: dict[int, Ticket] = {}
        self._by_source: dict[Any, int] = {}
        self._serial = 0
        self.admitted = 0
        self.evicted = 0
        self.peak = 0

    def __len__(self) -> int:
        return len(self._pending)

    def pending_from(self, source: Any) -> int:
        return self._by_source.get(source, 0)

    def admit(self, source: Any, now: float) -> tuple[Ticket, list[Ticket]]:
        """Admit a new connection from ``source``; return its ticket and the tickets
        evicted to make room (already released: the caller only has to cancel them)."""
        evict: list[Ticket] = []
        if self.pending_from(source) >= self.max_per_source:
            evict.append(self._victim(source))
            self.release(evict[-1])
        if len(self._pending) >= self.max_pending:
            evict.append(self._victim(None))
            self.release(evict[-1])
        for ticket in evict:
            ticket.evicted = True
        self.evicted += len(evict)
        self._serial += 1
        ticket = Ticket(source, now, self._serial)
        self._pending[ticket.serial] = ticket
        self._by_source[source] = self._by_source.get(source, 0) + 1
        self.admitted += 1
        self.peak = max(self.peak, len(self._pending))
        return ticket, evict

    def advance(self, ticket: Ticket, stage: Stage) -> None:
        """Record that ``ticket`` got further (protects it from eviction a little longer)."""
        if ticket.serial in self._pending:
            ticket.stage = max(ticket.stage, stage)

    def release(self, ticket: Ticket) -> None:
        """The connection authenticated or ended: it no longer counts (idempotent)."""
        if self._pending.pop(ticket.serial, None) is None:
            return
        left = self._by_source[ticket.source] - 1
        if left:
            self._by_source[ticket.source] = left
        else:
            del self._by_source[ticket.source]

    def _victim(self, source: Any) -> Ticket:
        candidates = (t for t in self._pending.values() if source is None or t.source == source)
        return min(candidates, key=lambda t: (t.stage, t.serial))
