"""A Mirage user on its own node: its jobs, its agent (truthful or S1-S4), its outstanding bids.

Sans-I/O.  After each round the providers send every user the same public view
(:meth:`peer.mirage.live.MirageBook.view`: the calendar, balances, the round's
winners and, under open bidding, the outstanding bids); :meth:`LiveUser.on_update`
takes it, and :meth:`LiveUser.bids_for` answers with this user's outstanding
bids for the next round, each signed by one of its bid slots.  What the agent
decides is exactly :mod:`peer.mirage.simulate`'s loop restricted to one user,
so a strategy behaves on real nodes as in the experiment.

A user bids in round r only on the view of round r - 1: a user that missed a
view does not know which of its bids won, and resubmitting a bid that already
won would buy its block twice; it sits the round out instead.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from peer.auctioneer.bids import SignedBid
from peer.mirage.agents import Agent, Job, MarketView
from peer.mirage.auctioneer_round import sign_mirage_bid
from peer.mirage.live import hour_of
from peer.mirage.model import Allocation, Bid, MarketError, Rules
from peer.mirage.simulate import _overrides, _shrink
from peer.mirage.workload import JobSpec
from peer.net.identity import Identity


@dataclass
class UserReport:
    name: str
    strategy: str
    jobs: int = 0
    bids_signed: int = 0
    rounds_bid: int = 0
    rounds_missed: int = 0  # no view of the previous round in time: sat out
    won: list[list[int]] = field(default_factory=list)  # [round, start, nodes, hours, price]
    realised: int = 0  # true value received, minor units
    paid: int = 0
    balance: int = 0


class LiveUser:
    def __init__(self, name: str, account: str, slots: list[Identity], agent: Agent, jobs: list[JobSpec],
                 rules: Rules, capacity: int, baseline: int, history_hours: int) -> None:
        if not slots:
            raise ValueError("a user needs at least one bid slot")
        self.name, self.account, self.slots, self.agent = name, account, slots, agent
        self.rules, self.capacity, self.history = rules, capacity, history_hours
        self.specs = sorted(jobs, key=lambda j: (j.arrival, j.order))
        self.jobs: dict[str, Job] = {}
        self.outstanding: dict[int, Bid] = {}  # slot index -> the bid it holds
        self.slot_of_bid: dict[str, int] = {}
        self.job_of_slot: dict[int, Job] = {}
        self.slot_hex = [s.public_hex for s in slots]
        self.fees_owed = 0
        self.seen = 0  # the last round whose winners were taken
        self.recent: deque[tuple[int, Allocation]] = deque()
        self.view: dict[str, Any] = {"round": 0, "next_hour": 0, "free": [capacity] * rules.window_hours,
                                     "balances": {account: baseline}, "open": [], "winners": []}
        self.report = UserReport(name, agent.name, balance=baseline)

    @property
    def balance(self) -> int:
        return int(self.view["balances"].get(self.account, 0))

    # --- the providers' view of a round --------------------------------------------------------------

    def on_update(self, view: dict[str, Any]) -> None:
        if view["round"] <= self.view["round"]:
            return  # an old or repeated view
        now = hour_of(view["round"])
        self.recent = deque((hour_of(r), Allocation(slot, account, start, hours, nodes, price))
                            for r, slot, account, start, nodes, hours, price in view["winners"])
        for r, slot, account, start, nodes, hours, price in view["winners"]:
            if r <= self.seen or account != self.account or slot not in self.slot_hex:
                continue  # told before (the view repeats the last rounds' winners), or not mine
            index = self.slot_hex.index(slot)
            job, bid = self.job_of_slot.pop(index, None), self.outstanding.pop(index, None)
            if job is None or bid is None:
                continue
            self.slot_of_bid.pop(bid.bid_id, None)
            if bid.bid_id in job.bids:
                job.bids.remove(bid.bid_id)
            before = job.received
            job.received = min(job.nodes * job.hours, job.received + nodes * hours)
            self.report.realised += job.rate * (job.received - before)
            self.report.paid += price
            self.report.won.append([r, start, nodes, hours, price])
            _shrink(job, Allocation(bid.bid_id, account, start, hours, nodes, price))
        while self.recent and self.recent[0][0] < now - self.history:
            self.recent.popleft()
        self.seen = view["round"]
        self.view = view
        self.fees_owed = 0
        self.report.balance = self.balance
        for job in list(self.jobs.values()):
            if not job.open:
                self._forget(job)
                del self.jobs[job.job_id]

    # --- bidding -------------------------------------------------------------------------------------

    def bids_for(self, round_no: int) -> tuple[SignedBid, ...]:
        """This user's signed bids for round ``round_no`` (empty if it has no view of the round before)."""
        if self.view["round"] != round_no - 1:
            self.report.rounds_missed += 1
            return ()
        now = hour_of(round_no)
        for job in list(self.jobs.values()):
            if job.latest < now:
                self._forget(job)
                del self.jobs[job.job_id]
            elif job.bids and _overrides(self.agent, "stale") and self.agent.stale(
                    job, [self.outstanding[self.slot_of_bid[b]] for b in job.bids], self._view(now)):
                self._forget(job)
        while self.specs and self.specs[0].arrival <= now:
            spec = self.specs.pop(0)
            if spec.latest < now:
                continue
            # The job is the account's: agents tell their own bids from others' by the bid's user.
            job = Job(spec.job_id, self.account, spec.arrival, spec.nodes, spec.hours, spec.rate, spec.latest)
            self.jobs[job.job_id] = job
            self.report.jobs += 1
            self._place(job, self.agent.open_bids(job, self._view(now)), now)
        for job in self.jobs.values():
            if not job.bids and job.arrival < now:
                self._place(job, self.agent.open_bids(job, self._view(now)), now)
        if _overrides(self.agent, "revisions"):
            for job in self.jobs.values():
                for bid_id in list(job.bids):
                    index = self.slot_of_bid[bid_id]
                    new = self.agent.revisions(job, self.outstanding[index], self._view(now))
                    if new is not None and self.balance - self.fees_owed >= self.rules.fee:
                        self.outstanding[index] = replace(self.outstanding[index], value=new)
                        self.fees_owed += self.rules.fee
        out = []
        for index, bid in sorted(self.outstanding.items()):
            try:
                out.append(sign_mirage_bid(self.slots[index], round_no, now, bid))
            except MarketError:
                continue  # its start is out of this round's reach: it waits (or expires with its job)
        self.report.bids_signed += len(out)
        self.report.rounds_bid += bool(out)
        return tuple(out)

    def _view(self, now: int) -> MarketView:
        visible = tuple(Bid(s, u, v, n, h, max(e, now), lt) for s, u, v, n, h, e, lt in self.view["open"]
                        if lt >= now)
        recent = tuple(a for _, a in self.recent)
        free = np.asarray(self.view["free"], dtype=np.int64)
        return MarketView(now, self.rules, self.capacity, free, visible, recent, self.balance - self.fees_owed)

    def _place(self, job: Job, bids: list[Bid], now: int) -> None:
        if self.rules.one_bid_per_user and self.outstanding:
            return  # it knows the rule and its own outstanding bid: this job waits its turn
        for bid in bids:
            if self.balance - self.fees_owed < self.rules.fee:
                break
            if self.rules.one_bid_per_user and self.outstanding:
                break  # the market would refuse a second outstanding bid (S4's backfill waits for its high bid)
            free_slots = [i for i in range(len(self.slots)) if i not in self.outstanding]
            if bid.latest < now or bid.nodes > self.capacity or not free_slots or bid.bid_id in self.slot_of_bid:
                continue  # what the market would refuse, or no slot left to hold it
            index = free_slots[0]
            self.outstanding[index] = bid
            self.slot_of_bid[bid.bid_id] = index
            self.job_of_slot[index] = job
            self.fees_owed += self.rules.fee
            job.bids.append(bid.bid_id)

    def _forget(self, job: Job) -> None:
        for bid_id in job.bids:
            index = self.slot_of_bid.pop(bid_id, None)
            if index is not None:
                self.outstanding.pop(index, None)
                self.job_of_slot.pop(index, None)
        job.bids = []


def make_user(entry: Any, identity: Identity, scenario: Any, rules: Rules, capacity: int, baseline: int,
              rounds: int) -> LiveUser:
    """The user of a cluster entry (:class:`peer.mirage.live_config.LiveUserEntry`), holding its own key:
    its slot keys are derived from that key and must be the registered ones."""
    from peer.mirage.agents import AGENTS
    from peer.mirage.auctioneer_round import slot_identity
    from peer.mirage.workload import draw_jobs

    if identity.public_hex != entry.key:
        raise ValueError(f"this key is not user {entry.name}'s")
    slots = [slot_identity(identity, i) for i in range(len(entry.slots))]
    if [s.public_hex for s in slots] != list(entry.slots):
        raise ValueError(f"user {entry.name}: the registered bid slots are not this key's")
    # The job stream of the run's length, the same draw as the experiment's for this seed.
    jobs = [j for j in draw_jobs(replace(scenario, weeks=rounds / 168)) if j.user == entry.name]
    agent = AGENTS[entry.strategy](scenario.strategy)
    return LiveUser(entry.name, entry.key, slots, agent, jobs, rules, capacity, baseline,
                    scenario.strategy.history_hours)
