"""One authenticated link to one neighbour over a trio-websocket connection.

Theory of operation
-------------------
After :func:`run_handshake` a :class:`Link` runs three tasks in one nursery:

* the **reader** does nothing but ``get_message()`` -> verify the frame ->
  hand the message on.  trio-websocket's own reader stops answering control
  frames while its queue is full (pitfall 1), so ours never stops draining it
  for long;
* the **writer** drains a bounded outbox (a trio memory channel): whatever it
  holds goes out as one signed frame (a batch, up to ``max_frame``), and each
  send must finish within ``send_timeout``.  The node shell only ever calls
  :meth:`Link.send_nowait`, so one slow neighbour can never stall the fan-out
  to the others (pitfalls 1-2, recommendation 4);
* the **heartbeat** sends a signed ``Heartbeat`` frame when no frame has gone
  out for ``heartbeat_interval`` and closes the link when nothing at all has arrived for
  ``idle_timeout``: trio-websocket has no keepalive (pitfall 15).  It is an
  app-level frame rather than a websocket ping, so it also proves the peer's
  *application* is reading, and we never put a Ping on the wire that a closing
  peer would have to answer (pitfall 4, trio-websocket#184).

Any task that ends, for whatever reason, records why and cancels the others;
:meth:`Link.run` then closes the websocket under a shielded
``move_on_after(close_timeout)`` and returns the reason.  Every trio-websocket,
wsproto and trio stream exception is caught here and becomes "link down"
(pitfalls 3, 9, 11): one bad peer never takes the node down.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum

import trio
import wsproto.utilities
from trio_websocket import ConnectionClosed, WebSocketConnection
from trio_websocket import HandshakeError as WsHandshakeError

from peer.net.codec import MAX_BATCH, Heartbeat, LinkMessage, batch_overhead, element_overhead, encode_message
from peer.net.frames import (
    DEFAULT_ABUSE_THRESHOLD,
    DEFAULT_MAX_FRAME,
    HEADER_BYTES,
    AbuseCounter,
    FrameError,
    FrameErrorKind,
    FrameOpener,
    FrameSealer,
    FrameTooLarge,
    ReorderedFrame,
)
from peer.net.handshake import DialerHandshake, HandshakeError, ListenerHandshake, Session
from peer.net.identity import Identity, short_name
from peer.net.linkstate import LinkStats

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Limits and timeouts of every link (seconds, bytes).  Defaults suit a local cluster;
    trio-websocket's own 60 s defaults are far too long for one (pitfall 13)."""

    max_frame: int = DEFAULT_MAX_FRAME  # enforced on receive (websocket + frames) and on send
    outbox_size: int = 256  # frames queued for the writer...
    outbox_bytes: int = 1 << 20  # ...and their bytes: whichever is reached first refuses
    events_bytes: int = 4 << 20  # received message bytes queued for the node shell, all links together
    ws_queue_size: int = 16  # trio-websocket's message_queue_size: small but > 1
    heartbeat_interval: float = 5.0
    idle_timeout: float = 15.0
    send_timeout: float = 10.0
    connect_timeout: float = 5.0  # TCP connect
    handshake_timeout: float = 5.0  # websocket upgrade + our handshake (pitfall 12)
    close_timeout: float = 2.0
    abuse_threshold: int = DEFAULT_ABUSE_THRESHOLD
    backoff_base: float = 0.25
    backoff_cap: float = 30.0
    stable_after: float = 10.0  # a link that lasted this long resets the dial backoff
    defer_dial: float = 1.0  # the higher key waits this long so the lower key's dial usually wins
    # Unauthenticated inbound connections (issue 17.1): global and per-source caps
    # (the global one is lowered further to fit RLIMIT_NOFILE), and how long a
    # refused handshake waits for the peer's close reply.
    max_pending: int = 256
    max_pending_per_source: int = 128  # room for a hub whose many neighbours share one host
    refuse_grace: float = 0.25
    # Abuse that outlives a link (issue 16.2): see peer.net.abuse.
    abuse_half_life: float = 600.0
    abuse_backoff_base: float = 1.0
    abuse_backoff_cap: float = 300.0
    ban_after: float = 8.0
    report_interval: float = 10.0  # rate limit of HandshakeFailed events and warnings per kind and key


class CloseCode(IntEnum):
    """Websocket close codes we send (4000-4999 is the application range)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    TOO_BIG = 1009  # sent by trio-websocket itself on an oversized message
    HANDSHAKE_FAILED = 4001
    DUPLICATE = 4002
    ABUSE = 4003
    IDLE = 4004
    SEND_TIMEOUT = 4005
    OUT_OF_SEQUENCE = 4006  # a replayed or reordered frame: the session cannot continue
    THROTTLED = 4007  # handshake refused: the key is throttled or banned for abuse


#: Everything the transport can throw at us.  Caught at the link boundary, never beyond.
LINK_ERRORS: tuple[type[Exception], ...] = (
    ConnectionClosed,
    WsHandshakeError,
    OSError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.TooSlowError,
    wsproto.utilities.LocalProtocolError,
    wsproto.utilities.RemoteProtocolError,
    HandshakeError,
    FrameError,
)


def describe(exc: BaseException) -> str:
    """A one-line reason for a transport failure (unwrapping exception groups)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    if isinstance(exc, ConnectionClosed):
        reason = exc.reason
        if reason is None:
            return "connection closed"
        return f"connection closed ({reason.code} {reason.name}{': ' + reason.reason if reason.reason else ''})"
    if isinstance(exc, trio.TooSlowError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def close_ws(ws: WebSocketConnection, code: int, reason: str, grace: float) -> None:
    """Close ``ws`` politely within ``grace`` seconds, even from inside a cancelled scope.

    trio-websocket's ``aclose`` closes the stream in a ``finally`` even when the
    close handshake is cut short, so nothing leaks when ``grace`` runs out.
    """
    with trio.move_on_after(grace) as scope:
        scope.shield = True
        try:
            await ws.aclose(code, reason[:120])  # a close reason is at most 123 bytes
        except LINK_ERRORS:
            pass


async def run_handshake(
    ws: WebSocketConnection,
    machine: DialerHandshake | ListenerHandshake,
    progress: Callable[[], None] | None = None,
) -> Session:
    """Drive a handshake machine over ``ws``; the caller bounds it with a timeout.
    ``progress`` is called after each message the machine accepted.

    Raises:
        HandshakeError: the peer failed authentication (or sent garbage);
        ConnectionClosed: the transport went away mid-handshake.
    """
    if isinstance(machine, DialerHandshake):
        await ws.send_message(machine.start())
    while not machine.done:
        data = await ws.get_message()
        reply = machine.receive(data)  # type: ignore[arg-type]  # str is refused inside as garbage
        if progress is not None:
            progress()
        if reply is not None:
            await ws.send_message(reply)
    return machine.session


class Link:
    """A running link: send with :meth:`send_nowait`, received messages go to ``deliver``."""

    def __init__(
        self,
        ws: WebSocketConnection,
        session: Session,
        identity: Identity,
        config: LinkConfig,
        stats: LinkStats | None = None,
    ) -> None:
        self.session = session
        self.peer = session.peer.hex()
        self.name = short_name(session.peer)
        self.config = config
        self.stats = stats if stats is not None else LinkStats()
        self._ws = ws
        self._sealer = FrameSealer(session, identity, max_frame=config.max_frame)
        self._opener = FrameOpener(session, max_frame=config.max_frame)
        self._abuse = AbuseCounter(config.abuse_threshold)
        self._outbox_send, self._outbox_recv = trio.open_memory_channel[bytes](config.outbox_size)
        self.outbox_bytes = 0  # bytes queued for the writer (bounded by config.outbox_bytes)
        self._scope = trio.CancelScope()
        self._close_code = CloseCode.GOING_AWAY
        self._last_rx = trio.current_time()
        self._last_tx = -math.inf  # trio time a frame was last queued (set in _enqueue; read by _heartbeat)
        self.down_reason: str | None = None
        self.abusive = False  # closed for abuse: the manager's AbuseTracker counts it against the key
        self.banned: object = None  # the manager's PeerBanned event if this close got the key banned

    @property
    def close_code(self) -> CloseCode:
        return self._close_code

    @property
    def bad_frames(self) -> int:
        return self._opener.bad_frames

    def send_nowait(self, msg: LinkMessage) -> bool:
        """Queue ``msg`` for the writer.  False if the link is closed or its outbox is full.

        Raises:
            EncodeError, FrameTooLarge: ``msg`` could never be sent (our bug); raised
                here, at the call site, rather than killing the writer later.
        """
        body = encode_message(msg)
        if HEADER_BYTES + len(body) > self.config.max_frame:
            raise FrameTooLarge(f"{type(msg).__name__} needs a {HEADER_BYTES + len(body)}-byte frame")
        return self._enqueue(body, count_drop=True)

    def _enqueue(self, body: bytes, *, count_drop: bool) -> bool:
        if self.outbox_bytes + len(body) > self.config.outbox_bytes:
            self.stats.outbox_drops += count_drop
            return False
        try:
            self._outbox_send.send_nowait(body)
        except trio.WouldBlock:
            self.stats.outbox_drops += count_drop
            return False
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        self.outbox_bytes += len(body)
        self._last_tx = trio.current_time()
        return True

    def report_abuse(self, reason: str) -> None:
        """Count misbehaviour found above the frame layer (e.g. a gossip envelope
        with a bad origin signature) against this link; close it at the threshold."""
        self.stats.bad_frames["app"] += 1
        if self._abuse.record():
            self._close_for_abuse(f"abuse: {self._abuse.count} bad frames (last: {reason})")

    def _close_for_abuse(self, reason: str) -> None:
        if self.down_reason is None:
            self.abusive = True
        self.close(reason, CloseCode.ABUSE)

    def close(self, reason: str, code: int = CloseCode.NORMAL) -> None:
        """Ask the link to go down (idempotent; the first reason wins)."""
        if self.down_reason is None:
            self.down_reason = reason
            self._close_code = CloseCode(code)
        self._scope.cancel()

    async def run(self, deliver: Callable[[Link, LinkMessage, int], Awaitable[None]]) -> str:
        """Run until the link goes down and return why; then call :meth:`aclose`.

        The polite close is left to the caller so it can first update its
        registry and report the link down: the close can take ``close_timeout``
        when the peer is stuck (e.g. its message queue is full: pitfall 1), and
        a dead link must not look up meanwhile.  If cancelled from outside
        (node shutdown), the link closes itself before the cancellation propagates.
        """
        self._last_rx = trio.current_time()  # the idle clock starts when we start reading
        try:
            try:
                with self._scope:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._reader, deliver)
                        nursery.start_soon(self._writer)
                        nursery.start_soon(self._heartbeat)
            except* LINK_ERRORS as group:  # a task let one through: still only "link down"
                self.close(describe(group))
        except BaseException:
            self.close("shut down", CloseCode.GOING_AWAY)
            await self.aclose()
            raise
        if self.down_reason is None:  # pragma: no cover - every task records why it ends
            self.down_reason = "stopped"
        return self.down_reason

    async def aclose(self) -> None:
        """Close the websocket with the recorded code and reason (bounded by ``close_timeout``)."""
        self._outbox_send.close()
        reason = self.down_reason or "closed"
        await close_ws(self._ws, self._close_code, reason, self.config.close_timeout)

    async def _reader(self, deliver: Callable[[Link, LinkMessage, int], Awaitable[None]]) -> None:
        while True:
            try:
                data = await self._ws.get_message()
            except ConnectionClosed as exc:
                if exc.reason is not None and exc.reason.code == CloseCode.TOO_BIG:
                    # trio-websocket refused an oversized message and closed the link itself.
                    self.stats.bad_frames[FrameErrorKind.OVERSIZED.value] += 1
                    self.abusive = self.down_reason is None
                self.close(describe(exc))
                return
            try:
                msgs = self._opener.open_all(data)
            except FrameError as exc:
                self.stats.bad_frames[exc.kind.value] += 1
                log.warning("link %s: %s", self.name, exc)
                if isinstance(exc, ReorderedFrame) and exc.genuine:
                    # The peer really sent this frame, so the ones before it are lost, and the
                    # opener (exactly last + 1) would refuse every later frame too: the link was
                    # deaf until the idle timeout and the refused messages never re-sent (issue
                    # 17.5).  Close at once; the redial and anti-entropy recover.  Not abuse of
                    # the key: an attacker on the path can cause it.
                    self.close(f"out of sequence: {exc}", CloseCode.OUT_OF_SEQUENCE)
                    return
                if self._abuse.record():
                    self._close_for_abuse(f"abuse: {self._abuse.count} bad frames (last: {exc})")
                    return
                continue
            self._last_rx = trio.current_time()
            self.stats.wire_frames_in += 1
            self.stats.frames_in += len(msgs)
            for msg, size in msgs:
                if not isinstance(msg, Heartbeat):
                    await deliver(self, msg, size)

    def _take_batch(self, first: bytes) -> tuple[list[bytes], bytes | None]:
        """``first`` and every body already queued behind it that still fits in one frame.

        Returns the bodies and the one taken that did not fit (it starts the next frame).
        """
        bodies, room = [first], self.config.max_frame - HEADER_BYTES
        used = batch_overhead(MAX_BATCH) + element_overhead(len(first)) + len(first)
        while len(bodies) < MAX_BATCH:
            try:
                body = self._outbox_recv.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            self.outbox_bytes -= len(body)
            used += element_overhead(len(body)) + len(body)
            if used > room:
                return bodies, body
            bodies.append(body)
        return bodies, None

    async def _writer(self) -> None:
        """Send what the outbox holds, as few signed frames as fit: one frame costs one
        signature and one websocket message, however many messages it carries.

        The send timeout is one cancel scope for the writer's whole life, armed around each
        send (its deadline set, then cleared): cheaper than a ``fail_after`` per frame, and
        the same rule, since the scope never has a deadline while the writer waits for work.
        """
        with trio.CancelScope() as timer:
            await self._write(timer)
        if timer.cancelled_caught:
            self.close("send timed out: the peer is not reading", CloseCode.SEND_TIMEOUT)

    async def _write(self, timer: trio.CancelScope) -> None:
        carry: bytes | None = None
        timeout = self.config.send_timeout
        while True:
            if carry is None:
                try:
                    carry = await self._outbox_recv.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return
                self.outbox_bytes -= len(carry)
            bodies, carry = self._take_batch(carry)
            frame = self._sealer.seal_bodies(bodies)
            timer.deadline = trio.current_time() + timeout
            try:
                await self._ws.send_message(frame)
            except ConnectionClosed as exc:
                self.close(describe(exc))
                return
            timer.deadline = math.inf
            self.stats.wire_frames_out += 1
            self.stats.frames_out += len(bodies)

    async def _heartbeat(self) -> None:
        interval, idle = self.config.heartbeat_interval, self.config.idle_timeout

        def beat_after(t: float) -> float:
            # Beats fall on multiples of the interval (trio time), so every link of a node beats in
            # the same wake-up, not one each: at 1,000 nodes on two cores the wake-ups of idle links
            # were much of the machine.
            at = (math.floor(t / interval) + 1) * interval
            return at if at > t else at + interval

        # A frame went out within the interval: the peer's idle timer was fed as a beat would (busy
        # links send none).  Skipped only while the gap it leaves (under two intervals) fits the
        # peer's idle timeout.
        may_skip = 2 * interval < idle
        next_beat, n, beat_at = beat_after(trio.current_time()), 0, -math.inf
        while True:
            await trio.sleep_until(min(next_beat, self._last_rx + idle))
            now = trio.current_time()
            if now >= self._last_rx + idle:
                self.close(f"idle timeout: nothing received for {idle:g} s", CloseCode.IDLE)
                return
            if now >= next_beat:
                next_beat = beat_after(now)
                if may_skip and self._last_tx != beat_at and self._last_tx + interval > now:
                    continue  # (our own last beat does not count: it is a whole interval old)
                n += 1
                # If the outbox is full, data frames are queued: they keep the peer's idle timer fed.
                self._enqueue(encode_message(Heartbeat(n=n)), count_drop=False)
                beat_at = self._last_tx
