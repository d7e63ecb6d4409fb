"""The Mirage market kept by each provider between rounds, and the offline check of its records.

:class:`MirageBook` is sans-I/O: it hands each round its :class:`MirageRoundContext`
(the calendar, the balances, each slot's last bid), applies a decided round from
its *signed* outcome (trades, charges, balances: see :mod:`peer.mirage.auctioneer_round`)
and skips a ⊥ round (nothing is booked, nobody pays, the hour still passes).
Every honest provider applies the same signed outcomes in the same order, so
every honest book, and every record it writes, is identical.

A provider's record of a round is the auctioneer's record
(:func:`peer.auctioneer.record.outcome_record`: vector digest, coin, trades,
charges, credits, every provider's signature on the outcome digest) plus a
``mirage`` section: the agreed bids themselves (signed by their slots), the
allocations, payments, fees, taxes, dividends and the resulting balances.
:func:`verify_records` checks a provider's whole run offline: every signature,
every vector digest against the listed bids, and every round recomputed from the
previous one, the listed bids and the coin.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from peer.auctioneer.agreement import BidVector
from peer.auctioneer.bids import SignedBid, Side, bid_problem
from peer.auctioneer.effects import Decided
from peer.auctioneer.outcome import Allocation as SignedAllocation
from peer.auctioneer.outcome import SignedOutcome
from peer.auctioneer.record import verify_record
from peer.auctioneer.vcg import SolverError
from peer.mirage.auctioneer_round import MiragePlan, MirageRoundContext, market_bid, terms_of, unpack_trade
from peer.mirage.currency import Account, CurrencyPolicy, open_accounts
from peer.mirage.model import MarketError, Rules


@dataclass(frozen=True)
class MarketSetup:
    """The genesis of a live market: mechanism, testbed, currency, who owns which bid slots."""

    rules: Rules
    policy: CurrencyPolicy
    capacity: int
    accounts: dict[str, tuple[int, int]]  # account key hex -> (baseline, shares), minor units
    slots: dict[str, str]  # slot key hex -> account key hex
    names: dict[str, str]  # account key hex -> the user's name (for people)


HISTORY = 200  # winners kept in the users' view: a view stays well inside one 64 KiB frame


def hour_of(round_no: int) -> int:
    """Round r clears at hour r - 1 (auctioneer rounds start at 1)."""
    return round_no - 1


class MirageBook:
    def __init__(self, setup: MarketSetup) -> None:
        self.setup = setup
        self.accounts: tuple[Account, ...] = open_accounts(setup.accounts)
        self.used: defaultdict[int, int] = defaultdict(int)
        self.busy: defaultdict[str, set[int]] = defaultdict(set)
        self.previous: dict[str, tuple[int, int, int, int]] = {}
        self.open_bids: list[list[Any]] = []  # the last decided round's bids that did not win (A1 shows them)
        self.winners: list[list[Any]] = []  # this round's winners: [slot, account, start, nodes, hours, price]
        # The last rounds' winners, [round, *winner], in every view: a user that missed a view still
        # learns what it won (it must never bid again for a block it already holds) and the price history.
        self.history: list[list[Any]] = []
        self.settled = 0  # every round up to this one has an output here

    # --- per round ---------------------------------------------------------------------------------

    def context(self, round_no: int) -> MirageRoundContext:
        rules, now = self.setup.rules, hour_of(round_no)
        error = None
        if self.settled != round_no - 1:
            error = f"round {self.settled + 1} has no output here yet"
        busy: tuple[tuple[str, tuple[int, ...]], ...] = ()
        if rules.no_overlap_per_user:
            busy = tuple((u, tuple(sorted(h for h in hs if h >= now))) for u, hs in sorted(self.busy.items()) if hs)
        return MirageRoundContext(
            round_no, rules, self.setup.policy, self.setup.capacity, now,
            tuple(self.used.get(h, 0) for h in range(now, now + rules.window_hours)), busy, self.accounts,
            dict(self.setup.slots), dict(self.previous), error,
        )

    def context_source(self, round_no: int) -> partial[MirageRoundContext]:
        """For ``RoundConfig.context``: read when the round's tasks start, not when its machine is made."""
        return partial(self.context, round_no)

    def apply(self, round_no: int, vector: BidVector, allocation: SignedAllocation,
              plan: MiragePlan | None = None) -> dict[str, Any]:
        """Book a decided round from its signed outcome; returns the record's ``mirage`` section."""
        if self.settled != round_no - 1:
            raise MarketError(f"round {round_no} applied after round {self.settled}")
        now = hour_of(round_no)
        bids = {}
        for signed in vector.bids:
            account = self.setup.slots.get(signed.bidder.hex())
            if account is not None and signed.side == Side.USER:
                try:
                    bids[signed.bidder.hex()] = market_bid(signed, now, account, 0)
                except MarketError:
                    continue
        winners = []
        for t in allocation.trades:
            start, nodes, hours = unpack_trade(t.quantity)
            slot, account = t.user.hex(), t.provider.hex()
            bid = bids.get(slot)
            if bid is None or (bid.nodes, bid.hours, bid.user) != (nodes, hours, account):
                raise MarketError(f"round {round_no}: a trade does not match an agreed bid")
            for h in range(start, start + hours):
                self.used[h] += nodes
            self.busy[account].update(range(start, start + hours))
            winners.append([slot, account, start, nodes, hours, bid.value])
        balances = dict(allocation.credits)
        self.accounts = tuple(Account(a.user, a.baseline, a.shares, balances.get(bytes.fromhex(a.user), 0))
                              for a in self.accounts)
        won = {w[0] for w in winners}
        self.previous = {slot: terms_of(b) for slot, b in bids.items()}
        self.open_bids = [[s, b.user, b.value, b.nodes, b.hours, b.earliest, b.latest]
                          for s, b in sorted(bids.items()) if s not in won]
        self.winners = sorted(winners, key=lambda w: (w[2], w[0]))
        self.history = (self.history + [[round_no, *w] for w in self.winners])[-HISTORY:]
        self.settled = round_no
        section: dict[str, Any] = {
            "round": round_no, "hour": now, "mechanism": self.setup.rules.name,
            "bids": [[b.bidder.hex(), b.value, b.quantity, b.sig.hex()] for b in vector.bids],
            "excluded": [b.hex() for b in vector.excluded],
            "allocations": self.winners,
            "charges": [[k.hex(), v] for k, v in allocation.charges],
            "balances": {a.user: a.balance for a in self.accounts},
        }
        if plan is not None and plan.clearing is not None and plan.settlement is not None:
            section["algorithm"] = plan.clearing.algorithm
            section["greedy_value"] = plan.clearing.greedy_value
            section["mip_value"] = plan.clearing.mip_value
            section["payments"] = [list(p) for p in plan.clearing.payments]
            section["fees"] = sorted([u, f] for u, f in plan.fees.items())
            section["taxes"] = [list(x) for x in plan.settlement.taxes if x[1]]
            section["dividends"] = [list(x) for x in plan.settlement.dividends if x[1]]
        return section

    def skip(self, round_no: int) -> dict[str, Any]:
        """A ⊥ round: nothing booked, nobody pays; the open bids stay what the last decided round left."""
        if self.settled != round_no - 1:
            raise MarketError(f"round {round_no} skipped after round {self.settled}")
        self.settled = round_no
        self.winners = []
        return {"round": round_no, "hour": hour_of(round_no), "mechanism": self.setup.rules.name,
                "balances": {a.user: a.balance for a in self.accounts}}

    def view(self, round_no: int, decided: bool) -> dict[str, Any]:
        """What users see after round ``round_no``: the calendar from the next hour, balances, the
        last rounds' winners (public in both auctions) and, under open bidding, the outstanding bids."""
        rules, nxt = self.setup.rules, hour_of(round_no) + 1
        return {
            "round": round_no, "output": "outcome" if decided else "bottom", "next_hour": nxt,
            "free": [self.setup.capacity - self.used.get(h, 0) for h in range(nxt, nxt + rules.window_hours)],
            "balances": {a.user: a.balance for a in self.accounts},
            "winners": self.history,
            "open": [] if rules.sealed else self.open_bids,
        }


def adopt(machine: Any, digest: bytes, signatures: Iterable[tuple[bytes, bytes]]) -> Decided | None:
    """This round decided, if a peer forwards every provider's signature on the outcome *this* machine
    computed and signed (its ``outcome``, set once it reached the sign phase); else ``None``.

    It closes the one gap where honest providers could part: a deviant that sends its outcome
    signature to only some of them.  Those that got it decide and forward the signatures; the
    others hold the same digest (they computed it), so all m valid signatures on it are the output.
    """
    outcome, vector = getattr(machine, "outcome", None), getattr(machine, "vector", None)
    if outcome is None or vector is None or outcome.digest() != digest:
        return None
    signed = SignedOutcome(outcome, tuple(sorted(signatures)))
    if signed.problem(machine.config.providers) is not None:
        return None
    return Decided(signed, vector)


# --- offline verification ----------------------------------------------------------------------------


def _bid_of(raw: list[Any], round_no: int) -> SignedBid:
    bidder, value, quantity, sig = raw
    bid = SignedBid(round_no, bytes.fromhex(bidder), Side.USER, int(value), int(quantity), bytes.fromhex(sig))
    problem = bid_problem(bid, round_no)
    if problem is not None:
        raise MarketError(f"bid of {bidder[:12]}: {problem}")
    return bid


def verify_records(records: Iterable[dict[str, Any]], setup: MarketSetup, providers: tuple[bytes, ...], k: int,
                   rounds: int) -> list[str]:
    """Every problem with one provider's records of rounds 1..``rounds`` (empty: they verify).

    A decided round must carry every provider's valid signature on its outcome digest, list
    bids whose signatures check and whose vector digest is the recorded one, and equal the
    round recomputed here from the previous rounds, those bids and the recorded coin.
    A ⊥ round is skipped (as the providers did).
    """
    by_round: dict[int, dict[str, Any]] = {}
    problems: list[str] = []
    for r in records:
        section = r.get("mirage") if isinstance(r, dict) else None
        if not isinstance(section, dict) or not isinstance(section.get("round"), int):
            problems.append("a record without its Mirage section")
            continue
        by_round[section["round"]] = r
    book = MirageBook(setup)
    for round_no in range(1, rounds + 1):
        record = by_round.get(round_no)
        if record is None:
            problems.append(f"round {round_no}: no record")
            return problems
        if record.get("output") != "outcome":
            book.skip(round_no)
            continue
        problem = verify_record(record)
        if problem is not None:
            problems.append(f"round {round_no}: {problem}")
            return problems
        if tuple(bytes.fromhex(p) for p in record["providers"]) != tuple(sorted(providers)):
            problems.append(f"round {round_no}: not signed by this cluster's providers")
            return problems
        try:
            section = record["mirage"]
            bids = tuple(sorted((_bid_of(b, round_no) for b in section["bids"]), key=lambda b: b.bidder))
            vector = BidVector(round_no, bids, tuple(bytes.fromhex(x) for x in section["excluded"]))
            if vector.digest().hex() != record["vector_digest"]:
                raise MarketError("the listed bids are not the agreed vector")
            plan = MiragePlan(vector, bytes.fromhex(record["coin"]), providers, k, book.context(round_no))
            allocation = plan.finish({t: plan.compute(t) for t in plan.tasks})
            recorded = [[t.user.hex(), t.provider.hex(), t.quantity] for t in allocation.trades]
            if (recorded != record["trades"] or [[a.hex(), v] for a, v in allocation.charges] != record["charges"]
                    or [[a.hex(), v] for a, v in allocation.credits] != record["credits"]):
                raise MarketError("recomputed from its bids and coin, the round clears differently")
            again = book.apply(round_no, vector, allocation, plan)
            if again["balances"] != section["balances"] or again["allocations"] != section["allocations"]:
                raise MarketError("the recorded balances or allocations are not the outcome's")
        except (MarketError, SolverError, KeyError, TypeError, ValueError) as exc:
            problems.append(f"round {round_no}: {exc}")
            return problems
    return problems


def setup_as_data(setup: MarketSetup) -> dict[str, Any]:
    return {"rules": asdict(setup.rules), "savings_tax": [setup.policy.savings_tax.numerator,
                                                         setup.policy.savings_tax.denominator],
            "capacity": setup.capacity, "accounts": {k: list(v) for k, v in setup.accounts.items()},
            "slots": setup.slots, "names": setup.names}
