"""One run: weeks of hourly rounds of one mechanism, with some users playing one strategy.

The loop is the shell around the sans-I/O pieces: each hour the arriving jobs'
users bid (in a seeded order, each seeing what its mechanism shows at that
moment), S2 users revise once, the round clears (:func:`clear`), the market
books it, and the currency settles it.  The run keeps what the experiment
reports: every allocation, the true value allocated and the best true value
possible in each round, and each user's realised value and spending.

The efficiency's denominator, the best possible over the whole job stream,
is :func:`peer.mirage.offline.hindsight_bound` (the same for every run).
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field

import numpy as np

from peer.mirage.agents import AGENTS, Agent, Job, MarketView
from peer.mirage.clearing import clear
from peer.mirage.currency import Account, CurrencyPolicy, open_accounts, settle
from peer.mirage.market import MirageMarket
from peer.mirage.model import Allocation, Bid, MarketError, Rules
from peer.mirage.scenario import MirageScenario
from peer.mirage.workload import JobSpec, strategists_of, users_of
from peer.money import SCALE



@dataclass
class RunResult:
    mechanism: str
    strategy: str
    strategists: tuple[str, ...]
    rounds: int
    capacity: int
    allocations: list[tuple[int, Allocation, bool]] = field(default_factory=list)  # (round, alloc, by a strategist)
    true_allocated: list[int] = field(default_factory=list)  # per round
    realised: dict[str, int] = field(default_factory=dict)  # per user
    spent: dict[str, int] = field(default_factory=dict)  # per user: payments and fees
    mip_rounds: int = 0
    mip_wins: int = 0
    refused: int = 0
    balances: dict[str, int] = field(default_factory=dict)

    def utility(self, users: tuple[str, ...] | list[str]) -> int:
        return sum(self.realised.get(u, 0) - self.spent.get(u, 0) for u in users)

    @property
    def delivered(self) -> int:
        """The true value of everything allocated (minor units)."""
        return sum(self.true_allocated)


def run(scenario: MirageScenario, rules: Rules, strategy: str, jobs: list[JobSpec]) -> RunResult:
    """Run every round of ``scenario`` under ``rules``; the strategists play ``strategy``, the rest truthfully."""
    params = scenario.strategy
    strategists = tuple(strategists_of(scenario)) if strategy != "truthful" else ()
    truthful = Agent(params)
    special = AGENTS[strategy](params)
    agent_of = {u: (special if u in strategists else truthful) for u in users_of(scenario)}
    accounts = open_accounts({u: (scenario.baseline * SCALE, scenario.shares) for u in users_of(scenario)})
    policy = CurrencyPolicy(scenario.savings_tax)
    market = MirageMarket(rules, scenario.nodes)
    result = RunResult(rules.name, strategy, strategists, scenario.rounds, scenario.nodes)
    by_hour: dict[int, list[JobSpec]] = defaultdict(list)
    for spec in jobs:
        by_hour[spec.arrival].append(spec)
    open_jobs: dict[str, Job] = {}
    job_of_bid: dict[str, Job] = {}
    recent: deque[Allocation] = deque()
    recent_round: deque[int] = deque()
    spent: defaultdict[str, int] = defaultdict(int)
    fees_owed: defaultdict[str, int] = defaultdict(int)

    def balance(user: str) -> int:
        return next(a.balance for a in accounts if a.user == user) - fees_owed[user]

    def view(now: int, user: str, free: np.ndarray) -> MarketView:
        return MarketView(now, rules, scenario.nodes, free, tuple(market.visible_bids()), tuple(recent), balance(user))

    def place(job: Job, bids: list[Bid], now: int) -> None:
        if rules.one_bid_per_user and any(b.user == job.user for b in market.pending.values()):
            return  # it knows the rule and its own outstanding bid: this job waits its turn
        for bid in bids:
            if balance(job.user) < rules.fee:
                break
            try:
                accepted = market.submit(bid, now)
            except MarketError:
                result.refused += 1
                continue
            fees_owed[job.user] += accepted.fee
            job.bids.append(accepted.bid.bid_id)
            job_of_bid[accepted.bid.bid_id] = job

    for now in range(scenario.rounds):
        while recent_round and recent_round[0] < now - params.history_hours:
            recent_round.popleft()
            recent.popleft()
        free = np.asarray(market.free_window(now), dtype=np.int64)
        for job in list(open_jobs.values()):  # expired jobs leave; stale pinned bids (S4) are withdrawn
            if job.latest < now:
                _forget(job, market, job_of_bid)
                del open_jobs[job.job_id]
            elif job.bids and _overrides(agent_of[job.user], "stale") and agent_of[job.user].stale(
                    job, [market.pending[b] for b in job.bids if b in market.pending], view(now, job.user, free)):
                _forget(job, market, job_of_bid)
        for spec in by_hour.get(now, ()):
            job = Job(spec.job_id, spec.user, spec.arrival, spec.nodes, spec.hours, spec.rate, spec.latest)
            open_jobs[job.job_id] = job
            place(job, agent_of[job.user].open_bids(job, view(now, job.user, free)), now)
        for job in open_jobs.values():
            if not job.bids and job.arrival < now:  # a partial win or a re-plan: bid for what is left
                place(job, agent_of[job.user].open_bids(job, view(now, job.user, free)), now)
        for job in open_jobs.values():
            agent = agent_of[job.user]
            if not _overrides(agent, "revisions"):
                continue
            for bid_id in list(job.bids):
                bid = market.pending.get(bid_id)
                new = agent.revisions(job, bid, view(now, job.user, free)) if bid is not None else None
                if new is not None and balance(job.user) >= rules.fee:
                    fees_owed[job.user] += market.revise(bid_id, job.user, new).fee
        fees = market.take_fees()
        state, bids = market.round_inputs(now, {a.user: max(0, a.balance - fees.get(a.user, 0)) for a in accounts})
        clearing = clear(state, bids, rules)
        result.mip_rounds += clearing.mip_value is not None
        result.mip_wins += clearing.algorithm == "mip"
        market.apply(clearing)
        settlement = settle(accounts, dict(clearing.payments), fees, policy)
        accounts = settlement.accounts
        for user, amount in settlement.debits:
            spent[user] += amount
        fees_owed.clear()
        allocated = 0
        for a in clearing.allocations:
            job = job_of_bid.pop(a.bid_id)
            job.bids.remove(a.bid_id)
            before = job.received
            job.received = min(job.nodes * job.hours, job.received + a.nodes * a.hours)
            allocated += job.rate * (job.received - before)
            result.realised[job.user] = result.realised.get(job.user, 0) + job.rate * (job.received - before)
            _shrink(job, a)
            result.allocations.append((now, a, a.user in strategists))
            recent.append(a)
            recent_round.append(now)
        result.true_allocated.append(allocated)
        for job in list(open_jobs.values()):
            job.bids = [b for b in job.bids if b in market.pending]
            if not job.open:
                _forget(job, market, job_of_bid)
                del open_jobs[job.job_id]
    result.spent = dict(spent)
    result.balances = {a.user: a.balance for a in accounts}
    return result


def _overrides(agent: Agent, method: str) -> bool:
    """Whether ``agent`` does anything in ``method`` (saves building a view per job per round for the rest)."""
    return getattr(type(agent), method) is not getattr(Agent, method)


def _shrink(job: Job, a: Allocation) -> None:
    """What the job still needs after ``a``: fewer nodes (a sandwich piece) or fewer hours (a short block)."""
    if a.nodes < job.remaining_nodes:
        job.remaining_nodes -= a.nodes
        if job.pinned is None:
            job.pinned = a.start
    elif a.hours < job.remaining_hours:
        job.remaining_hours -= a.hours
    else:
        job.remaining_nodes = 0


def _forget(job: Job, market: MirageMarket, job_of_bid: dict[str, Job]) -> None:
    for bid_id in job.bids:
        if bid_id in market.pending:
            market.withdraw(bid_id, job.user)
        job_of_bid.pop(bid_id, None)
    job.bids = []
