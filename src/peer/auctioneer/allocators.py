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

from collections.abc import Sequence
from typing import Protocol

from peer.auctioneer.agreement import BidVector
from peer.auctioneer.double import double_auction
from peer.auctioneer.outcome import Allocation
from peer.auctioneer.transfer import groups
from peer.auctioneer.vcg import Market, allocate, allocation_of, payments_for, subsets

AUCTIONS = ("double", "standard", "mirage")


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
        return double_auction(self.vector.bids, self.coin)


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
        grouped = groups(providers, k)
        self.subsets = subsets(len(self.market.users), len(grouped))
        self.tasks = {f"pay.{g}": members for g, members in enumerate(grouped)}
        self._solution: tuple[int, dict[int, int]] | None = None

    def _allocation(self) -> tuple[int, dict[int, int]]:
        if self._solution is None:  # task 1: every provider solves it once
            self._solution = allocate(self.market)
        return self._solution

    def compute(self, task: str) -> bytes:
        g = int(task.split(".")[1])
        welfare, assign = self._allocation()
        return encode_payments(payments_for(self.market, welfare, assign, self.subsets[g]))

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
