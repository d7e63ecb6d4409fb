"""Heartbeats go only where nothing else went out: a busy link sends none, an idle one stays up.

An idle node's links used to send a signed Heartbeat every ``heartbeat_interval``
whatever else they carried; any frame feeds the peer's idle timer, so one sent
within the interval makes the heartbeat redundant (and each costs a signature
and a verification).  Memory transport on trio's autojump clock.
"""

from __future__ import annotations

import pytest
import trio

from peer.net.linkstate import LinkUp, Received
from peer.sra.messages import Bid
from tests.net.net_harness import FAST, Node, identities, open_harness

SECONDS = 10.0  # 50 heartbeat intervals of FAST


def frames_out(node: Node, peer: str) -> int:
    return node.manager.snapshot()[peer].frames_out


async def drain(node: Node, into: list[object]) -> None:
    while True:
        into.append(await node.event())


@pytest.mark.parametrize("kind", ["memory"])
async def test_an_idle_link_beats_once_per_interval_and_stays_up(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, b = identities(2)
        na, nb = await net.start(a, [b]), await net.start(b, [a])
        assert await na.event() == LinkUp(b.public_hex)
        assert await nb.event() == LinkUp(a.public_hex)
        start_a, start_b = frames_out(na, b.public_hex), frames_out(nb, a.public_hex)
        await trio.sleep(SECONDS)
        beats = SECONDS / FAST.heartbeat_interval
        assert beats - 2 <= frames_out(na, b.public_hex) - start_a <= beats + 1
        assert beats - 2 <= frames_out(nb, a.public_hex) - start_b <= beats + 1
        assert na.pending_events() == [] and nb.pending_events() == []  # no link went down


@pytest.mark.parametrize("kind", ["memory"])
async def test_a_link_that_carries_frames_sends_no_heartbeat(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, b = identities(2)
        na, nb = await net.start(a, [b]), await net.start(b, [a])
        assert await na.event() == LinkUp(b.public_hex)
        assert await nb.event() == LinkUp(a.public_hex)
        received: list[object] = []
        net.nursery.start_soon(drain, nb, received)
        start = frames_out(na, b.public_hex)
        sent = 0
        while sent * FAST.heartbeat_interval / 2 < SECONDS:  # data twice per heartbeat interval
            assert na.manager.send_nowait(b.public_hex, Bid(auction="x", amount=sent + 1))
            sent += 1
            await trio.sleep(FAST.heartbeat_interval / 2)
        await trio.sleep(0.01)
        assert frames_out(na, b.public_hex) - start <= sent + 1  # the data alone (one beat before it began)
        assert [e for e in received if not isinstance(e, Received)] == []  # the link never went down
        assert len(received) == sent
        # Once the data stops, the heartbeats resume and keep the link up.
        quiet = frames_out(na, b.public_hex)
        await trio.sleep(SECONDS / 2)
        assert frames_out(na, b.public_hex) - quiet >= SECONDS / 2 / FAST.heartbeat_interval - 2
        assert na.pending_events() == []


@pytest.mark.parametrize("kind", ["memory"])
async def test_all_links_of_a_node_beat_in_the_same_wake_up(kind: str, clock: object) -> None:
    """Beats fall on multiples of the interval: one wake-up per interval for a node, not one per link."""
    async with open_harness(kind) as net:
        a, b, c = identities(3)
        na, nb = await net.start(a, [b, c]), await net.start(b, [a])
        assert await na.event() == LinkUp(b.public_hex)
        await trio.sleep(FAST.heartbeat_interval * 0.37)  # the second link comes up out of phase
        nc = await net.start(c, [a])
        assert await na.event() == LinkUp(c.public_hex)
        assert await nc.event() == LinkUp(a.public_hex)
        step = FAST.heartbeat_interval / 20
        last = {p: frames_out(na, p) for p in (b.public_hex, c.public_hex)}
        changed: dict[str, list[float]] = {p: [] for p in last}
        for _ in range(200):  # 10 intervals
            await trio.sleep(step)
            for p in last:
                now = frames_out(na, p)
                if now != last[p]:
                    changed[p].append(round(trio.current_time() / step))
                    last[p] = now
        assert len(changed[b.public_hex]) >= 9
        assert changed[b.public_hex] == changed[c.public_hex]
