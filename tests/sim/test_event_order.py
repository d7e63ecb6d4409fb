"""The simulator's bucket queue delivers in exactly the order of a heap on (time, sequence).

Stub machines answer every event with seeded random sends and wake-ups,
including wake-ups at the current time and in the past, so any difference in
delivery order changes what follows.  The reference is the plain heap the
simulator used before.
"""

from __future__ import annotations

import heapq
import random
from types import SimpleNamespace

import pytest

from peer.sim.network import AsyncDelays, RoundDelays, SimNetwork
from peer.sra.effects import Send, Wake
from peer.sra.messages import Bid


class Stub:
    seller = "n0"
    genesis = "0" * 64
    config = SimpleNamespace(guarded=False)
    behaviour = SimpleNamespace(crash_at=None)

    def __init__(self, name: str, names: list[str], log: list[tuple[object, ...]], budget: list[int]) -> None:
        self.name, self.names, self.log, self.budget = name, names, log, budget
        self.rng = random.Random(name)
        self.wakes: list[float] = []
        self.result = None

    def _effects(self, now: float) -> list[object]:
        out: list[object] = []
        for _ in range(1 + self.rng.randrange(2)):
            if self.budget[0] <= 0:
                break
            self.budget[0] -= 1
            if self.rng.random() < 0.7:
                out.append(Send(self.rng.choice(self.names), Bid(auction="a", amount=self.budget[0])))
            else:
                at = now + self.rng.choice([-0.5, 0.0, 0.0, 0.5, 1.0, 1.5, self.rng.random()])
                self.wakes.append(at)
                out.append(Wake(at))
        return out

    def start(self, now: float) -> list[object]:
        return [Send(name, Bid(auction="a", amount=-k)) for k, name in enumerate(self.names[1:5])]

    def next_deadline(self) -> float | None:
        return min(self.wakes) if self.wakes else None

    def on_timer(self, now: float) -> list[object]:
        self.wakes = [t for t in self.wakes if t > now]
        self.log.append((now, self.name, "wake"))
        return self._effects(now)

    def receive(self, sender: str, msg: Bid, now: float) -> list[object]:
        self.log.append((now, self.name, sender, msg.amount))
        return self._effects(now)


def _stubs(n: int, log: list[tuple[object, ...]]) -> dict[str, Stub]:
    names = [f"n{i}" for i in range(n)]
    budget = [4000]
    return {name: Stub(name, names, log, budget) for name in names}


def _reference(n: int, delays: RoundDelays | AsyncDelays) -> list[tuple[object, ...]]:
    """The old loop: one heap on (time, seq, target, sender, message)."""
    log: list[tuple[object, ...]] = []
    machines = _stubs(n, log)
    heap: list[tuple[float, int, str, str | None, Bid | None]] = []
    seq = 0

    def apply(node: str, effects: list[object], now: float) -> None:
        nonlocal seq
        for e in effects:
            seq += 1
            if isinstance(e, Send):
                heapq.heappush(heap, (now + delays.delay(), seq, e.to, node, e.msg))  # type: ignore[arg-type]
            else:
                heapq.heappush(heap, (e.at, seq, node, None, None))  # type: ignore[attr-defined]

    apply("n0", machines["n0"].start(0.0), 0.0)
    while heap:
        now, _, target, sender, msg = heapq.heappop(heap)
        machine = machines[target]
        if msg is None:
            deadline = machine.next_deadline()
            if deadline is None or deadline > now:
                continue
            apply(target, machine.on_timer(now), now)
        else:
            apply(target, machine.receive(sender, msg, now), now)  # type: ignore[arg-type]
    return log


@pytest.mark.parametrize("mode", ["rounds", "async"])
def test_bucket_queue_delivers_in_heap_order(mode: str) -> None:
    def delays() -> RoundDelays | AsyncDelays:
        return RoundDelays() if mode == "rounds" else AsyncDelays(7)

    log: list[tuple[object, ...]] = []
    network = SimNetwork(_stubs(12, log), delays(), checks=frozenset())  # type: ignore[arg-type]
    network.start("n0")
    network.run()
    assert len(log) > 1000
    assert log == _reference(12, delays())


@pytest.mark.parametrize("mode", ["rounds", "async"])
def test_a_run_stopped_at_a_horizon_or_event_limit_resumes_in_the_same_order(mode: str) -> None:
    def delays() -> RoundDelays | AsyncDelays:
        return RoundDelays() if mode == "rounds" else AsyncDelays(3)

    log: list[tuple[object, ...]] = []
    network = SimNetwork(_stubs(12, log), delays(), checks=frozenset())  # type: ignore[arg-type]
    network.start("n0")
    for until in (0.5, 0.5, 1.5, 2.5):
        network.run(until=until)
        pending = network.pending()
        assert pending and all(t > until for t, *_ in pending)
        assert [t for t, *_ in pending] == sorted(t for t, *_ in pending)
    for _ in range(3):  # in rounds mode this stops in the middle of one time's events
        network.run(max_events=network.stats.events + 37, until=1e9)
        assert network.stats.truncated
        network.stats.truncated = False
    network.run()
    assert log == _reference(12, delays())
    assert not network.pending()
