"""The allocator as a task graph (Sec. 4.2): which tasks exist, who runs them, how results combine.

* double auction: one task, cheap (a sort), run by every provider locally, so
  no data transfer (as the paper does);
* standard auction (Algorithm 1): task 1, the allocation, run by every
  provider; tasks 2.g, the payments of user subset g, one per provider group;
  task 3 gathers the transferred, cross-checked payments into the output;
* Mirage's hourly round (``peer.mirage.auctioneer_round``): greedy and the MIP
  as tasks of provider groups, the better allocation and the currency settled
  by every provider.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol, TypeVar

from peer.auctioneer.agreement import BidVector
from peer.auctioneer.double import double_auction
from peer.auctioneer.outcome import Allocation
from peer.auctioneer.transfer import groups
from peer.auctioneer.vcg import Market, allocate, allocation_of, payments_for, subsets

AUCTIONS = ("double", "standard", "mirage")


T = TypeVar("T")

#: Task results shared by the providers of one simulated round (``shared_task_results``), keyed by
#: everything the task reads.  ``None`` (the default, and always in a provider process): no sharing.
_SHARED: ContextVar[dict[Hashable, object] | None] = ContextVar("shared_task_results", default=None)


@contextmanager
def shared_task_results() -> Iterator[None]:
    """Inside the block, a pure task computed by one provider is reused by every other provider that
    runs it on the same inputs (the simulator's fast mode: each machine still runs every step, the
    result is the same bytes it would have computed).  A task that raises is never shared."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _shared(key: Callable[[], Hashable], compute: Callable[[], T]) -> T:
    memo = _SHARED.get()
    if memo is None:
        return compute()
    k = key()
    if k not in memo:
        memo[k] = compute()
    return memo[k]  # type: ignore[return-value]


class PayloadError(ValueError):
    """A transferred task result does not decode."""


class Plan(Protocol):
    tasks: dict[str, tuple[bytes, ...]]

    def compute(self, task: str) -> bytes: ...
    def finish(self, results: dict[str, bytes]) -> Allocation: ...


class DoublePlan:
    def __init__(self, vector: BidVector, coin: bytes) -> None:
        self.vector, self.coin = vector, coin
        self.tasks: dict[str, tuple[bytes, ...]] = {}

    def compute(self, task: str) -> bytes:
        raise KeyError(task)

    def finish(self, results: dict[str, bytes]) -> Allocation:
        # The allocation reads the bids' signed content (the vector digest covers exactly that) and the coin.
        return _shared(lambda: ("double", self.vector.digest(), self.coin),
                       lambda: double_auction(self.vector.bids, self.coin))


def encode_payments(payments: dict[int, int]) -> bytes:
    return b"".join(i.to_bytes(4, "big") + p.to_bytes(8, "big") for i, p in sorted(payments.items()))


def decode_payments(raw: bytes, allowed: set[int]) -> dict[int, int]:
    if len(raw) % 12:
        raise PayloadError("payments payload is not a whole number of records")
    out = {}
    for off in range(0, len(raw), 12):
        i = int.from_bytes(raw[off : off + 4], "big")
        if i not in allowed or i in out:
            raise PayloadError(f"payment for user index {i} not in this task's subset")
        out[i] = int.from_bytes(raw[off + 4 : off + 12], "big")
    if set(out) != allowed:
        raise PayloadError("payments missing for some users of the subset")
    return out


class StandardPlan:
    def __init__(self, vector: BidVector, providers: Sequence[bytes], k: int) -> None:
        self.market = Market.of(vector.bids)
        self._vector = vector
        grouped = groups(providers, k)
        self.subsets = subsets(len(self.market.users), len(grouped))
        self.tasks = {f"pay.{g}": members for g, members in enumerate(grouped)}
        self._solution: tuple[int, dict[int, int]] | None = None

    def _allocation(self) -> tuple[int, dict[int, int]]:
        if self._solution is None:  # task 1: every provider solves it once
            self._solution = _shared(lambda: ("standard/allocate", self._vector.digest()),
                                     lambda: allocate(self.market))
        return self._solution

    def compute(self, task: str) -> bytes:
        g = int(task.split(".")[1])
        welfare, assign = self._allocation()
        return _shared(lambda: ("standard/pay", self._vector.digest(), tuple(self.subsets[g])),
                       lambda: encode_payments(payments_for(self.market, welfare, assign, self.subsets[g])))

    def finish(self, results: dict[str, bytes]) -> Allocation:
        _, assign = self._allocation()
        payments: dict[int, int] = {}
        for task in self.tasks:
            g = int(task.split(".")[1])
            payments.update(decode_payments(results[task], set(self.subsets[g])))
        return allocation_of(self.market, assign, payments)


def make_plan(
    auction: str, vector: BidVector, coin: bytes, providers: Sequence[bytes], k: int, context: object = None,
) -> Plan:
    if auction == "mirage":
        # Mirage's hourly round (peer.mirage.auctioneer_round): greedy and MIP clearing as tasks of
        # provider groups, then the currency; ``context`` is the round's market state.
        from peer.mirage.auctioneer_round import MiragePlan

        return MiragePlan(vector, coin, providers, k, context)
    if auction == "double":
        return DoublePlan(vector, coin)
    if auction == "standard":
        return StandardPlan(vector, providers, k)
    raise ValueError(f"unknown auction {auction!r}")
