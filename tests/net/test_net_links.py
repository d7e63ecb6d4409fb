"""Link conformance suite: the same tests over memory streams and over real 127.0.0.1 sockets.

Each test takes ``kind`` (the transport) and ``clock`` (MockClock with autojump
for memory, the real clock for TCP); see net_harness for the rules.
"""

from __future__ import annotations

import pytest
import trio

from peer.net.codec import GossipEnvelope
from peer.net.frames import FrameTooLarge
from peer.net.gossip import Deliver, Forward, Gossip, GossipError
from peer.net.linkstate import HandshakeFailed, LinkDown, LinkUp, Received
from peer.net.seqstore import MemorySeqCounter
from peer.sra import messages as sra
from tests.net.net_harness import identities, open_harness, wait_until

H = "ab" * 32
ALL_KINDS = [
    sra.Invite(auction="a1", item="lamp", seller="s", genesis=H),
    sra.Bid(auction="a1", amount=1_500_000),
    sra.Decline(auction="a1"),
    sra.Open(auction="a1", hop=1, reserve=0, prev=H),
    sra.ContextRequest(auction="a1", hop=1, host="h"),
    sra.ContextReply(auction="a1", hop=1, amount=None),
    sra.ContextBid(auction="a1", hop=1, amount=7),
    sra.Award(auction="a1", hop=1, price=7, entry=H),
    sra.Settled(auction="a1", winner="w", hops=1, price=7),
    GossipEnvelope(origin=b"o" * 32, seq=1, expires_ms=5, topic="t", payload=b"p", sig=b"s" * 64),
]


async def test_link_comes_up_once_and_carries_every_message_kind(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, b = identities(2)
        na = await net.start(a, [b])
        nb = await net.start(b, [a])
        assert await na.event() == LinkUp(b.public_hex)
        assert await nb.event() == LinkUp(a.public_hex)
        for msg in ALL_KINDS:
            assert na.manager.send_nowait(b.public_hex, msg)
            assert nb.manager.send_nowait(a.public_key, msg)
        for msg in ALL_KINDS:
            assert await nb.event() == Received(a.public_hex, msg)
            assert await na.event() == Received(b.public_hex, msg)
        la, lb = na.manager.link(b.public_hex), nb.manager.link(a.public_hex)
        assert la is not None and lb is not None
        assert la.session.session_id == lb.session.session_id
        sa, sb = na.manager.snapshot()[b.public_hex], nb.manager.snapshot()[a.public_hex]
        assert sa.up and sb.up and sa.frames_out >= len(ALL_KINDS) and sb.frames_in >= len(ALL_KINDS)
        assert sa.bad_frames == sb.bad_frames == 0 and sa.reconnects == 0
        assert sa.name == b.name


async def test_both_dial_and_exactly_one_link_survives(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        low, high = identities(2)
        nl = await net.start(low, [high], defer_dial=0)  # no deferral: force the race
        nh = await net.start(high, [low], defer_dial=0)

        def agreed() -> bool:
            x, y = nl.manager.link(high.public_key), nh.manager.link(low.public_key)
            return x is not None and y is not None and x.session.session_id == y.session.session_id

        await wait_until(agreed)
        await trio.sleep(1.5)  # well past any duplicate's close and the dialers' backoff
        assert agreed()
        kept = nl.manager.link(high.public_key)
        assert kept is not None and kept.session.dialer == low.public_key
        assert nl.pending_events() == [LinkUp(high.public_hex)]
        assert nh.pending_events() == [LinkUp(low.public_hex)]
        dup = nl.manager.snapshot()[high.public_hex].duplicates + nh.manager.snapshot()[low.public_hex].duplicates
        if kind == "memory":  # deterministic: both dials landed, and both ends dropped the same loser
            assert dup == 2


async def test_unknown_key_is_refused(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, b, stranger = identities(3)
        na = await net.start(a, [b])
        nb = await net.start(b, [a])
        ns = await net.start(stranger, [b])  # the stranger pins b, but b does not know it
        assert await na.event() == LinkUp(b.public_hex)
        await wait_until(lambda: ns.manager.snapshot()[b.public_hex].dial_failures >= 2)
        assert nb.manager.unknown_handshake_failures >= 2
        assert not ns.manager.is_up(b.public_key)
        # Each side says once (rate-limited) who presented which key (issue 9.4).
        events = nb.pending_events()
        assert events[0] == LinkUp(a.public_hex)
        refusals = [e for e in events[1:] if isinstance(e, HandshakeFailed)]
        assert len(refusals) == len(events) - 1 == 1
        assert refusals[0].kind == "unknown-key" and refusals[0].presented == stranger.public_hex
        assert refusals[0].inbound and refusals[0].neighbour is None
        told = [e for e in ns.pending_events() if isinstance(e, HandshakeFailed)]
        assert len(told) == 1 and told[0].neighbour == told[0].expected == b.public_hex
        assert "refused our key" in told[0].reason and stranger.public_hex in told[0].reason
        assert "not one of its neighbours" in ns.manager.snapshot()[b.public_hex].last_error


async def test_reconnects_after_the_peer_restarts(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, b = identities(2)
        na = await net.start(a, [b])
        nb = await net.start(b, [a])
        assert await na.event() == LinkUp(b.public_hex)
        await nb.stop()
        down = await na.event()
        assert isinstance(down, LinkDown) and down.peer == b.public_hex
        nb = await net.start(b, [a])  # same key, same address
        assert await na.event() == LinkUp(b.public_hex)
        assert await nb.event() == LinkUp(a.public_hex)
        assert na.manager.send_nowait(b.public_hex, sra.Bid(auction="x", amount=1))
        assert await nb.event() == Received(a.public_hex, sra.Bid(auction="x", amount=1))
        assert na.manager.snapshot()[b.public_hex].reconnects == 1


async def test_a_silent_peer_is_timed_out(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, m = identities(2)
        na = await net.start(a, [m])
        await net.raw_dial(m, na)  # authenticates, then never sends another frame
        assert await na.event() == LinkUp(m.public_hex)
        up_at = trio.current_time()
        await wait_until(lambda: not na.manager.is_up(m.public_key), step=0.01)
        if kind == "memory":  # virtual time is exact (to the polling step)
            assert trio.current_time() - up_at == pytest.approx(na.manager.config.idle_timeout, abs=0.015)
        down = await na.event()
        assert isinstance(down, LinkDown) and "idle timeout" in down.reason


async def test_send_without_a_link_and_oversized_sends(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, b = identities(2)
        na = await net.start(a, [b])
        assert not na.manager.send_nowait(b.public_hex, sra.Decline(auction="x"))  # b is not up
        nb = await net.start(b, [a])
        assert await na.event() == LinkUp(b.public_hex)
        huge = GossipEnvelope(origin=b"o" * 32, seq=1, expires_ms=5, topic="t", payload=b"p" * 5000, sig=b"s" * 64)
        with pytest.raises(FrameTooLarge):  # the 4 KiB limit is checked by the sender too
            na.manager.send_nowait(b.public_hex, huge)
        assert na.manager.send_nowait(b.public_hex, sra.Decline(auction="x"))
        assert await nb.event() == LinkUp(a.public_hex)
        assert await nb.event() == Received(a.public_hex, sra.Decline(auction="x"))


async def test_gossip_floods_over_links(kind: str, clock: object) -> None:
    """A minimal node shell: links + gossip, on a line a - b - c."""
    now = 1_700_000_000.0  # gossip time is an input; a fixed wall-clock keeps it deterministic
    async with open_harness(kind) as net:
        a, b, c = identities(3)
        peers = {a: [b], b: [a, c], c: [b]}
        nodes = {i: await net.start(i, ps) for i, ps in peers.items()}
        gossips = {i: Gossip(i, MemorySeqCounter(), frozenset(p.public_hex for p in ps)) for i, ps in peers.items()}
        delivered: dict[str, list[bytes]] = {i.public_hex: [] for i in peers}
        ups = trio.Semaphore(0)

        async def shell(ident: object) -> None:
            node, gossip = nodes[ident], gossips[ident]  # type: ignore[index]
            async for event in node.manager.events:
                if isinstance(event, LinkUp):
                    ups.release()
                elif isinstance(event, Received) and isinstance(event.msg, GossipEnvelope):
                    try:
                        effects = gossip.receive(event.peer, event.msg, now)
                    except GossipError as exc:
                        node.manager.report_abuse(event.peer, str(exc))
                        continue
                    for effect in effects:
                        if isinstance(effect, Deliver):
                            delivered[node.identity.public_hex].append(effect.envelope.payload)
                        elif isinstance(effect, Forward):
                            for peer in effect.to:
                                node.manager.send_nowait(peer, effect.envelope)

        for ident in peers:
            net.nursery.start_soon(shell, ident)
        for _ in range(4):  # a-b and b-c, seen from both ends
            await ups.acquire()
        _, effects = gossips[a].publish("auction", b"lamp for sale", now)
        for effect in effects:
            assert isinstance(effect, Forward)
            for peer in effect.to:
                assert nodes[a].manager.send_nowait(peer, effect.envelope)
        await wait_until(lambda: delivered[c.public_hex])
        assert delivered == {a.public_hex: [], b.public_hex: [b"lamp for sale"], c.public_hex: [b"lamp for sale"]}
