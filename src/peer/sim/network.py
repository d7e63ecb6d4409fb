"""A discrete-event network of SRA machines.

Messages and timer wake-ups are events delivered in the order of (time,
sequence number), so a run is a pure function of the machines, the delay
model and its seed (the schedule is a bucket queue, see :class:`SimNetwork`).  The two delay models are the two delivery modes of ``peer sim``:

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
import math
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
    fixed: float | None = 1.0  # every delay is this: the network skips the call per message

    def delay(self) -> float:
        return 1.0


class AsyncDelays:
    """Independent seeded delays, uniform on [low, high]."""

    name = "async"
    fixed: float | None = None

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


class _StageNames(dict[type, str]):
    """Message class -> the stage name its traffic counts under (STAGE_OF's value, looked up once
    per class: an Enum's ``.value`` is a Python-level property, and every Send asks)."""

    def __missing__(self, kind: type) -> str:
        name = self[kind] = STAGE_OF[kind].value
        return name


_STAGE_NAME = _StageNames()
_CHECKED = frozenset({Open, Award, Settled})  # the messages the shell's ledger checks look at

# One scheduled event: (target, sender, message); a wake-up has neither sender nor message.
Event = tuple[str, str | None, Message | None]


class SimNetwork:
    """Delivers messages between machines by the delay model until nothing is left to do.

    The schedule is a bucket queue: a heap of the distinct times that have
    events, and per time a list of its events in the order they were
    scheduled.  That is exactly the order of a heap on (time, sequence number),
    which the simulator used before, but in rounds mode every message of a
    round shares one time, so a 100,000-node run keeps a heap of a few dozen
    times instead of hundreds of thousands of tuples that all tie on time.
    """

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
        self._times: list[float] = []  # heap of the times in _buckets, except the one being delivered
        self._buckets: dict[float, list[Event]] = {}  # time -> its events, in scheduling order
        self._now = -math.inf  # the time being delivered
        self._behind = False  # an event was scheduled before _now: the loop must go back to it
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
        return [(t, target, sender, msg) for t in sorted(self._buckets) for target, sender, msg in self._buckets[t]]

    def _bucket(self, at: float) -> list[Event]:
        """The list of events due at ``at``, to append to (at == _now: after everything due then)."""
        bucket = self._buckets.get(at)
        if bucket is None:
            bucket = self._buckets[at] = []
            heapq.heappush(self._times, at)
            if at < self._now:
                self._behind = True
        return bucket

    def _push(self, at: float, event: Event) -> None:
        self._bucket(at).append(event)

    def run(self, max_events: int = 50_000_000, *, until: float | None = None) -> SimStats:
        """Deliver events until none is left or the next one lies beyond ``until``.

        Without ``until``, hitting ``max_events`` raises RuntimeError (as it
        always did: an honest run never gets there); with it the run stops and
        sets ``stats.truncated`` so that the caller can call the run stalled.
        """
        times = self._times
        buckets = self._buckets
        machines = self.machines
        stats = self.stats
        checks = self.checks
        crashed = self._crashed
        back_at = self._back_at
        ledger = self.ledger
        ledger_check = ledger.check
        checked = _CHECKED if checks else frozenset()
        # The Settled flood delivers one object over every link; once it passed the settled check
        # it passes again while the ledger is unchanged (LedgerView.check): that test, inline.
        settled_checked = "settled" in checks
        entries = ledger.entries
        apply = self._apply
        # Rounds mode with no chaos and no crash to cut effects at: every Send of an event arrives
        # one fixed delay later, so its effects are carried out here (what ``_apply_rounds`` does,
        # without two method calls per event), into the bucket of ``now + fixed``, found once per time.
        fixed = self.delays.fixed
        inline = self.chaos is None and fixed is not None and not self._crash_plan
        bucket_at = self._bucket
        record = self._record
        outcomes = stats.outcomes
        counts = stats.messages
        stage_name = _STAGE_NAME
        # A flood copy of the Settled the receiver already holds: SraNode.receive answers it with
        # no effect and no change, before any dispatch (its first test); the same test here saves
        # the call for the half million such copies of a 100,000-node run (only for SraNode
        # machines, whose fields it reads).
        held_test = all(type(m) is SraNode for m in machines.values())
        events = stats.events
        end_time = stats.end_time
        bucket: list[Event] = []  # the events of the time being delivered
        first = events  # events delivered before that time: its first events - first are done
        try:
            while times:
                now = times[0]
                if until is not None and now > until:
                    break
                heapq.heappop(times)
                bucket = buckets[now]
                self._now = now
                self._behind = False
                first = events
                due: list[Event] | None = None  # the bucket of now + fixed, once something goes in it
                # Events scheduled for ``now`` while it is delivered are appended to this very list,
                # and the list's iterator picks them up.
                for target, sender, msg in bucket:
                    if events >= max_events:
                        if until is None:
                            raise RuntimeError(f"simulation did not finish within {max_events} events")
                        stats.truncated = True
                        return stats
                    events += 1
                    if crashed and target in crashed:
                        continue
                    if back_at and target in back_at:
                        self._deliver_to_crashed(target, sender, msg, now)
                        continue
                    machine = machines[target]
                    if msg is None:
                        deadline = machine.next_deadline()
                        if deadline is None or deadline > now:
                            continue  # a stale wake-up: what it waited for already happened
                        effects = machine.on_timer(now)
                        end_time = now
                    else:
                        end_time = now
                        kind = type(msg)
                        if kind is Settled:
                            if settled_checked:
                                passed = ledger._settled_ok
                                if passed is None or passed[0] is not msg or passed[1] != len(entries):
                                    detection = ledger_check(target, sender, msg, checks)  # type: ignore[arg-type]
                                    if detection is not None:
                                        stats.detections.append(detection)
                                        continue
                            if (held_test and msg is machine.result and not machine.convicted
                                    and sender in machine._neighbour_set):
                                continue
                        elif kind in checked:
                            detection = ledger_check(target, sender, msg, checks)  # type: ignore[arg-type]
                            if detection is not None:
                                stats.detections.append(detection)
                                continue
                        try:
                            effects = machine.receive(sender, msg, now)  # type: ignore[arg-type]
                        except RemoteProtocolError as exc:
                            self._refused(target, sender, msg, machine, exc)  # type: ignore[arg-type]
                            continue
                    if effects:
                        if inline:
                            sent: Message | None = None  # the message of the current run of sends
                            run = 0  # how many sends of it so far
                            for effect in effects:
                                kind = type(effect)
                                if kind is Send:
                                    msg = effect.msg  # type: ignore[union-attr]
                                    if msg is not sent:
                                        if run:
                                            counts[stage_name[type(sent)]] += run
                                        sent, run = msg, 0
                                    run += 1
                                    if due is None:
                                        due = bucket_at(now + fixed)  # type: ignore[operator]
                                    due.append((effect.to, target, msg))  # type: ignore[union-attr]
                                elif kind is StageChanged:
                                    continue
                                elif kind is Wake:
                                    at = effect.at  # type: ignore[union-attr]
                                    wake = buckets.get(at)
                                    if wake is None:
                                        wake = bucket_at(at)  # a new time (maybe one before now: _behind)
                                    wake.append((target, None, None))
                                elif kind is Record:
                                    record(target, effect, now)  # type: ignore[arg-type]
                                elif kind is Outcome:
                                    outcomes[target] = effect  # type: ignore[assignment]
                            if run:
                                counts[stage_name[type(sent)]] += run
                        else:
                            apply(target, effects, now)
                        if self._behind:
                            break  # something is due before ``now``: deliver it first, as a heap would
                self._settle_bucket(now, bucket, events - first)
                bucket = []
        finally:
            stats.events = events
            stats.end_time = end_time
            if bucket:  # stopped inside a time (event limit, or a machine raised)
                self._settle_bucket(self._now, bucket, events - first)
            self._now = -math.inf
        return stats

    def _settle_bucket(self, now: float, bucket: list[Event], delivered: int) -> None:
        """Drop the delivered part of ``now``'s events; what is left goes back on the schedule."""
        if delivered >= len(bucket):
            del self._buckets[now]
            return
        del bucket[:delivered]
        heapq.heappush(self._times, now)

    def _refused(self, target: str, sender: str, msg: Message, machine: SraNode, exc: RemoteProtocolError) -> None:
        stats = self.stats
        stats.rejected.append((target, str(exc)))
        stats.refused_from.append(sender)
        if type(msg) is Settled and machine.result is not None and msg != machine.result:
            held = machine.result
            stats.detections.append(Detection(
                target, sender, "settled-conflict", msg.hops,
                f"{msg.winner}/{msg.hops} hops/{describe_amount(msg.price)}",
                f"{held.winner}/{held.hops} hops/{describe_amount(held.price)}", exc.reason,
            ))

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
        stats = self.stats
        if self._crash_plan and node in self._crash_plan and node not in self._back_at:
            stage, restart_after = self._crash_plan[node]
            index = cut_index(effects, stage)
            if index is not None:
                effects = effects[:index]
                stats.crashed[node] = now
                self._back_at[node] = None if restart_after is None else now + restart_after
        chaos = self.chaos
        delays = self.delays
        fixed = delays.fixed
        counts = stats.messages
        if chaos is None and fixed is not None:
            self._apply_rounds(node, effects, now, now + fixed)
            return
        sent: Message | None = None  # a broadcast sends one message object: name its stage once
        stage = ""
        for effect in effects:
            kind = type(effect)
            if kind is Send:
                msg = effect.msg  # type: ignore[union-attr]
                if msg is not sent:
                    sent, stage = msg, _STAGE_NAME[type(msg)]
                counts[stage] += 1
                if chaos is None:
                    self._push(now + delays.delay(), (effect.to, node, msg))  # type: ignore[union-attr]
                    continue
                for transit in chaos.route(node, effect.to, msg, delays.delay()):  # type: ignore[union-attr]
                    self._push(now + transit, (effect.to, node, msg))  # type: ignore[union-attr]
            elif kind is StageChanged:
                continue
            elif kind is Wake:
                self._push(effect.at, (node, None, None))  # type: ignore[union-attr]
            elif kind is Record:
                self._record(node, effect, now)  # type: ignore[arg-type]
            elif kind is Outcome:
                stats.outcomes[node] = effect  # type: ignore[assignment]

    def _apply_rounds(self, node: str, effects: list[Effect], now: float, arrive: float) -> None:
        """``_apply`` for a fixed delay and no chaos (rounds mode), the common case: every message
        of the event arrives at ``arrive``, in one bucket; a broadcast is one message object, so
        its stage is named and counted once per run of sends, not once per send."""
        due: list[Event] | None = None
        counts = self.stats.messages
        sent: Message | None = None  # the message of the current run of sends
        run = 0  # how many sends of it so far
        for effect in effects:
            kind = type(effect)
            if kind is Send:
                msg = effect.msg  # type: ignore[union-attr]
                if msg is not sent:
                    if run:
                        counts[_STAGE_NAME[type(sent)]] += run
                    sent, run = msg, 0
                run += 1
                if due is None:
                    due = self._bucket(arrive)
                due.append((effect.to, node, msg))  # type: ignore[union-attr]
            elif kind is StageChanged:
                continue
            elif kind is Wake:
                self._push(effect.at, (node, None, None))  # type: ignore[union-attr]
            elif kind is Record:
                self._record(node, effect, now)  # type: ignore[arg-type]
            elif kind is Outcome:
                self.stats.outcomes[node] = effect  # type: ignore[assignment]
        if run:
            counts[_STAGE_NAME[type(sent)]] += run

    def _record(self, node: str, effect: Record, now: float) -> None:
        self.stats.records.setdefault(node, []).append(effect.entry)
        self.ledger.record(node, effect.entry, effect.countersigned)
        entry = effect.entry
        if effect.countersigned and self.ledger.entries.get(entry.hop) == entry:
            # Guarded resale: the whole entry is on the ledger, which replicates it to its
            # buyer whatever happens to the Award (real nodes feed it in from gossip).
            award = Award(auction=entry.auction, hop=entry.hop, price=entry.price, entry=entry.hash)
            self._push(now + self.delays.delay(), (entry.buyer, node, award))
