"""The node's timers run even when link events never stop arriving.

The main loop waits for the next link event or the earliest deadline; under a
constant stream of events the wait never times out, so before the fix the
timers (auction deadlines, the stall watchdog, the periodic ledger exchange)
did not run until the stream stopped: one chatty neighbour could hold every
auction's deadlines back.  (The loop has no fixed tick any more, so this
follows the periodic exchange, which is due every ``SUMMARY_INTERVAL`` while
a link is up.)
"""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from peer.net.codec import Heartbeat
from peer.net.linkstate import LinkUp, Received
from peer.node.recovery import SUMMARY_INTERVAL
from peer.net.websocket import MemoryHub
from tests.node.live import ident, make_node


async def test_timers_run_under_a_constant_stream_of_events(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    node = make_node("a", ["b"], 0, tmp_path, MemoryHub())
    send, receive = trio.open_memory_channel[object](0)
    node.manager.events = receive  # the loop reads this channel; we are the only sender
    exchanges: list[float] = []
    original = node.catchup.periodic

    def counting_periodic(now: float) -> None:
        exchanges.append(now)
        original(now)

    node.catchup.periodic = counting_periodic  # type: ignore[method-assign]
    peer = ident("b").public_key.hex()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node._main_loop)
        start = trio.current_time()
        await send.send(LinkUp(peer=peer))  # linked: the periodic ledger exchange is due every SUMMARY_INTERVAL
        for n in range(6000):  # an event every 10 ms for 60 s: the wait for the next one never times out
            await send.send(Received(peer=peer, msg=Heartbeat(n=n)))
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert trio.current_time() - start >= 59.9
    # On time, as when the link is quiet: at start + 10, 20, ... 50 s (each within one event's gap).
    assert len(exchanges) == 5
    for i, at in enumerate(exchanges, start=1):
        assert start + i * SUMMARY_INTERVAL <= at <= start + i * SUMMARY_INTERVAL + 0.05
    node.store.close()
    node.log.close()
