"""LinkManager.add_neighbour / remove_neighbour: neighbours changed while the manager runs."""

from __future__ import annotations

import pytest
import trio

from peer.net.linkstate import LinkDown, LinkUp
from tests.net.net_harness import identities, open_harness, wait_until


async def test_a_neighbour_added_at_run_time_is_dialled_and_linked(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, b = identities(2)
        na = await net.start(a, [])  # a knows nobody yet
        nb = await net.start(b, [])
        assert not na.manager.is_up(b.public_key)
        na.manager.add_neighbour(b.public_key, nb.address)
        nb.manager.add_neighbour(a.public_key)  # b accepts a, but does not dial it
        assert await na.event() == LinkUp(b.public_hex)
        assert await nb.event() == LinkUp(a.public_hex)
        assert b.public_hex in na.manager.snapshot()
        na.manager.add_neighbour(b.public_key, nb.address)  # idempotent: no second dialer, no new link
        await trio.sleep(0.5)
        assert na.pending_events() == [] and na.manager.is_up(b.public_key)


async def test_a_removed_neighbour_is_unlinked_and_not_redialled(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, b = identities(2)
        na = await net.start(a, [b])
        nb = await net.start(b, [])  # b accepts a but never dials: only a's dialer can relink
        nb.manager.add_neighbour(a.public_key)
        assert await na.event() == LinkUp(b.public_hex)
        na.manager.remove_neighbour(b.public_key)
        event = await na.event()
        assert isinstance(event, LinkDown) and event.peer == b.public_hex
        await trio.sleep(2.0)  # many backoff periods: the dialer stays dormant
        assert not na.manager.is_up(b.public_key) and na.manager.snapshot()[b.public_hex].dial_failures == 0
        na.manager.add_neighbour(b.public_key, nb.address)  # back again: the dormant dialer wakes
        await wait_until(lambda: na.manager.is_up(b.public_key))


def test_a_node_is_not_its_own_neighbour() -> None:
    import random

    from peer.net.websocket import LinkManager, MemoryHub

    (a,) = identities(1)
    manager = LinkManager(a, [], MemoryHub().transport("a"), rng=random.Random(1))
    with pytest.raises(ValueError):
        manager.add_neighbour(a.public_key)
