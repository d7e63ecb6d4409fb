"""Byte-stream transports for links: plain TCP and an in-process memory hub.

A transport only serves and connects raw byte streams; everything above (the
websocket upgrade, the handshake, frames) is the same for every transport, so
tests over memory streams run the code real sockets run.  Also here:
:class:`WatchedStream`, which notices the moment a peer hangs up or the
websocket library gives up on it, and :func:`source_of`, a stream's source
address for per-source admission caps.
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

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

    def _one_way(self) -> tuple[Any, Any]:
        # Imported here: trio.testing imports pytest when it is installed, which cost every
        # real node ~0.3 s at start-up and the memory of a test framework it never uses.
        import trio.testing

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


class WatchedStream(trio.abc.Stream):
    """A stream that sets :attr:`ended` when the peer hangs up or the stream is closed.

    trio-websocket's server side waits for the HTTP upgrade with no way to learn
    that its reader gave up (EOF, or garbage that made it close the stream): the
    wait lasts until our handshake timeout.  A flood of connections that send
    junk and hang up was therefore held for the whole timeout (issue 17.1).  The
    link shell watches :attr:`ended` and drops such a connection at once.
    """

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.ended = trio.Event()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self.inner.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.ended.set()
            raise

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        try:
            data = await self.inner.receive_some(max_bytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.ended.set()
            raise
        if not data:
            self.ended.set()
        return data

    async def send_eof(self) -> None:  # pragma: no cover - trio-websocket never half-closes
        await self.inner.send_eof()  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        self.ended.set()
        await self.inner.aclose()


def source_of(stream: trio.abc.Stream) -> Any:
    """The source host of an inbound stream (its IP for TCP), for per-source caps."""
    sock = getattr(stream, "socket", None)
    if sock is not None:
        try:
            return sock.getpeername()[0]
        except (OSError, IndexError):
            return "?"
    return "memory"
