"""An idle node sleeps until something is due (peer.node.loop), and still does everything on time.

The main loop used to wake every second whatever was due; at 1,000 nodes on two
cores that idle work alone filled the machine (docs/benchmarks.md).  These run
the loop on trio's autojump clock, feeding it link events by hand.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio
import trio.testing

from peer.net.linkstate import LinkUp
from peer.node import loop
from peer.node.node import Node
from peer.node.recovery import SUMMARY_INTERVAL
from peer.net.websocket import MemoryHub
from tests.node.live import M, ident, make_node


@asynccontextmanager
async def looping(node: Node) -> AsyncIterator[tuple[trio.MemorySendChannel[object], list[float]]]:
    """Run the node's main loop alone; yield the channel it reads and the times its timers ran."""
    send, receive = trio.open_memory_channel[object](0)
    node.manager.events = receive
    ticks: list[float] = []
    original = node._on_tick

    async def counting_tick(now: float) -> None:
        ticks.append(now)
        await original(now)

    node._on_tick = counting_tick  # type: ignore[method-assign]
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node._main_loop)
            yield send, ticks
            nursery.cancel_scope.cancel()
    finally:
        node.store.close()
        node.log.close()


async def test_an_idle_node_with_nothing_due_wakes_once_per_max_wait(tmp_path: Path,
                                                                      autojump_clock: trio.testing.MockClock) -> None:
    node = make_node("a", ["b"], 0, tmp_path, MemoryHub())
    async with looping(node) as (_, ticks):
        await trio.sleep(300)
    # The old loop ran its timers every second: 300 times here.
    assert 300 / loop.MAX_WAIT <= len(ticks) <= 300 / loop.MAX_WAIT + 2


async def test_a_linked_idle_node_wakes_for_the_periodic_exchange_only(tmp_path: Path,
                                                                        autojump_clock: trio.testing.MockClock) -> None:
    node = make_node("a", ["b"], 0, tmp_path, MemoryHub())
    async with looping(node) as (send, ticks):
        await send.send(LinkUp(peer=ident("b").public_key.hex()))
        start = trio.current_time()
        await trio.sleep(300)
    after = [t for t in ticks if t > start]
    assert 300 / SUMMARY_INTERVAL - 1 <= len(after) <= 300 / SUMMARY_INTERVAL + 1
    assert all(b - a >= SUMMARY_INTERVAL - 1e-9 for a, b in zip(after, after[1:]))


async def test_a_task_that_releases_the_lock_wakes_the_loop(tmp_path: Path,
                                                             autojump_clock: trio.testing.MockClock) -> None:
    node = make_node("a", ["b"], 0, tmp_path, MemoryHub())
    async with looping(node) as (_, ticks):
        await trio.sleep(5)  # the loop sleeps now, until MAX_WAIT
        ticks.clear()
        async with node._lock:  # as the control socket or a sale does: make something due now
            node.values_at = now = trio.current_time()
        await trio.sleep(1)
        assert ticks == [now]  # at once, not after MAX_WAIT


async def test_a_values_file_edit_is_read_within_the_poll(tmp_path: Path,
                                                          autojump_clock: trio.testing.MockClock) -> None:
    (tmp_path / "a").mkdir()
    values = tmp_path / "a" / "values.toml"
    values.write_text('default = "1"\n')
    node = make_node("a", ["b"], 0, tmp_path, MemoryHub())
    async with looping(node):
        await trio.sleep(5)
        values.write_text('default = "2"\n[items]\nlamp = "7"\n')
        await trio.sleep(loop.VALUES_POLL + 0.01)
        assert node.values.value_for("lamp") == 7 * M
        values.write_text("default = [")  # a bad edit: reported, the table unchanged
        await trio.sleep(loop.VALUES_POLL + 0.01)
        assert node.values.value_for("lamp") == 7 * M
    events = [json.loads(line) for line in (tmp_path / "a.ndjson").read_text().splitlines()]
    assert any(e["kind"] == "error" and "values file not reloaded" in e["reason"] for e in events)


async def test_without_a_values_file_the_loop_does_not_poll_for_one(tmp_path: Path,
                                                                    autojump_clock: trio.testing.MockClock) -> None:
    node = make_node("a", ["b"], 0, tmp_path, MemoryHub())
    async with looping(node) as (_, ticks):
        await trio.sleep(10)
        assert len(ticks) == 1  # the first look, at start; the next is MAX_WAIT later
        assert node.values_at >= ticks[0] + loop.MAX_WAIT


async def test_refusals_left_out_are_counted_one_interval_after_the_last(tmp_path: Path,
                                                                         autojump_clock: trio.testing.MockClock) -> None:
    node = make_node("a", ["b"], 0, tmp_path, MemoryHub())
    peer = ident("b").public_key.hex()
    async with looping(node):
        await trio.sleep(5)
        async with node._lock:  # as a handler does
            for _ in range(20):  # the same refusal again and again: one line, the rest counted
                node.reject(peer, "a test refusal")
        last = trio.current_time()
        await trio.sleep(node.refusals.interval + 0.5)  # nothing else happens: only the loop can report
    events = [json.loads(line) for line in (tmp_path / "a.ndjson").read_text().splitlines()]
    assert sum(e["kind"] == "bad" for e in events) == 1
    summary = [e for e in events if e["kind"] == "bad_suppressed"]
    assert len(summary) == 1 and summary[0]["total"] == 19
    assert node.refusals_at == float("inf") and last < trio.current_time()
