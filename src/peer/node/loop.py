"""The node's main loop and its timers (the node calls these; see :mod:`peer.node.node`).

One task handles every link event and timer, so no two handlers interleave.  It
sleeps until the next link event or until the earliest thing that is *due*:

* an instance's deadline (its machine's timers and the stall watchdog);
* the periodic ledger exchange, while any link is up;
* a look at the values file: every ``VALUES_POLL`` seconds if the node has one
  (or was given one), every ``MAX_WAIT`` otherwise (a file created later is
  also read before each new auction is valued);
* the disk-health probe, while the ledger cannot be written;
* the summary of refusals not logged, one report interval after the last one.

An idle node with nothing due used to wake every second (the old 1 s tick), which
at 1,000 nodes on two cores was a large part of the machine.  Now nothing due
means one wake per ``MAX_WAIT`` at most: every wait stays bounded.  A task other
than the loop that changed something (a sale from the control socket, the
configured sale, QPQ, the auctioneer) holds the node's :class:`PokingLock`, whose
release wakes the loop to look at the deadlines again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

import trio

from peer.sra.instance import SraAuction

if TYPE_CHECKING:
    from peer.node.node import Node

MAX_WAIT = 30.0  # seconds: the main loop never sleeps longer than this, even with nothing due
VALUES_POLL = 1.0  # seconds between two looks at a values file that exists (or was configured)


class PokingLock:
    """The node's lock (a ``trio.Lock`` inside): released by any task but the main loop, it pokes the loop,
    which then recomputes what is due (the task may have started a sale or broken the ledger)."""

    def __init__(self, poke: Callable[[], None]) -> None:
        self._lock = trio.Lock()
        self._poke = poke
        self.loop_task: trio.lowlevel.Task | None = None

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._lock.release()
        if trio.lowlevel.current_task() is not self.loop_task:
            self._poke()

    def locked(self) -> bool:
        return self._lock.locked()


def values_interval(node: Node) -> float:
    return VALUES_POLL if node.values.known() or node.config.values_file is not None else MAX_WAIT


def next_due(node: Node) -> float:
    """The trio time of the earliest timer the loop must run (``inf`` if none)."""
    due = node.instances.next_deadline()
    times = [math.inf if due is None else due, node.values_at, node.refusals_at]
    if node.linked:
        times.append(node.catchup.next_exchange)
    if node.store_failure is not None:
        times.append(node.ledger_io.probe_at)
    return min(times)


async def main_loop(node: Node) -> None:
    events = node.manager.events
    node._lock.loop_task = trio.lowlevel.current_task()
    while True:
        node._flush_backlogs()
        deadline = min(next_due(node), trio.current_time() + MAX_WAIT)
        event = None
        with trio.CancelScope(deadline=deadline) as scope:
            node._wait_scope = scope
            try:
                event = await events.receive()
            except trio.EndOfChannel:
                return
        node._wait_scope = None
        async with node._lock:
            await node._guarded(event)
            # Under constant traffic the wait above never times out: run the timers when they
            # are due anyway, so a flood cannot hold an auction's deadlines or the periodic
            # exchange back.
            if event is not None and next_due(node) <= trio.current_time():
                await node._guarded(None)


async def on_tick(node: Node, now: float) -> None:
    """Run whatever is due at ``now`` (each part checks its own time)."""
    for inst in node.instances:
        if not isinstance(inst, SraAuction) or inst.finished:
            continue
        due = inst.machine.next_deadline()
        if due is not None and due <= now:
            await node.sra.apply(inst, inst.on_timer(now))
        if inst.aborted is None and (reason := node.sra.stall_reason(inst, now)) is not None:
            node.sra.abort(inst, reason)
        node._after(inst)
    if node.linked and now >= node.catchup.next_exchange:
        node.catchup.periodic(now)
    if now >= node.values_at:
        node._reload_values()
        node.values_at = now + values_interval(node)
    if node.store_failure is not None and now >= node.ledger_io.probe_at:
        await node.ledger_io.probe(now)
    if now >= node.refusals_at:
        node.refusals_at = math.inf
        node._summarise_refusals(now)
