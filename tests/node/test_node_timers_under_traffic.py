"""The node's timers run even when link events never stop arriving.

The main loop waits for the next link event or the earliest deadline; under a
constant stream of events the wait never times out, so before the fix the
timers (auction deadlines, the stall watchdog, the periodic ledger exchange)
did not run until the stream stopped: one chatty neighbour could hold every
auction's deadlines back.
"""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from peer.net.codec import Heartbeat
from peer.net.linkstate import Received
from peer.net.websocket import MemoryHub
from tests.node.live import ident, make_node


async def test_timers_run_under_a_constant_stream_of_events(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    node = make_node("a", ["b"], 0, tmp_path, MemoryHub())
    send, receive = trio.open_memory_channel[object](0)
    node.manager.events = receive  # the loop reads this channel; we are the only sender
    ticks: list[float] = []
    original = node._on_tick

    async def counting_tick(now: float) -> None:
        ticks.append(now)
        await original(now)

    node._on_tick = counting_tick  # type: ignore[method-assign]
    peer = ident("b").public_key.hex()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node._main_loop)
        start = trio.current_time()
        for n in range(1000):  # an event every 10 ms for 10 s: far more often than MAX_WAIT
            await send.send(Received(peer=peer, msg=Heartbeat(n=n)))
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert trio.current_time() - start >= 9.9
    assert len(ticks) >= 8  # about once a second, as when the link is quiet
    node.store.close()
    node.log.close()
