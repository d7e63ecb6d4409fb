"""Issue 17.2: the link layer's queues are bounded in bytes, not only in messages."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from peer.net.codec import GossipEnvelope
from peer.net.events import EventChannel
from peer.net.handshake import Role, Session
from peer.net.link import Link, LinkConfig
from peer.net.linkstate import LinkUp, Received
from tests.net.net_harness import identities, open_harness


def _envelope(size: int) -> GossipEnvelope:
    return GossipEnvelope(origin=b"o" * 32, seq=1, expires_ms=5, topic="t", payload=b"p" * size, sig=b"s" * 64)


async def test_the_link_outbox_is_bounded_in_bytes() -> None:
    """256 frames of 60 KiB used to fit (15 MiB per link); now the byte budget refuses first."""
    a, b = identities(2)
    session = Session(session_id=b"s" * 32, role=Role.DIALER, local=a.public_key, peer=b.public_key)
    link = Link(ws=None, session=session, identity=a,  # type: ignore[arg-type]
                config=LinkConfig(outbox_size=256, outbox_bytes=256 * 1024))
    accepted = 0
    while link.send_nowait(_envelope(60 * 1024)):
        accepted += 1
    assert accepted == 4 and link.outbox_bytes <= 256 * 1024 and link.stats.outbox_drops == 1


async def test_the_event_queue_waits_for_bytes_and_frees_them_on_receive() -> None:
    events: EventChannel[object] = EventChannel(100, max_bytes=1000)
    await events.put("big", 600)
    put_done = trio.Event()

    async def second() -> None:
        await events.put("bigger", 600)
        put_done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(second)
        await trio.testing.wait_all_tasks_blocked()
        assert not put_done.is_set() and events.bytes == 600  # over the byte budget: it waits
        assert events.put_nowait("control")  # control events take no byte budget
        assert await events.receive() == "big"
        await put_done.wait()
    assert events.bytes == 600
    assert events.receive_nowait() == "control" and await events.receive() == "bigger"
    assert events.bytes == 0
    events.close_sender()
    with pytest.raises(trio.EndOfChannel):
        await events.receive()


async def test_a_node_that_stops_reading_holds_a_bounded_number_of_bytes(kind: str, clock: object) -> None:
    """The reader stops when the shell is behind in bytes, so the backlog stays with the sender."""
    async with open_harness(kind) as net:
        a, b = identities(2)
        na = await net.start(a, [b], events_bytes=8 * 1024, max_frame=64 * 1024, idle_timeout=30.0)
        ws, _, sealer = await net.raw_dial(b, na)
        assert await na.event() == LinkUp(b.public_hex)
        for _ in range(10):
            with trio.move_on_after(0.5):  # TCP pushes back once the node stops reading
                await ws.send_message(sealer.seal(_envelope(3000)))
        await trio.sleep(0.5)
        assert na.manager.events.bytes <= 8 * 1024 + 4000  # one message may exceed the budget
        got = 0
        while got < 10:
            event = await na.event()
            got += isinstance(event, Received)
        assert na.manager.events.bytes == 0
