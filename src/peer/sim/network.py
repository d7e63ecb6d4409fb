"""A discrete-event network of SRA machines.

Messages and timer wake-ups are events on one heap ordered by (time, sequence
number), so a run is a pure function of the machines, the delay model and its
seed.  The two delay models are the two delivery modes of ``peer sim``:

* :class:`RoundDelays`: every message takes exactly one round.  With a gather
  window of half a round, a node informed in round t has as inviters exactly
  its neighbours informed in round t-1, and edges between nodes informed in
  the same round are void: the paper's synchronous setting.
* :class:`AsyncDelays`: seeded random per-message delays, so invitations race
  and the gather window decides who counts as an inviter.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from dataclasses import dataclass, field

from peer.errors import RemoteProtocolError
from peer.sra.effects import Effect, Outcome, Record, Send, StageChanged, Wake
from peer.sra.ledger_entry import HopEntry
from peer.sra.machine import SraNode
from peer.sra.messages import STAGE_OF, Message


class RoundDelays:
    """Synchronous rounds: every message takes one time unit."""

    name = "rounds"
    max_delay = 1.0

    def delay(self) -> float:
        return 1.0


class AsyncDelays:
    """Independent seeded delays, uniform on [low, high]."""

    name = "async"

    def __init__(self, seed: int, low: float = 0.05, high: float = 1.0) -> None:
        self._rng = random.Random(f"sim/delays/{seed}")
        self.low = low
        self.high = high
        self.max_delay = high

    def delay(self) -> float:
        return self._rng.uniform(self.low, self.high)


DelayModel = RoundDelays | AsyncDelays


@dataclass
class SimStats:
    messages: Counter[str] = field(default_factory=Counter)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (receiver, reason)
    records: dict[str, list[HopEntry]] = field(default_factory=dict)  # node -> entries it recorded
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    end_time: float = 0.0  # time of the last message delivered or deadline acted on
    events: int = 0


class SimNetwork:
    """Delivers messages between machines by the delay model until nothing is left to do."""

    def __init__(self, machines: dict[str, SraNode], delays: DelayModel, *, drop: frozenset[str] = frozenset()) -> None:
        self.machines = machines
        self.delays = delays
        self.stats = SimStats()
        self._heap: list[tuple[float, int, str, str | None, Message | None]] = []
        self._seq = 0
        self._crashed = set(drop)  # nodes that never answer (for timeout tests)

    def start(self, seller: str, now: float = 0.0) -> None:
        self._apply(seller, self.machines[seller].start(now), now)

    def run(self, max_events: int = 50_000_000) -> SimStats:
        heap = self._heap
        machines = self.machines
        stats = self.stats
        while heap:
            if stats.events >= max_events:
                raise RuntimeError(f"simulation did not finish within {max_events} events")
            now, _, target, sender, msg = heapq.heappop(heap)
            stats.events += 1
            if target in self._crashed:
                continue
            machine = machines[target]
            if msg is None:
                deadline = machine.next_deadline()
                if deadline is None or deadline > now:
                    continue  # a stale wake-up: what it waited for already happened
                effects = machine.on_timer(now)
                stats.end_time = now
            else:
                stats.end_time = now
                assert sender is not None
                try:
                    effects = machine.receive(sender, msg, now)
                except RemoteProtocolError as exc:
                    stats.rejected.append((target, str(exc)))
                    continue
            if effects:
                self._apply(target, effects, now)
        return stats

    def _apply(self, node: str, effects: list[Effect], now: float) -> None:
        heap = self._heap
        stats = self.stats
        for effect in effects:
            if type(effect) is Send:
                self._seq += 1
                stats.messages[STAGE_OF[type(effect.msg)].value] += 1
                heapq.heappush(heap, (now + self.delays.delay(), self._seq, effect.to, node, effect.msg))
            elif type(effect) is Wake:
                self._seq += 1
                heapq.heappush(heap, (effect.at, self._seq, node, None, None))
            elif type(effect) is Record:
                stats.records.setdefault(node, []).append(effect.entry)
            elif type(effect) is Outcome:
                stats.outcomes[node] = effect
            elif type(effect) is StageChanged:
                pass
