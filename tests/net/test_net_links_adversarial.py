"""Links against misbehaving peers, over memory and over 127.0.0.1 (see net_harness for the rules)."""

from __future__ import annotations

import pytest
import trio
from trio_websocket import ConnectionClosed, wrap_client_stream

from peer.net.handshake import Role, Session
from peer.net.link import CloseCode, Link, LinkConfig
from peer.net.linkstate import HandshakeFailed, LinkDown, LinkUp, Received
from peer.net.websocket import RESOURCE
from peer.sra.messages import Bid
from tests.net.net_harness import FAST, identities, open_harness, wait_until


async def _close_code(ws: object) -> int:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.get_message()  # type: ignore[attr-defined]
    assert info.value.reason is not None
    return info.value.reason.code


async def test_bad_frames_are_counted_and_the_abuser_is_cut_off(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, m = identities(2)
        na = await net.start(a, [m])
        ws, _, sealer = await net.raw_dial(m, na)
        assert await na.event() == LinkUp(m.public_hex)
        good = sealer.seal(Bid(auction="x", amount=1))
        await ws.send_message(good)
        assert await na.event() == Received(m.public_hex, Bid(auction="x", amount=1))
        await ws.send_message((2).to_bytes(8, "big") + bytes(64) + b"\x80")  # forged signature at seq 2
        await ws.send_message((2).to_bytes(8, "big") + bytes(64) + b"\x81")  # forged again
        await ws.send_message("a text frame")  # garbage
        await ws.send_message(b"tiny")  # garbage
        await ws.send_message(b"short")  # garbage: the 5th bad frame reaches the threshold
        down = await na.event()
        assert isinstance(down, LinkDown) and down.reason.startswith("abuse: 5 bad frames")
        snap = na.manager.snapshot()[m.public_hex]
        assert snap.bad_by_kind == {"forged": 2, "garbage": 3}
        assert snap.frames_in >= 1 and not snap.up and snap.abuse_closes == 1
        assert await _close_code(ws) == CloseCode.ABUSE


async def test_a_frame_lost_on_the_path_closes_the_link_at_once(kind: str, clock: object) -> None:
    """Issue 17.5: one frame lost or reordered on the path used to deafen the link until
    the idle timeout (every later frame was refused as reordered too).  A genuine frame
    that skips ahead now closes the link at once, so the redial recovers."""
    async with open_harness(kind) as net:
        a, m = identities(2)
        na = await net.start(a, [m], idle_timeout=10.0)
        ws, _, sealer = await net.raw_dial(m, na)
        assert await na.event() == LinkUp(m.public_hex)
        await ws.send_message(sealer.seal(Bid(auction="x", amount=1)))
        assert await na.event() == Received(m.public_hex, Bid(auction="x", amount=1))
        sent = trio.current_time()
        sealer.seal(Bid(auction="x", amount=2))  # seq 2 is lost on the path...
        await ws.send_message(sealer.seal(Bid(auction="x", amount=3)))  # ...so seq 3 arrives out of order
        down = await na.event()
        assert isinstance(down, LinkDown) and down.reason.startswith("out of sequence: reordered frame")
        assert trio.current_time() - sent < 1.0  # not the 10 s idle timeout
        assert await _close_code(ws) == CloseCode.OUT_OF_SEQUENCE
        snap = na.manager.snapshot()[m.public_hex]
        assert snap.bad_by_kind == {"reordered": 1} and snap.abuse_closes == 0  # the path, not the key, is blamed
        assert na.manager.abuse.refusal(m.public_key, trio.current_time()) is None


async def test_injected_replays_and_skips_do_not_deafen_the_link(kind: str, clock: object) -> None:
    """A replay, or a skip-ahead frame the peer never signed, is refused and counted, and
    the peer's next genuine frame still gets through (nothing was lost)."""
    async with open_harness(kind) as net:
        a, m = identities(2)
        na = await net.start(a, [m], idle_timeout=10.0)
        ws, _, sealer = await net.raw_dial(m, na)
        assert await na.event() == LinkUp(m.public_hex)
        first = sealer.seal(Bid(auction="x", amount=1))
        await ws.send_message(first)
        assert await na.event() == Received(m.public_hex, Bid(auction="x", amount=1))
        await ws.send_message(first)  # replayed
        await ws.send_message((5).to_bytes(8, "big") + first[8:])  # skips ahead, signed for seq 1 only
        await ws.send_message(sealer.seal(Bid(auction="x", amount=2)))
        assert await na.event() == Received(m.public_hex, Bid(auction="x", amount=2))
        assert na.manager.snapshot()[m.public_hex].bad_by_kind == {"replayed": 1, "reordered": 1}
        assert na.manager.is_up(m.public_key)


async def test_an_oversized_frame_closes_the_link(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, m = identities(2)
        na = await net.start(a, [m])
        ws, _, sealer = await net.raw_dial(m, na)
        assert await na.event() == LinkUp(m.public_hex)
        await ws.send_message(sealer.seal_body(b"\x00" * FAST.max_frame))  # header + body > max_frame
        down = await na.event()
        assert isinstance(down, LinkDown) and "1009" in down.reason
        assert na.manager.snapshot()[m.public_hex].bad_by_kind == {"oversized": 1}
        assert await _close_code(ws) == CloseCode.TOO_BIG
        # An honest peer checks the size before sending: this close counts against the key.
        await wait_until(lambda: na.manager.snapshot()[m.public_hex].abuse_closes == 1)
        assert na.manager.abuse.refusal(m.public_key, trio.current_time()) is not None


async def test_a_connection_that_never_upgrades_is_dropped(kind: str, clock: object) -> None:
    """Slow loris: the handshake timeout covers the websocket upgrade too (pitfall 12)."""
    async with open_harness(kind) as net:
        a, b = identities(2)
        na = await net.start(a, [b])
        stream = await net.raw_stream(na.address)
        start = trio.current_time()
        while await stream.receive_some(1024):  # the server sends nothing, then EOF
            pass
        assert trio.current_time() - start >= FAST.handshake_timeout - 0.05
        await wait_until(lambda: na.manager.unknown_handshake_failures == 1)


async def test_garbage_during_the_handshake_is_refused(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, b = identities(2)
        na = await net.start(a, [b])
        ws = await wrap_client_stream(net.nursery, await net.raw_stream(na.address), "peer", RESOURCE)  # type: ignore[arg-type]
        await ws.send_message(b"\x93\x01\x02\x03 definitely not a Hello")
        assert await _close_code(ws) == CloseCode.HANDSHAKE_FAILED
        assert na.manager.unknown_handshake_failures == 1
        [event] = na.pending_events()
        assert isinstance(event, HandshakeFailed) and event.kind == "garbage" and event.inbound


async def test_forged_gossip_reported_by_the_shell_counts_as_abuse(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, m = identities(2)
        na = await net.start(a, [m], abuse_threshold=2)
        ws, _, _ = await net.raw_dial(m, na)
        assert await na.event() == LinkUp(m.public_hex)
        na.manager.report_abuse(m.public_hex, "bad origin signature")
        assert na.manager.is_up(m.public_key)
        na.manager.report_abuse(m.public_key, "bad origin signature")
        down = await na.event()
        assert isinstance(down, LinkDown) and "abuse" in down.reason
        assert na.manager.snapshot()[m.public_hex].bad_by_kind == {"app": 2}
        assert await _close_code(ws) == CloseCode.ABUSE


@pytest.mark.parametrize("kind", ["memory"])
async def test_a_half_open_connection_is_noticed_and_replaced(kind: str, clock: object) -> None:
    """Cut both directions without a close (a dead path): heartbeats notice, dialers reconnect."""
    async with open_harness(kind) as net:
        a, b = identities(2)
        na = await net.start(a, [b])
        nb = await net.start(b, [a])
        assert await na.event() == LinkUp(b.public_hex)
        assert await nb.event() == LinkUp(a.public_hex)
        for conn in net.hub.connections:
            conn.cut()
        cut_at = trio.current_time()
        for node in (na, nb):
            down = await node.event()
            assert isinstance(down, LinkDown) and "idle timeout" in down.reason
        assert trio.current_time() - cut_at <= FAST.idle_timeout + FAST.close_timeout + 0.01
        assert await na.event() == LinkUp(b.public_hex)
        assert await nb.event() == LinkUp(a.public_hex)
        assert na.manager.snapshot()[b.public_hex].reconnects == 1


async def test_a_full_outbox_drops_and_counts() -> None:
    """send_nowait never blocks the caller: a full outbox is a counted drop (no I/O needed)."""
    a, b = identities(2)
    session = Session(session_id=b"s" * 32, role=Role.DIALER, local=a.public_key, peer=b.public_key)
    link = Link(ws=None, session=session, identity=a, config=LinkConfig(outbox_size=2))  # type: ignore[arg-type]
    assert link.send_nowait(Bid(auction="x", amount=1))
    assert link.send_nowait(Bid(auction="x", amount=2))
    assert not link.send_nowait(Bid(auction="x", amount=3))
    assert link.stats.outbox_drops == 1


@pytest.mark.parametrize("kind", ["tcp"])  # memory streams buffer without limit: only TCP pushes back
async def test_a_peer_that_stops_reading_hits_the_send_timeout(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, m = identities(2)
        na = await net.start(a, [m], send_timeout=0.3, idle_timeout=10.0, heartbeat_interval=5.0)
        await net.raw_dial(m, na)  # its websocket queue (1 message) fills, then it stops reading TCP
        assert await na.event() == LinkUp(m.public_hex)
        filler = Bid(auction="x" * 100, amount=1)
        while na.manager.is_up(m.public_key):
            na.manager.send_nowait(m.public_hex, filler)  # never blocks, even when the outbox is full
            await trio.lowlevel.checkpoint()
        down = await na.event()
        assert isinstance(down, LinkDown) and "send timed out" in down.reason
        assert na.manager.snapshot()[m.public_hex].outbox_drops > 0
