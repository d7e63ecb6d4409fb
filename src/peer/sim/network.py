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

On top of the delay model the network can carry out three things a node shell
or a bad network does, none of which changes an honest, fault-free run:

* a seeded chaos router (:mod:`peer.sim.chaos`) that drops, duplicates,
  delays and reorders messages;
* crashes (``Behaviour.crash_at``): where the crash fires in the effects of
  one event (``peer.sra.behaviours.cut_index``), the shell carries out the
  effects before that point and then the node is gone: its machine is lost, later messages and
  timers go nowhere.  After ``restart_after`` the node is back with no
  auction state and refuses every message of the auction (the simulator's
  reading of "answers as a fresh node would");
* the shell's ledger checks (:mod:`peer.sim.checks`): an Open, Award or
  Settled that fails them is refused before it reaches the machine, and the
  refusal is recorded as a detection;
* ledger replication: under guarded resale, a host's countersigned entry
  reaches its buyer as an Award through the ledger as well as on the link, so
  losing the link's Award loses nothing (real nodes get it from gossip).

``run(until=...)`` stops at a horizon and leaves whatever is still scheduled
in the heap for the caller to judge (:mod:`peer.sim.outcome`).
"""

from __future__ import annotations

from peer.money import describe_amount

import heapq
import random
from collections import Counter
from dataclasses import dataclass, field

from peer.errors import RemoteProtocolError
from peer.sim.chaos import ChaosRouter
from peer.sim.checks import CHECKS, Detection, LedgerView
from peer.sra.behaviours import cut_index
from peer.sra.effects import Effect, Outcome, Record, Send, StageChanged, Wake
from peer.sra.ledger_entry import HopEntry
from peer.sra.machine import SraNode
from peer.sra.messages import STAGE_OF, Award, Message, Open, Settled


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
    refused_from: list[str] = field(default_factory=list)  # the sender of each entry of ``rejected``
    records: dict[str, list[HopEntry]] = field(default_factory=dict)  # node -> entries it recorded
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    end_time: float = 0.0  # time of the last message delivered or deadline acted on
    events: int = 0
    detections: list[Detection] = field(default_factory=list)  # messages the shell checks refused
    crashed: dict[str, float] = field(default_factory=dict)  # node -> when it crashed
    lost_to_crash: int = 0  # messages that reached a crashed node before it restarted
    truncated: bool = False  # the run hit max_events before its horizon


class SimNetwork:
    """Delivers messages between machines by the delay model until nothing is left to do."""

    def __init__(
        self,
        machines: dict[str, SraNode],
        delays: DelayModel,
        *,
        drop: frozenset[str] = frozenset(),
        chaos: ChaosRouter | None = None,
        checks: frozenset[str] = CHECKS,
    ) -> None:
        self.machines = machines
        self.delays = delays
        self.stats = SimStats()
        self.chaos = chaos
        self.checks = checks
        self._heap: list[tuple[float, int, str, str | None, Message | None]] = []
        self._seq = 0
        self._crashed = set(drop)  # nodes that never answer (for timeout tests)
        some = next(iter(machines.values()))
        self.ledger = LedgerView(some.seller, some.genesis, guarded=some.config.guarded)
        # node -> (the stage it crashes at, restart delay or None)
        self._crash_plan = {
            name: (m.behaviour.crash_at, m.behaviour.restart_after)
            for name, m in machines.items()
            if m.behaviour.crash_at is not None
        }
        self._back_at: dict[str, float | None] = {}  # crashed node -> when it restarts (None: never)

    def start(self, seller: str, now: float = 0.0) -> None:
        self._apply(seller, self.machines[seller].start(now), now)

    def down(self, node: str) -> bool:
        """Is ``node`` gone (silent from the start, or crashed), as far as the others can tell?"""
        return node in self._crashed or node in self._back_at

    def pending(self) -> list[tuple[float, str, str | None, Message | None]]:
        """What is still scheduled: (time, target, sender, message or None for a wake-up)."""
        return [(t, target, sender, msg) for t, _, target, sender, msg in sorted(self._heap)]

    def run(self, max_events: int = 50_000_000, *, until: float | None = None) -> SimStats:
        """Deliver events until none is left or the next one lies beyond ``until``.

        Without ``until``, hitting ``max_events`` raises RuntimeError (as it
        always did: an honest run never gets there); with it the run stops and
        sets ``stats.truncated`` so that the caller can call the run stalled.
        """
        heap = self._heap
        machines = self.machines
        stats = self.stats
        checks = self.checks
        while heap:
            if until is not None and heap[0][0] > until:
                break
            if stats.events >= max_events:
                if until is None:
                    raise RuntimeError(f"simulation did not finish within {max_events} events")
                stats.truncated = True
                break
            now, _, target, sender, msg = heapq.heappop(heap)
            stats.events += 1
            if target in self._crashed:
                continue
            if target in self._back_at:
                self._deliver_to_crashed(target, sender, msg, now)
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
                if checks and (type(msg) is Open or type(msg) is Award or type(msg) is Settled):
                    detection = self.ledger.check(target, sender, msg, checks)
                    if detection is not None:
                        stats.detections.append(detection)
                        continue
                try:
                    effects = machine.receive(sender, msg, now)
                except RemoteProtocolError as exc:
                    stats.rejected.append((target, str(exc)))
                    stats.refused_from.append(sender)
                    if type(msg) is Settled and machine.result is not None and msg != machine.result:
                        held = machine.result
                        stats.detections.append(Detection(
                            target, sender, "settled-conflict", msg.hops,
                            f"{msg.winner}/{msg.hops} hops/{describe_amount(msg.price)}",
                            f"{held.winner}/{held.hops} hops/{describe_amount(held.price)}", exc.reason,
                        ))
                    continue
            if effects:
                self._apply(target, effects, now)
        return stats

    def _deliver_to_crashed(self, target: str, sender: str | None, msg: Message | None, now: float) -> None:
        back = self._back_at[target]
        if msg is None:
            return  # the lost machine's timers died with it
        if back is None or now < back:
            self.stats.lost_to_crash += 1
            return
        assert sender is not None
        self.stats.rejected.append((target, f"restarted without state for this auction: {type(msg).__name__}"))
        self.stats.refused_from.append(sender)

    def _apply(self, node: str, effects: list[Effect], now: float) -> None:
        heap = self._heap
        stats = self.stats
        if self._crash_plan and node in self._crash_plan and node not in self._back_at:
            stage, restart_after = self._crash_plan[node]
            index = cut_index(effects, stage)
            if index is not None:
                effects = effects[:index]
                stats.crashed[node] = now
                self._back_at[node] = None if restart_after is None else now + restart_after
        chaos = self.chaos
        for effect in effects:
            if type(effect) is Send:
                stats.messages[STAGE_OF[type(effect.msg)].value] += 1
                if chaos is None:
                    self._seq += 1
                    heapq.heappush(heap, (now + self.delays.delay(), self._seq, effect.to, node, effect.msg))
                    continue
                for transit in chaos.route(node, effect.to, effect.msg, self.delays.delay()):
                    self._seq += 1
                    heapq.heappush(heap, (now + transit, self._seq, effect.to, node, effect.msg))
            elif type(effect) is Wake:
                self._seq += 1
                heapq.heappush(heap, (effect.at, self._seq, node, None, None))
            elif type(effect) is Record:
                stats.records.setdefault(node, []).append(effect.entry)
                self.ledger.record(node, effect.entry, effect.countersigned)
                entry = effect.entry
                if effect.countersigned and self.ledger.entries.get(entry.hop) == entry:
                    # Guarded resale: the whole entry is on the ledger, which replicates it to its
                    # buyer whatever happens to the Award (real nodes feed it in from gossip).
                    award = Award(auction=entry.auction, hop=entry.hop, price=entry.price, entry=entry.hash)
                    self._seq += 1
                    heapq.heappush(heap, (now + self.delays.delay(), self._seq, entry.buyer, node, award))
            elif type(effect) is Outcome:
                stats.outcomes[node] = effect
            elif type(effect) is StageChanged:
                pass
