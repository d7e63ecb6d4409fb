"""The part of :class:`peer.node.node.Node` that runs a QPQ stream (mixed into Node).

Kept apart from the SRA path so that each file has one concern: this module
only moves data between the node's gossip, its clock and :class:`QpqShell`.
It runs its own timer task; every handler takes the node's lock, so QPQ and
SRA handling never interleave.
"""

from __future__ import annotations

import math
import signal
from typing import TYPE_CHECKING, Any

import trio

from peer.errors import RemoteProtocolError

if TYPE_CHECKING:
    from pathlib import Path

    from peer.net.identity import Identity
    from peer.node.node import Node
    from peer.node.qpq_shell import QpqShell

# The gossip topic of QPQ messages (peer.node.qpq_shell.TOPIC).  Spelled here too so
# that an SRA-only node never imports the QPQ code, and scipy with it.
QPQ_TOPIC = "qpq"


class QpqGlue:
    """Mixed into Node; ``self`` is the Node."""

    qpq: QpqShell | None
    _qpq_poke: trio.Event

    @staticmethod
    def _open_qpq(plan_path: Path, identity: Identity, data_dir: Path) -> QpqShell:
        from peer.node.qpq_shell import QpqPlan, QpqShell  # scipy comes with it: only when needed

        return QpqShell(QpqPlan.load(plan_path), identity, data_dir)

    async def _qpq_kickoff(self: Node) -> None:
        """The coordinator starts the stream: on SIGUSR1, or once all neighbours are linked."""
        assert self.qpq is not None
        if self.config.start_on_signal:
            with trio.open_signal_receiver(signal.SIGUSR1) as signals:
                self._emit("waiting", reason="SIGUSR1 to start the QPQ stream")
                async for _ in signals:
                    break
        else:
            with trio.move_on_after(self.config.start_timeout):
                await self.all_linked.wait()
        async with self._lock:
            payload = self.qpq.kickoff(self.wallclock())
            self._emit("qpq_kickoff", stream=self.qpq.setup.stream, start=self.qpq.start_at)
            _, effects = self.gossip.publish(QPQ_TOPIC, payload, self.wallclock())
            self._gossip_effects(effects)
            self._qpq_poke.set()

    async def _qpq_loop(self: Node) -> None:
        """Sleep until the stream's next deadline (wall clock) or a poke, then act on it."""
        assert self.qpq is not None
        while not self.qpq.done:
            deadline = self.qpq.next_deadline()
            with trio.move_on_after(math.inf if deadline is None else max(0.0, deadline - self.wallclock())):
                await self._qpq_poke.wait()
            self._qpq_poke = trio.Event()
            async with self._lock:
                await self._qpq_apply(self.qpq.on_timer(self.wallclock()))
        self._qpq_final()

    async def _qpq_payload(self: Node, origin: bytes, payload: bytes) -> None:
        """A delivered gossip payload on the QPQ topic (the node's lock is held)."""
        if self.qpq is None:
            return
        try:
            effects = self.qpq.on_payload(origin.hex(), payload, self.wallclock())
        except (ValueError, RemoteProtocolError) as exc:
            self.bad += 1
            self._emit("bad", peer=self._n(origin.hex()), reason=f"qpq: {exc}")
            return
        await self._qpq_apply(effects)
        self._qpq_poke.set()  # the stream's next deadline may have moved

    async def _qpq_apply(self: Node, effects: list[Any]) -> None:
        from peer.node.qpq_shell import Broadcast, Flag, Record, RoundDone, encode

        assert self.qpq is not None
        for effect in effects:
            if isinstance(effect, Broadcast):
                _, forwards = self.gossip.publish(QPQ_TOPIC, encode(effect.msg), self.wallclock())
                self._gossip_effects(forwards)
                self.messages_out += 1
                self._emit("send", peer=effect.scope, type=type(effect.msg).__name__, stage="qpq")
            elif isinstance(effect, Record):
                fields = await trio.to_thread.run_sync(self.qpq.record, effect.entry)
                self._emit("qpq_alloc", **fields)
            elif isinstance(effect, Flag):
                self.qpq.flags += 1
                self._emit("qpq_flag", round=effect.round, level=int(effect.level), member=effect.member,
                           reason=effect.reason.value)
            elif isinstance(effect, RoundDone):
                self.qpq.round_done(effect)
                assert self.qpq.start_at is not None
                began = self.qpq.start_at + effect.round * self.qpq.plan.round_length
                self._emit("qpq_round", round=effect.round, winner=effect.winner,
                           seconds=round(self.wallclock() - began, 4))  # from the round's start to done here

    def _qpq_final(self: Node) -> None:
        assert self.qpq is not None
        self._emit("final", mechanism="qpq", stream=self.qpq.setup.stream, rounds=self.qpq.plan.rounds,
                   allocations=[e.hash for e in self.qpq.allocations], wins=self.qpq.wins, flags=self.qpq.flags)
        self.done.set()
