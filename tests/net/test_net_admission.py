"""Unauthenticated connections: capped globally and per source, dropped at once when
they hang up or send garbage, and the neighbours' links kept (issues 17.1, 15.3)."""

from __future__ import annotations

import pytest
import trio

from peer.net.admission import Admission, Stage, pending_cap_for_fd_limit
from peer.net.linkstate import HandshakeFailed, LinkUp
from tests.net.net_harness import identities, open_harness, wait_until

# --- the pure admission rule ---------------------------------------------------


def test_admission_evicts_the_least_promising_pending_connection() -> None:
    adm = Admission(max_pending=3, max_per_source=3)
    first, _ = adm.admit("x", 0.0)
    second, _ = adm.admit("y", 1.0)
    third, _ = adm.admit("z", 2.0)
    adm.advance(first, Stage.CLAIMED)  # got furthest: kept longest
    adm.advance(third, Stage.UPGRADED)
    fourth, evicted = adm.admit("w", 3.0)
    assert evicted == [second] and second.evicted and len(adm) == 3
    _, evicted = adm.admit("v", 4.0)
    assert evicted == [fourth]  # RAW before UPGRADED, then oldest first
    assert adm.evicted == 2 and adm.peak == 3


def test_admission_caps_each_source_before_the_global_cap() -> None:
    adm = Admission(max_pending=10, max_per_source=2)
    a1, _ = adm.admit("a", 0.0)
    adm.admit("b", 0.0)
    adm.admit("a", 1.0)
    _, evicted = adm.admit("a", 2.0)
    assert evicted == [a1] and adm.pending_from("a") == 2 and adm.pending_from("b") == 1
    for ticket in list(adm._pending.values()):
        adm.release(ticket)
        adm.release(ticket)  # idempotent
    assert len(adm) == 0 and adm.pending_from("a") == 0


def test_the_cap_leaves_room_under_the_fd_limit() -> None:
    assert pending_cap_for_fd_limit(256, soft_limit=1024) == 256
    assert pending_cap_for_fd_limit(256, soft_limit=200) == 68
    assert pending_cap_for_fd_limit(256, soft_limit=50) == 2


# --- over memory streams and 127.0.0.1 ---------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"GARBAGE / HTTP/9\r\n\r\n\x00\x01"])
async def test_a_connection_that_hangs_up_or_sends_garbage_is_dropped_at_once(
    kind: str, clock: object, payload: bytes
) -> None:
    """It used to be held for the whole handshake timeout (5 s by default)."""
    async with open_harness(kind) as net:
        a, b = identities(2)
        na = await net.start(a, [b], handshake_timeout=5.0)
        stream = await net.raw_stream(na.address)
        start = trio.current_time()
        if payload:
            await stream.send_all(payload)
        else:
            await stream.send_eof() if hasattr(stream, "send_eof") else await stream.aclose()
        await wait_until(lambda: na.manager.unknown_handshake_failures == 1)
        assert trio.current_time() - start < 1.0
        assert len(na.manager.admission) == 0
        [event] = na.pending_events()
        assert isinstance(event, HandshakeFailed) and event.kind == "hung-up"


async def test_pending_connections_are_capped_and_the_neighbours_link_survives(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, b, c = identities(3)
        na = await net.start(a, [b, c], max_pending=4, max_pending_per_source=3, handshake_timeout=5.0)
        nb = await net.start(b, [a])
        assert await na.event() == LinkUp(b.public_hex)
        idle = [await net.raw_stream(na.address) for _ in range(10)]  # slow loris: never upgrade
        await wait_until(lambda: na.manager.admission.evicted >= 7)
        assert len(na.manager.admission) <= 3 and na.manager.admission.peak <= 4
        # The evicted ones were closed by the node (EOF), well before the handshake timeout.
        with trio.fail_after(1.0):
            assert await idle[0].receive_some(100) == b""
        # Links to neighbours are untouched, and a neighbour dialling in now still gets in.
        assert na.manager.is_up(b.public_key) and nb.manager.is_up(a.public_key)
        nc = await net.start(c, [a])
        await wait_until(lambda: na.manager.is_up(c.public_key))
        assert nc.manager.is_up(a.public_key)
        assert na.manager.handshake_failures["evicted"] >= 7


@pytest.mark.parametrize("kind", ["memory"])
async def test_memory_is_reclaimed_once_a_flood_of_pending_connections_is_over(kind: str, clock: object) -> None:
    async with open_harness(kind, limit=60) as net:
        a, b = identities(2)
        na = await net.start(a, [b], handshake_timeout=2.0, report_interval=1.0)
        streams = [await net.raw_stream(na.address) for _ in range(40)]
        await wait_until(lambda: len(na.manager.admission) == 40)
        await trio.sleep(1.5)
        assert na.manager.reclaims == 0  # not while the flood is on
        for stream in streams:
            await stream.aclose()
        await wait_until(lambda: na.manager.reclaims == 1)
        assert len(na.manager.admission) == 0 and na.manager.admission.peak < 32
        await trio.sleep(5.0)
        assert na.manager.reclaims == 1  # once per flood, not every interval
