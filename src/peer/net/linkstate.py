"""Pure link-management pieces used by the trio side: events, counters, backoff,
and the one-link-per-pair rule.  No I/O here, so each rule is unit-testable.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from peer.net.codec import LinkMessage

# --- events the node shell reads from LinkManager.events ---------------------


@dataclass(frozen=True, slots=True)
class LinkUp:
    """``peer`` (public key hex) went from no link to an authenticated link."""

    peer: str


@dataclass(frozen=True, slots=True)
class Received:
    """A verified message from ``peer``, in the order the peer sent it."""

    peer: str
    msg: LinkMessage


@dataclass(frozen=True, slots=True)
class LinkDown:
    """``peer`` has no link any more; ``reason`` says why (for logs and the TUI)."""

    peer: str
    reason: str


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    """A handshake failed or was refused (rate-limited: see ``repeats``).

    ``neighbour`` is the configured neighbour concerned (the one we dialled, or
    the one an inbound dialer claimed to be), ``None`` if no configured key is
    involved.  ``expected`` is the key we expected the other side to have (the
    pinned key we dialled) or, for an inbound ``misdirected`` failure, the key
    the dialer expected *us* to have.  ``presented`` is the key the other side
    presented (unauthenticated when the handshake failed).  Keys are hex.
    ``kind`` is a stable token (``wrong-key``, ``unknown-key``, ``misdirected``,
    ``refused``, ``bad-signature``, ``garbage``, ``timeout``, ``throttled``,
    ``banned``, ...), ``reason`` a complete sentence for a log line, ``source``
    the address dialled or the inbound source, ``repeats`` how many failures
    with the same (kind, neighbour, expected, presented) were suppressed since
    the last one reported.
    """

    kind: str
    neighbour: str | None
    expected: str | None
    presented: str | None
    reason: str
    inbound: bool
    source: str
    repeats: int = 0


@dataclass(frozen=True, slots=True)
class PeerBanned:
    """``peer`` was banned for repeated abuse; ``LinkManager.unban`` lifts it."""

    peer: str
    reason: str


LinkEvent = LinkUp | Received | LinkDown | HandshakeFailed | PeerBanned


# --- counters ------------------------------------------------------------------


@dataclass(slots=True)
class LinkStats:
    """Counters for one neighbour, kept across its successive links."""

    up: bool = False
    links: int = 0  # links established (handshake done and kept)
    # Link messages (heartbeats included).  Each was once a frame of its own; the name is
    # kept for the readers that count messages by it (qpq's link_frames_out).
    frames_in: int = 0
    frames_out: int = 0
    wire_frames_in: int = 0  # signed websocket frames: one batch carries several messages
    wire_frames_out: int = 0
    bad_frames: Counter[str] = field(default_factory=Counter)  # by FrameErrorKind value
    handshake_failures: int = 0
    dial_failures: int = 0
    duplicates: int = 0  # links closed by the one-link-per-pair rule
    outbox_drops: int = 0  # send_nowait refused because the outbox was full
    abuse_closes: int = 0  # links closed for abuse (the abuse tracker keeps the decaying score)
    refused: int = 0  # handshakes refused while the key was throttled or banned
    last_down: str = ""  # why the last link went down
    last_error: str = ""  # the last failed dial or handshake

    @property
    def reconnects(self) -> int:
        return max(0, self.links - 1)

    def snapshot(self, peer: str, name: str) -> LinkSnapshot:
        return LinkSnapshot(
            peer=peer, name=name, up=self.up, frames_in=self.frames_in, frames_out=self.frames_out,
            bad_frames=sum(self.bad_frames.values()), bad_by_kind=dict(self.bad_frames),
            reconnects=self.reconnects, handshake_failures=self.handshake_failures,
            dial_failures=self.dial_failures, duplicates=self.duplicates,
            outbox_drops=self.outbox_drops, last_down=self.last_down, last_error=self.last_error,
            abuse_closes=self.abuse_closes, refused=self.refused,
            wire_frames_in=self.wire_frames_in, wire_frames_out=self.wire_frames_out,
        )


@dataclass(frozen=True, slots=True)
class LinkSnapshot:
    """An immutable copy of one neighbour's counters, safe to hand to the TUI."""

    peer: str
    name: str
    up: bool
    frames_in: int
    frames_out: int
    bad_frames: int
    bad_by_kind: dict[str, int]
    reconnects: int
    handshake_failures: int
    dial_failures: int
    duplicates: int
    outbox_drops: int
    last_down: str
    last_error: str
    abuse_closes: int = 0
    refused: int = 0
    wire_frames_in: int = 0
    wire_frames_out: int = 0


# --- reconnect backoff ---------------------------------------------------------


class Backoff:
    """Exponential backoff with "equal jitter": delay in [d/2, d], d = min(cap, base * factor**n).

    Half the delay is fixed so a flapping peer never causes a hot loop; half is
    random so nodes that lost the same neighbour do not redial in lockstep.  The
    ``rng`` is injected (seeded) so runs are reproducible.
    """

    def __init__(self, rng: random.Random, *, base: float = 0.25, factor: float = 2.0, cap: float = 30.0) -> None:
        if base <= 0 or factor < 1 or cap < base:
            raise ValueError("need base > 0, factor >= 1, cap >= base")
        self._rng = rng
        self.base, self.factor, self.cap = base, factor, cap
        self.attempt = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * self.factor ** min(self.attempt, 64))
        self.attempt += 1
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempt = 0


# --- one link per neighbour pair -----------------------------------------------


def preferred_dialer(a: bytes, b: bytes) -> bytes:
    """Of two nodes, the one whose dialled link is kept: the lower public key."""
    return min(a, b)


def keep_new_link(me: bytes, peer: bytes, current_dialer: bytes, new_dialer: bytes) -> bool:
    """Decide between an existing link to ``peer`` and a newly authenticated one.

    The new link replaces the current one unless the current one was dialled by
    the preferred side and the new one was not.  Both nodes evaluate the same
    rule on the same facts (who dialled each link is authenticated by the
    handshake), so when both dial at once they keep the same link.  A new link
    in the *same* direction replaces the old one: the old one is most likely
    half-open (the peer restarted or the path died before our heartbeat noticed).
    """
    preferred = preferred_dialer(me, peer)
    return not (current_dialer == preferred and new_dialer != preferred)
