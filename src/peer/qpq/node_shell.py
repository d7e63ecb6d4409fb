"""QPQ's collaborator in the node shell: one resource stream a node takes part in.

Moved out of the node (it was a mixin): the node hands it delivered gossip on
the ``qpq`` topic and runs :meth:`QpqStream.run`, which sleeps until the
stream's next deadline (wall clock: rounds are scheduled across hosts) or a
poke, and acts on it.  Every step takes the node's lock for that step only, so
QPQ and SRA handling never interleave and no lock is held while waiting.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import trio

from peer.errors import RemoteProtocolError

if TYPE_CHECKING:
    from pathlib import Path

    from peer.net.identity import Identity
    from peer.node.qpq_shell import QpqShell
    from peer.node.services import NodeServices

# The gossip topic of QPQ messages (peer.node.qpq_shell.TOPIC).  Spelled here too so
# that an SRA-only node never imports the QPQ code, and scipy with it.
QPQ_TOPIC = "qpq"
MAX_SLEEP = 1.0  # every wait is bounded: re-check at least this often


def open_qpq(plan_path: Path, identity: Identity, data_dir: Path) -> QpqShell:
    from peer.node.qpq_shell import QpqPlan, QpqShell  # scipy comes with it: only when needed

    return QpqShell(QpqPlan.load(plan_path), identity, data_dir)


class QpqStream:
    """Moves data between the node's gossip, its clock and :class:`QpqShell`."""

    def __init__(self, node: NodeServices, shell: QpqShell, lock: AbstractAsyncContextManager[Any], wallclock: Any,
                 all_linked: trio.Event, done: trio.Event) -> None:
        self.node = node
        self.shell = shell
        self._lock = lock
        self._wallclock = wallclock
        self._all_linked = all_linked
        self._done = done
        self._poke = trio.Event()
        # What this node hands its links for the stream (the node feeds it every Forward on
        # the qpq topic), and a reader of its links' total frames out (heartbeats included).
        from peer.qpq.frames import FrameTally  # here, not at the top: it pulls in scipy (the GoF test)

        self.frames = FrameTally()
        self.link_frames: Callable[[], int] | None = None  # set by the node

    def counts(self) -> dict[str, Any]:
        """The running frame totals logged with each round and at the end."""
        out: dict[str, Any] = {"frames": self.frames.snapshot()}
        if self.link_frames is not None:
            out["link_frames_out"] = self.link_frames()
        return out

    async def kickoff(self) -> None:
        """The coordinator starts the stream: on SIGUSR1, or once all neighbours are linked."""
        if self.node.config.start_on_signal:
            with trio.open_signal_receiver(signal.SIGUSR1) as signals:
                self.node.emit("waiting", reason="SIGUSR1 to start the QPQ stream")
                async for _ in signals:
                    break
        else:
            with trio.move_on_after(self.node.config.start_timeout):
                await self._all_linked.wait()
        async with self._lock:
            payload = self.shell.kickoff(self._wallclock())
            self.node.emit("qpq_kickoff", stream=self.shell.setup.stream, start=self.shell.start_at)
            self.node.publish_topic(QPQ_TOPIC, payload)
            self._poke.set()

    async def run(self) -> None:
        """Sleep until the stream's next deadline (wall clock) or a poke, then act on it."""
        while not self.shell.done:
            deadline = self.shell.next_deadline()
            wait = MAX_SLEEP if deadline is None else max(0.0, deadline - self._wallclock())
            with trio.move_on_after(min(wait, MAX_SLEEP)):
                await self._poke.wait()
            self._poke = trio.Event()
            async with self._lock:
                await self.apply(self.shell.on_timer(self._wallclock()))
        self.final()

    async def on_payload(self, origin: bytes, payload: bytes) -> None:
        """A delivered gossip payload on the QPQ topic (the node's lock is held)."""
        try:
            effects = self.shell.on_payload(origin.hex(), payload, self._wallclock())
        except (ValueError, RemoteProtocolError) as exc:
            self.node.bad_input(self.node.n(origin.hex()), f"qpq: {exc}")
            return
        await self.apply(effects)
        self._poke.set()  # the stream's next deadline may have moved

    async def apply(self, effects: list[Any]) -> None:
        from peer.node.qpq_shell import Broadcast, Flag, Record, RoundDone, encode

        shell, node = self.shell, self.node
        for effect in effects:
            if isinstance(effect, Broadcast):
                node.publish_topic(QPQ_TOPIC, encode(effect.msg))
                node.messages_out += 1
                node.emit("send", peer=effect.scope, type=type(effect.msg).__name__, stage="qpq")
            elif isinstance(effect, Record):
                fields = await node.run_sync(shell.record, effect.entry)
                node.emit("qpq_alloc", **fields)
            elif isinstance(effect, Flag):
                shell.flags += 1
                node.emit("qpq_flag", round=effect.round, level=int(effect.level), member=effect.member,
                          reason=effect.reason.value)
            elif isinstance(effect, RoundDone):
                shell.round_done(effect)
                assert shell.start_at is not None
                began = shell.start_at + effect.round * shell.plan.round_length
                # The previous round's frames: its floods are over by now (counted by payload round).
                previous = {} if effect.round == 0 else {"round_frames": self.frames.take_round(effect.round - 1)}
                node.emit("qpq_round", round=effect.round, winner=effect.winner,
                          seconds=round(self._wallclock() - began, 4),  # from the round's start to done here
                          **self.counts(), **previous)

    def final(self) -> None:
        shell = self.shell
        self.node.emit("final", mechanism="qpq", stream=shell.setup.stream, rounds=shell.plan.rounds,
                       allocations=[e.hash for e in shell.allocations], wins=shell.wins, flags=shell.flags,
                       **self.counts())
        self._done.set()
