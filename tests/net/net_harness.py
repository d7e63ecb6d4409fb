"""Shared helpers for the link tests: one harness, two transports.

Rules (after trio-websocket's own test suite): memory-transport tests run on
trio's MockClock with autojump, so timeouts cost no real time; TCP tests bind
127.0.0.1 port 0 and are bounded by ``fail_after`` on the real clock; every test
runs inside :func:`open_harness`, which cancels every node and closes every raw
stream on exit, so no socket is left for ``filterwarnings = error`` to catch.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import trio
from trio_websocket import WebSocketConnection, wrap_client_stream

from peer.net.frames import FrameSealer
from peer.net.handshake import DialerHandshake, Session
from peer.net.identity import Identity
from peer.net.link import LinkConfig, run_handshake
from peer.net.linkstate import LinkEvent
from peer.net.websocket import RESOURCE, LinkManager, MemoryHub, Neighbour, TcpTransport, Transport

FAST = LinkConfig(
    heartbeat_interval=0.2, idle_timeout=1.0, send_timeout=1.0, connect_timeout=1.0,
    handshake_timeout=1.0, close_timeout=0.5, backoff_base=0.05, backoff_cap=0.4,
    stable_after=1.0, defer_dial=0.3, abuse_threshold=5, max_frame=4096,
)


def identities(n: int) -> list[Identity]:
    """``n`` fixed identities, sorted by public key (so [0] is the preferred dialer)."""
    ids = [Identity.from_seed(bytes([i + 1]) * 32) for i in range(n)]
    return sorted(ids, key=lambda i: i.public_key)


@dataclass
class Node:
    identity: Identity
    manager: LinkManager
    address: Any
    scope: trio.CancelScope
    stopped: trio.Event

    async def stop(self) -> None:
        self.scope.cancel()
        await self.stopped.wait()

    async def event(self) -> LinkEvent:
        return await self.manager.events.receive()

    def pending_events(self) -> list[LinkEvent]:
        out = []
        while True:
            try:
                out.append(self.manager.events.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return out


@dataclass
class Harness:
    kind: str
    nursery: trio.Nursery
    hub: MemoryHub = field(default_factory=MemoryHub)
    nodes: list[Node] = field(default_factory=list)
    addresses: dict[bytes, Any] = field(default_factory=dict)
    streams: list[trio.abc.Stream] = field(default_factory=list)

    def transport(self, name: str, address: Any = None) -> Transport:
        if self.kind == "memory":
            return self.hub.transport(name)
        return TcpTransport("127.0.0.1", address[1] if address else 0)

    async def start(self, identity: Identity, peers: list[Identity], **config: Any) -> Node:
        """Start a node; addresses are shared with every node that lists it (and vice versa)."""
        transport = self.transport(identity.public_hex, self.addresses.get(identity.public_key))
        manager = LinkManager(
            identity, [Neighbour(p.public_key) for p in peers], transport,
            config=replace(FAST, **config), rng=random.Random(identity.public_key),
        )
        scope, stopped = trio.CancelScope(), trio.Event()

        async def runner(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                with scope:
                    await manager.run(task_status=task_status)
            finally:
                stopped.set()

        address = await self.nursery.start(runner)
        node = Node(identity, manager, address, scope, stopped)
        self.addresses[identity.public_key] = address
        self.nodes = [n for n in self.nodes if n.identity.public_key != identity.public_key] + [node]
        for other in self.nodes:
            for p in peers:
                if p.public_key == other.identity.public_key:
                    manager.set_address(p.public_key, other.address)
            if other is not node and identity.public_key in other.manager._stats:
                other.manager.set_address(identity.public_key, address)
        return node

    async def raw_stream(self, address: Any) -> trio.abc.Stream:
        stream = await self.transport("raw").connect(address)
        self.streams.append(stream)
        return stream

    async def raw_dial(
        self, identity: Identity, target: Node
    ) -> tuple[WebSocketConnection, Session, FrameSealer]:
        """A hand-driven peer: websocket + our handshake, then the test sends what it likes."""
        stream = await self.raw_stream(target.address)
        ws = await wrap_client_stream(self.nursery, stream, "peer", RESOURCE, max_message_size=1 << 20)  # type: ignore[arg-type]
        session = await run_handshake(ws, DialerHandshake(identity, target.identity.public_key))
        return ws, session, FrameSealer(session, identity, max_frame=1 << 20)


@asynccontextmanager
async def open_harness(kind: str, limit: float = 20.0) -> AsyncIterator[Harness]:
    with trio.fail_after(limit):
        async with trio.open_nursery() as nursery:
            harness = Harness(kind, nursery)
            try:
                yield harness
            finally:
                nursery.cancel_scope.cancel()
        for stream in harness.streams:
            await trio.aclose_forcefully(stream)


async def wait_until(predicate: Any, step: float = 0.02) -> None:
    """Poll a condition (bounded by the harness's fail_after)."""
    while not predicate():  # noqa: ASYNC110  (the state has no event; polling is the point)
        await trio.sleep(step)
