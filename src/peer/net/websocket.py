"""Links over trio-websocket: transports, the server, the dialers, and the registry.

Theory of operation
-------------------
A :class:`LinkManager` owns every link of one node.  It serves inbound
connections (:meth:`LinkManager.serve_links`) and runs one supervised dialer per
configured neighbour (:meth:`LinkManager.run_dialers`); :meth:`LinkManager.run`
does both.  Each raw byte stream, inbound or outbound, goes through the same
path: websocket upgrade with ``wrap_server_stream``/``wrap_client_stream`` and
our ``max_message_size``, the authenticated handshake, registration, then
:meth:`Link.run` until the link goes down.  Using the ``wrap_*`` functions for
TCP too (rather than ``serve_websocket``/``open_websocket``) means that
the in-memory transport and real sockets run literally the same code, and that one
``move_on_after(handshake_timeout)`` bounds the websocket upgrade *and* our
handshake together (pitfall 12).

One link per neighbour pair: whoever dials, a newly authenticated link goes
through :func:`peer.net.linkstate.keep_new_link`: a link dialled by the lower
public key is kept over one dialled by the higher key, and otherwise the newer
link wins.  The higher key also defers its first dial by ``defer_dial`` so the
duplicate rarely happens at all.  A dialer only dials while it has no link to its
neighbour, whichever side dialled the current one.

The node shell reads :attr:`LinkManager.events` (``LinkUp``, ``Received``,
``LinkDown``) and sends with :meth:`LinkManager.send_nowait`.  Every failure of
one connection is contained in :meth:`LinkManager._run_stream`: the server and
the other links never see it (pitfalls 3, 9, 11).
"""

from __future__ import annotations

import errno
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import trio
import trio.testing
from trio_websocket import wrap_client_stream, wrap_server_stream

from peer.net.codec import LinkMessage
from peer.net.handshake import DialerHandshake, HandshakeError, ListenerHandshake
from peer.net.identity import Identity, short_name
from peer.net.link import LINK_ERRORS, CloseCode, Link, LinkConfig, close_ws, describe, run_handshake
from peer.net.linkstate import (
    Backoff,
    LinkDown,
    LinkEvent,
    LinkSnapshot,
    LinkStats,
    LinkUp,
    Received,
    keep_new_link,
)

log = logging.getLogger(__name__)

RESOURCE = "/peer/v1"
Address = Any  # (host, port) for TCP, a name for the memory hub
StreamHandler = Callable[[trio.abc.Stream], Awaitable[None]]


class Transport(Protocol):
    async def serve(self, handler: StreamHandler, *, task_status: trio.TaskStatus[Address]) -> None: ...
    async def connect(self, address: Address) -> trio.abc.Stream: ...


class TcpTransport:
    """Plain TCP; binds one explicit host (never ``None``: pitfall 14)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port

    async def serve(
        self, handler: StreamHandler, *, task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED
    ) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        host, port = listeners[0].socket.getsockname()[:2]
        await trio.serve_listeners(handler, listeners, task_status=_Started(task_status, (host, port)))

    async def connect(self, address: Address) -> trio.abc.Stream:
        host, port = address
        return await trio.open_tcp_stream(host, port)


class _Started:
    """Adapts a TaskStatus so ``started(x)`` reports a fixed value instead of ``x``."""

    def __init__(self, inner: trio.TaskStatus[Address], value: Address) -> None:
        self._inner, self._value = inner, value

    def started(self, value: object = None) -> None:
        self._inner.started(self._value)


class MemoryConnection:
    """Both directions of one in-memory connection; :meth:`cut` makes it half-open.

    After ``cut()`` nothing more is delivered either way, not even the close:
    the way a dead path looks to TCP until a heartbeat notices.
    """

    def __init__(self) -> None:
        self.is_cut = False
        client_send, server_recv = self._one_way()
        server_send, client_recv = self._one_way()
        self.client: trio.abc.Stream = trio.StapledStream(client_send, client_recv)
        self.server: trio.abc.Stream = trio.StapledStream(server_send, server_recv)

    def cut(self) -> None:
        self.is_cut = True

    def _one_way(self) -> tuple[trio.testing.MemorySendStream, trio.testing.MemoryReceiveStream]:
        send, recv = trio.testing.MemorySendStream(), trio.testing.MemoryReceiveStream()

        def pump() -> None:
            if not self.is_cut:
                trio.testing.memory_stream_pump(send, recv)

        async def async_pump() -> None:
            pump()

        send.send_all_hook, send.close_hook = async_pump, pump
        return send, recv


class MemoryHub:
    """An in-process network of named listeners, for tests and simulations."""

    def __init__(self) -> None:
        self._listeners: dict[str, tuple[trio.Nursery, StreamHandler]] = {}
        self.connections: list[MemoryConnection] = []

    def transport(self, name: str) -> MemoryTransport:
        return MemoryTransport(self, name)


class MemoryTransport:
    def __init__(self, hub: MemoryHub, name: str) -> None:
        self.hub, self.name = hub, name

    async def serve(
        self, handler: StreamHandler, *, task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED
    ) -> None:
        if self.name in self.hub._listeners:
            raise OSError(errno.EADDRINUSE, f"memory address {self.name!r} is in use")
        async with trio.open_nursery() as nursery:
            self.hub._listeners[self.name] = (nursery, handler)
            try:
                task_status.started(self.name)
                await trio.sleep_forever()
            finally:
                del self.hub._listeners[self.name]

    async def connect(self, address: Address) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        entry = self.hub._listeners.get(address)
        if entry is None:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"nothing listens on {address!r}")
        nursery, handler = entry
        conn = MemoryConnection()
        self.hub.connections.append(conn)
        nursery.start_soon(handler, conn.server)
        return conn.client


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A configured neighbour: its pinned public key and, if we dial it, its address."""

    pubkey: bytes
    address: Address = None


class LinkManager:
    """All links of one node (see the module docstring)."""

    def __init__(
        self,
        identity: Identity,
        neighbours: Iterable[Neighbour],
        transport: Transport,
        *,
        config: LinkConfig | None = None,
        rng: random.Random | None = None,
        events_size: int = 256,
    ) -> None:
        self.identity = identity
        self.config = config or LinkConfig()
        self._transport = transport
        self._rng = rng or random.Random()
        self._addresses: dict[bytes, Address] = {}
        self._address_set: dict[bytes, trio.Event] = {}
        self._stats: dict[bytes, LinkStats] = {}
        self._changed: dict[bytes, trio.Event] = {}
        self._links: dict[bytes, Link] = {}
        for nb in neighbours:
            if nb.pubkey == identity.public_key:
                raise ValueError("a node is not its own neighbour")
            self._stats[nb.pubkey], self._changed[nb.pubkey] = LinkStats(), trio.Event()
            self._address_set[nb.pubkey] = trio.Event()
            if nb.address is not None:
                self.set_address(nb.pubkey, nb.address)
        self.unknown_handshake_failures = 0  # inbound connections that never authenticated
        self.address: Address = None
        self._events_send, self.events = trio.open_memory_channel[LinkEvent](events_size)

    # --- the node shell's API ---------------------------------------------------

    def set_address(self, pubkey: bytes, address: Address) -> None:
        """Tell the dialer where ``pubkey`` listens (it waits until it knows)."""
        self._addresses[pubkey] = address
        self._address_set[pubkey].set()

    def send_nowait(self, peer: str | bytes, msg: LinkMessage) -> bool:
        """Queue ``msg`` to ``peer`` (hex or raw key).  False if no link or its outbox is full."""
        link = self._links.get(bytes.fromhex(peer) if isinstance(peer, str) else peer)
        return link.send_nowait(msg) if link is not None else False

    def is_up(self, peer: str | bytes) -> bool:
        return (bytes.fromhex(peer) if isinstance(peer, str) else peer) in self._links

    def link(self, peer: str | bytes) -> Link | None:
        return self._links.get(bytes.fromhex(peer) if isinstance(peer, str) else peer)

    def report_abuse(self, peer: str | bytes, reason: str) -> None:
        """Count application-level misbehaviour (e.g. a forged gossip envelope) against ``peer``'s link."""
        link = self.link(peer)
        if link is not None:
            link.report_abuse(reason)

    def snapshot(self) -> dict[str, LinkSnapshot]:
        return {pk.hex(): st.snapshot(pk.hex(), short_name(pk)) for pk, st in self._stats.items()}

    async def run(self, *, task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve and dial until cancelled; ``events`` is closed when this returns."""
        async with self._events_send:
            async with trio.open_nursery() as nursery:
                self.address = await nursery.start(self.serve_links)
                nursery.start_soon(self.run_dialers)
                task_status.started(self.address)

    async def serve_links(self, *, task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED) -> None:
        """Accept inbound links on the transport's address until cancelled."""
        await self._transport.serve(self._on_inbound, task_status=task_status)

    async def run_dialers(self) -> None:
        """One supervised dialer per neighbour, until cancelled."""
        async with trio.open_nursery() as nursery:
            for pubkey in self._stats:
                nursery.start_soon(self._dialer, pubkey, random.Random(self._rng.getrandbits(64)))

    # --- dialing ------------------------------------------------------------------

    async def _dialer(self, peer: bytes, rng: random.Random) -> None:
        cfg = self.config
        backoff = Backoff(rng, base=cfg.backoff_base, cap=cfg.backoff_cap)
        if self.identity.public_key > peer and cfg.defer_dial > 0:
            await trio.sleep(cfg.defer_dial)
        while True:
            while peer in self._links:  # someone's link is up: nothing to do until it drops
                await self._changed[peer].wait()
            await self._address_set[peer].wait()
            started = trio.current_time()
            if not await self._dial_once(peer, self._addresses[peer]):
                self._stats[peer].dial_failures += 1
            elif trio.current_time() - started >= cfg.stable_after:
                backoff.reset()
            await trio.sleep(backoff.next())

    async def _dial_once(self, peer: bytes, address: Address) -> bool:
        try:
            with trio.fail_after(self.config.connect_timeout):
                stream = await self._transport.connect(address)
        except (OSError, trio.TooSlowError) as exc:
            self._stats[peer].last_error = f"dial {address!r}: {describe(exc)}"
            return False
        return await self._run_stream(stream, peer)

    async def _on_inbound(self, stream: trio.abc.Stream) -> None:
        await self._run_stream(stream, None)

    # --- one connection, start to end -----------------------------------------------

    async def _run_stream(self, stream: trio.abc.Stream, expected: bytes | None) -> bool:
        """Own one raw stream until it is closed.  Never raises except Cancelled.

        Returns True if the handshake succeeded (whether or not the link was kept).
        """
        established = False
        try:
            async with trio.open_nursery() as nursery:  # hosts trio-websocket's reader task
                try:
                    established = await self._run_ws(nursery, stream, expected)
                finally:
                    nursery.cancel_scope.cancel()
        except* LINK_ERRORS as group:
            self._note_error(expected, describe(group))
        except* Exception as group:  # a bug, ours or a library's: contain it to this connection
            log.error("link to %s crashed", expected.hex()[:16] if expected else "?", exc_info=group)
            self._note_error(expected, f"internal error: {describe(group)}")
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
        return established

    async def _run_ws(self, nursery: trio.Nursery, stream: trio.abc.Stream, expected: bytes | None) -> bool:
        cfg = self.config
        opts = {"message_queue_size": cfg.ws_queue_size, "max_message_size": cfg.max_frame}
        machine: DialerHandshake | ListenerHandshake | None = None
        with trio.move_on_after(cfg.handshake_timeout) as deadline:
            if expected is None:
                request = await wrap_server_stream(nursery, stream, **opts)
                ws = await request.accept()
                machine = ListenerHandshake(self.identity, self._stats.keys())
            else:
                ws = await wrap_client_stream(nursery, stream, "peer", RESOURCE, **opts)  # type: ignore[arg-type]
                machine = DialerHandshake(self.identity, expected)
            try:
                session = await run_handshake(ws, machine)
            except HandshakeError as exc:
                self._note_handshake_failure(expected, machine, exc.reason)
                await close_ws(ws, CloseCode.HANDSHAKE_FAILED, exc.reason, cfg.close_timeout)
                return False
        if deadline.cancelled_caught:
            self._note_handshake_failure(expected, machine, "handshake timed out")
            return False

        stats = self._stats[session.peer]
        link = Link(ws, session, self.identity, cfg, stats)
        kept, first = self._register(link)
        if not kept:
            stats.duplicates += 1
            await close_ws(ws, CloseCode.DUPLICATE, "duplicate link: keeping the other one", cfg.close_timeout)
            return True
        try:
            if first:
                await self._events_send.send(LinkUp(link.peer))
            reason = await link.run(self._deliver)
        finally:
            current = self._unregister(link)
        if current:
            # No checkpoint between unregistering and this send, so this LinkDown
            # is queued before the LinkUp of any link that replaces this one.
            stats.last_down = reason
            await self._events_send.send(LinkDown(link.peer, reason))
        await link.aclose()
        return True

    async def _deliver(self, link: Link, msg: LinkMessage) -> None:
        # Blocks when the shell is behind: the backpressure reaches the peer's
        # writer through the websocket queue and TCP, and its send_timeout.
        await self._events_send.send(Received(link.peer, msg))

    # --- the registry ---------------------------------------------------------------

    def _register(self, link: Link) -> tuple[bool, bool]:
        """Install ``link`` unless the one-link-per-pair rule keeps the current one.
        Returns (kept, first): first means the peer had no link before."""
        peer = link.session.peer
        current = self._links.get(peer)
        if current is not None:
            if not keep_new_link(self.identity.public_key, peer, current.session.dialer, link.session.dialer):
                return False, False
            self._stats[peer].duplicates += 1
            current.close("replaced by a newer link", CloseCode.DUPLICATE)
        self._links[peer] = link
        self._stats[peer].up = True
        self._stats[peer].links += 1
        self._signal(peer)
        return True, current is None

    def _unregister(self, link: Link) -> bool:
        peer = link.session.peer
        if self._links.get(peer) is not link:
            return False  # it was replaced; the new link is the peer's link now
        del self._links[peer]
        self._stats[peer].up = False
        self._signal(peer)
        return True

    def _signal(self, peer: bytes) -> None:
        self._changed[peer].set()
        self._changed[peer] = trio.Event()

    def _note_error(self, peer: bytes | None, reason: str) -> None:
        log.info("connection %s: %s", short_name(peer) if peer else "inbound", reason)
        if peer is not None:
            self._stats[peer].last_error = reason

    def _note_handshake_failure(
        self, expected: bytes | None, machine: DialerHandshake | ListenerHandshake | None, reason: str
    ) -> None:
        claimed = expected or (machine.claimed_peer if isinstance(machine, ListenerHandshake) else None)
        log.warning("handshake with %s failed: %s", short_name(claimed) if claimed else "unknown", reason)
        if claimed is not None and claimed in self._stats:
            self._stats[claimed].handshake_failures += 1
            self._stats[claimed].last_error = reason
        else:
            self.unknown_handshake_failures += 1
