"""Every node's QpqNode in one process, with an in-memory router: the full machine path.

One event per broadcast (all its recipients get it at the same instant, in
their canonical order), events ordered by (time, sequence number), so a run is
a pure function of the setup.  Each message takes ``delay`` (less than a
phase); ``extra_delay[node]`` holds back that node's cluster-level reveals (a
late member).  Nodes with the ``absent`` profile have no machine: frames to
them are counted (a real sender would send them) and dropped.

All nodes start round r together once every machine has finished round r-1,
which is the shell's schedule of the synchronous model.  Every node's ledger
entry for a round should be identical; the majority's entry is the run's and
the nodes that recorded another are counted in ``dissenters`` (a late node
cannot know its reveal was late, so it alone counts its own value).
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Mapping

from peer.errors import RemoteProtocolError
from peer.qpq.commit import sim_secret
from peer.qpq.decide import Fault, Level
from peer.qpq.effects import Broadcast, Decided, Effect, Flag, Record, RoundDone, Wake
from peer.qpq.fixed import ONE
from peer.qpq.ledger import AllocationEntry
from peer.qpq.machine import QpqNode
from peer.qpq.messages import Message, Reveal
from peer.qpq.result import QpqRun
from peer.qpq.setup import QpqSetup, preference_block

Event = tuple[float, int, str, tuple[str, ...], Message | None]


class Router:
    def __init__(
        self, setup: QpqSetup, *, delay: float = 0.1, extra_delay: Mapping[str, float] | None = None,
        measure_from: int = 0,
    ) -> None:
        if not 0 < delay < setup.config.phase:
            raise ValueError("delay must be positive and shorter than a phase")
        self.setup = setup
        self.delay = delay
        self.extra_delay = dict(extra_delay or {})
        m = setup.membership
        self.machines = {
            node: QpqNode(node, m, stream=setup.stream, secret=sim_secret(setup.seed, node),
                          config=setup.config, profile=setup.profile(node))
            for node in m.nodes if setup.profile(node).takes_part
        }
        self.run = QpqRun(setup=setup, mode="machines", rounds=0, measure_from=measure_from)
        self.decisions: dict[str, list[Decided]] = {node: [] for node in self.machines}  # for tests
        self.dissenters: Counter[str] = Counter()  # node -> rounds it recorded another entry than the majority
        self.now = 0.0
        self._heap: list[Event] = []
        self._seq = 0
        self._done: set[str] = set()
        self._entries: dict[str, AllocationEntry] = {}
        self._new_flags: list[tuple[int, int, str, str]] = []

    def run_rounds(self, rounds: int, progress: Callable[[int], None] | None = None) -> QpqRun:
        started = time.perf_counter()
        m = self.setup.membership
        index = {node: i for i, node in enumerate(m.nodes)}
        first = self.run.rounds
        prefs = preference_block(self.setup, first, rounds)
        for offset in range(rounds):
            r = first + offset
            self._done.clear()
            self._entries.clear()
            for node, machine in self.machines.items():
                self._apply(node, machine.start_round(r, int(prefs[index[node], offset]), self.now))
            self._drain(r)
            self._collect(r, prefs[:, offset], index)
            if progress is not None:
                progress(1)
        self.run.rounds = first + rounds
        self.run.seconds += time.perf_counter() - started
        return self.run

    # ---------------------------------------------------------------- events

    def _drain(self, r: int) -> None:
        heap = self._heap
        while len(self._done) < len(self.machines):
            if not heap:
                raise RuntimeError(f"round {r} is stuck: no message in flight and no deadline pending")
            at, _, sender, recipients, msg = heapq.heappop(heap)
            self.now = max(self.now, at)
            if msg is None:  # a wake-up; stale ones (the phase already closed) are skipped
                machine = self.machines[sender]
                deadline = machine.next_deadline()
                if deadline is not None and deadline <= self.now:
                    self._apply(sender, machine.on_timer(self.now))
                continue
            for target in recipients:
                machine = self.machines.get(target)
                if machine is None:
                    continue  # absent node: the frame is lost
                try:
                    effects = machine.receive(sender, msg, self.now)
                except RemoteProtocolError as exc:
                    self.run.rejected.append((target, str(exc)))
                    continue
                if effects:
                    self._apply(target, effects)

    def _apply(self, node: str, effects: list[Effect]) -> None:
        for effect in effects:
            kind = type(effect)
            if kind is Broadcast:
                b: Broadcast = effect  # type: ignore[assignment]
                level = "cluster" if b.msg.level is Level.CLUSTER else "winner"
                reveal = isinstance(b.msg, Reveal)
                self.run.traffic.add(level, "reveal" if reveal else "commit", len(b.recipients))
                extra = self.extra_delay.get(node, 0.0) if reveal and level == "cluster" else 0.0
                self._seq += 1
                heapq.heappush(self._heap, (self.now + self.delay + extra, self._seq, node, b.recipients, b.msg))
            elif kind is Flag:
                f: Flag = effect  # type: ignore[assignment]
                key = (f.round, int(f.level), f.member, f.reason.value)
                if key not in self.run.flags:
                    self.run.flags.add(key)
                    self._new_flags.append(key)
            elif kind is Record:
                self._entries[node] = effect.entry  # type: ignore[union-attr]
            elif kind is RoundDone:
                self._done.add(node)
            elif kind is Decided:
                self.decisions[node].append(effect)  # type: ignore[arg-type]
            elif kind is Wake:
                self._seq += 1
                heapq.heappush(self._heap, (effect.at, self._seq, node, (), None))  # type: ignore[union-attr]

    def _collect(self, r: int, prefs_col: object, index: dict[str, int]) -> None:
        votes = Counter(self._entries.values())
        entry = max(votes, key=lambda e: (votes[e], e.hash))  # the majority's entry is the run's
        if len(votes) != 1:
            self.run.disagreements += 1
            self.dissenters.update(node for node, e in self._entries.items() if e != entry)
        run = self.run
        run.entries.append(entry)
        run.winners.append(entry.winner)
        won = float(prefs_col[index[entry.winner]]) / ONE if entry.winner else 0.0  # type: ignore[index]
        run.won_values.append(won)
        for _, level, member, reason in self._new_flags if r >= run.measure_from else ():
            if level == int(Level.CLUSTER) and reason == Fault.FAILED_TEST.value:
                run.replaced[member] += 1
            elif level == int(Level.WINNER) and reason == Fault.FAILED_TEST.value:
                run.winner_replaced += 1
        if entry.winner:
            run.wins[entry.winner] += 1
            if r >= run.measure_from:
                run.utility[entry.winner] += won
        self._new_flags.clear()


def run_machines(
    setup: QpqSetup, *, rounds: int | None = None, delay: float = 0.1,
    extra_delay: Mapping[str, float] | None = None, measure_from: int = 0,
    progress: Callable[[int], None] | None = None,
) -> QpqRun:
    router = Router(setup, delay=delay, extra_delay=extra_delay, measure_from=measure_from)
    return router.run_rounds(setup.rounds if rounds is None else rounds, progress)
