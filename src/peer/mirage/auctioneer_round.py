"""A Mirage round as a round of the distributed auctioneer: signed bids in, the currency settled out.

The auctioneer agrees on a vector of :class:`~peer.auctioneer.bids.SignedBid`, at
most one per bidder key.  A Mirage user may hold several outstanding bids, so a
user owns a few *bid slots*: keys it derives from its own key
(:func:`slot_identity`), each holding at most one bid.  An equivocation is then
two different bids signed for one slot in one round, and the auctioneer's proof
of it works unchanged.  The bid's Mirage terms travel in the auctioneer's
fields, exactly: ``value`` is the total value in minor units and ``quantity``
packs the nodes, the block length and the start window relative to the round's
hour (:func:`pack_terms`).  Bids stay outstanding in Mirage, so a user signs
its outstanding bids again for every round.

:class:`MiragePlan` is the allocator (``allocators.make_plan("mirage", ...)``):
task ``greedy`` (the paper's clearing) and, under a MIP mechanism, task ``mip``,
each run by a group of at least k+1 providers (rotating with the round) and
cross-checked by data transfer.  ``finish``, run by every provider, keeps the
better of the two allocations (checked exactly first) and settles the currency
(:func:`peer.mirage.currency.settle`).  The output, in the auctioneer's
:class:`~peer.auctioneer.outcome.Allocation`, is what every provider signs:

* ``trades``: one per winning bid: (slot key, account key, start hour, nodes, hours packed);
* ``charges``: what each account paid this round (winning bids and fees);
* ``credits``: each account's balance after settlement (tax and dividends applied).

So the signed outcome digest covers the allocation, the payments and the
resulting balances.  Ties in the greedy order are broken by the common coin (a
coin-drawn order of the bid slots), so the whole round is a function of the
agreed vector, the coin and the market state (:class:`MirageRoundContext`),
which every honest provider holds identically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from peer.auctioneer.agreement import BidVector
from peer.auctioneer.allocators import PayloadError
from peer.auctioneer.bids import SignedBid, Side, sign_bid
from peer.auctioneer.outcome import Allocation as SignedAllocation
from peer.auctioneer.outcome import Trade
from peer.auctioneer.transfer import groups
from peer.auctioneer.vcg import SolverError
from peer.coin import CoinStream
from peer.mirage.clearing import _greedy_took_every_placeable_bid, admissible, check_allocation, greedy
from peer.mirage.currency import Account, CurrencyPolicy, Settlement, budgets, settle
from peer.mirage.model import MAX_BLOCK_HOURS, Allocation, Bid, Clearing, MarketError, RoundState, Rules
from peer.net.identity import Identity

MAX_NODES = 1023  # 10 bits of the packed quantity
MAX_OFFSET = 127  # 7 bits each: start window offsets from the round's hour (windows are at most 104 hours)
_SLOT = b"peer/mirage/v1/slot"
_ORDER = b"mirage/tie-break"


# --- a Mirage bid in an auctioneer bid ---------------------------------------------------------------


def pack_terms(nodes: int, hours: int, earliest_off: int, latest_off: int) -> int:
    """Nodes (10 bits), hours - 1 (5 bits), earliest and latest start offsets (7 bits each): < 2**29."""
    if not (1 <= nodes <= MAX_NODES and 1 <= hours <= MAX_BLOCK_HOURS and 0 <= earliest_off <= latest_off <= MAX_OFFSET):
        raise MarketError(f"bid terms out of range: {nodes} nodes, {hours} h, offsets {earliest_off}..{latest_off}")
    return nodes | (hours - 1) << 10 | earliest_off << 15 | latest_off << 22


def unpack_terms(quantity: int) -> tuple[int, int, int, int]:
    nodes, hours = quantity & 0x3FF, (quantity >> 10 & 0x1F) + 1
    earliest, latest = quantity >> 15 & 0x7F, quantity >> 22 & 0x7F
    if quantity >> 29 or nodes < 1 or earliest > latest:
        raise MarketError(f"not a Mirage bid: quantity {quantity}")
    return nodes, hours, earliest, latest


def slot_identity(user: Identity, slot: int) -> Identity:
    """The key of a user's bid slot ``slot``: derived from the user's (deterministic) signature,
    so only the user can compute it, and the public half can be registered ahead of time."""
    label = _SLOT + slot.to_bytes(2, "big")
    return Identity.from_seed(hashlib.sha256(label + user.sign(label)).digest())


def sign_mirage_bid(slot: Identity, round_no: int, now: int, bid: Bid) -> SignedBid:
    """``bid`` (absolute hours) as a signed auctioneer bid of ``slot`` for the round clearing at hour ``now``.

    Raises MarketError if the bid cannot start in this round's reach (latest start passed, or the
    earliest start more than MAX_OFFSET hours ahead: sign it again in a later round).
    """
    if bid.latest < now:
        raise MarketError(f"bid {bid.bid_id}: its latest start {bid.latest} has passed")
    earliest = max(bid.earliest, now) - now
    latest = min(bid.latest - now, MAX_OFFSET)
    if earliest > MAX_OFFSET:
        raise MarketError(f"bid {bid.bid_id}: starts {earliest} hours ahead, beyond what a round can place")
    return sign_bid(slot, round_no, Side.USER, bid.value, pack_terms(bid.nodes, bid.hours, earliest, latest))


def market_bid(signed: SignedBid, now: int, account: str, seq: int) -> Bid:
    """The Mirage bid a signed slot bid stands for (``bid_id`` is the slot key in hex)."""
    nodes, hours, earliest, latest = unpack_terms(signed.quantity)
    return Bid(signed.bidder.hex(), account, signed.value, nodes, hours, now + earliest, now + latest, seq)


def terms_of(bid: Bid) -> tuple[int, int, int, int]:
    """What makes a resubmitted bid "the same bid" for the fee: its block, its last start, its value
    (its earliest start moves with the window)."""
    return bid.nodes, bid.hours, bid.latest, bid.value


def pack_trade(start: int, nodes: int, hours: int) -> int:
    return start << 16 | nodes << 6 | hours


def unpack_trade(quantity: int) -> tuple[int, int, int]:
    return quantity >> 16, quantity >> 6 & 0x3FF, quantity & 0x3F


# --- the round's market state ------------------------------------------------------------------------


@dataclass(frozen=True)
class MirageRoundContext:
    """Everything a Mirage round needs besides the agreed bids and the coin; identical at every honest provider.

    ``accounts`` are keyed by the account key in hex; ``slots`` maps each registered slot
    key (hex) to its account; ``previous`` holds each slot's bid terms in the last decided
    round (a bid whose terms changed, or that is new, pays the fee).  ``error`` is set when
    this provider cannot clear the round (its previous round has no output yet): the round is ⊥.
    """

    round: int
    rules: Rules
    policy: CurrencyPolicy
    capacity: int
    now: int
    used: tuple[int, ...]
    busy: tuple[tuple[str, tuple[int, ...]], ...]
    accounts: tuple[Account, ...]
    slots: dict[str, str] = field(default_factory=dict)
    previous: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RoundInputs:
    state: RoundState
    ordered: tuple[Bid, ...]  # admissible, in greedy order
    fees: dict[str, int]
    slot_of: dict[str, bytes]  # bid id (slot hex) -> slot key


def round_inputs(ctx: MirageRoundContext, vector: BidVector, coin: bytes) -> RoundInputs:
    """The round's clearing inputs from the agreed vector: deterministic, total on any vector.

    A bid from an unregistered key, with terms that do not decode, or asking for more nodes
    than the testbed has is left out (the same way at every provider); a bid whose account
    cannot pay the fee is left out too, in the coin's order.
    """
    if ctx.round != vector.round:
        raise SolverError(f"market state is for round {ctx.round}, the vector for round {vector.round}")
    bidders = sorted(b.bidder for b in vector.bids)
    seq = {b: i + 1 for i, b in enumerate(CoinStream(coin, _ORDER).shuffled(bidders))}
    balance = {a.user: a.balance for a in ctx.accounts}
    fees: dict[str, int] = {}
    bids: list[Bid] = []
    slot_of: dict[str, bytes] = {}
    for signed in sorted(vector.bids, key=lambda b: seq[b.bidder]):
        account = ctx.slots.get(signed.bidder.hex())
        if account is None or signed.side != Side.USER or account not in balance:
            continue
        try:
            bid = market_bid(signed, ctx.now, account, seq[signed.bidder])
        except MarketError:
            continue
        if bid.nodes > ctx.capacity:
            continue
        if ctx.previous.get(bid.bid_id) != terms_of(bid) and ctx.rules.fee:
            if balance[account] - fees.get(account, 0) < ctx.rules.fee:
                continue
            fees[account] = fees.get(account, 0) + ctx.rules.fee
        bids.append(bid)
        slot_of[bid.bid_id] = signed.bidder
    state = RoundState(ctx.now, ctx.capacity, ctx.used, tuple(sorted(budgets(ctx.accounts, fees).items())), ctx.busy)
    return RoundInputs(state, tuple(admissible(bids, ctx.rules)), fees, slot_of)


# --- task payloads -----------------------------------------------------------------------------------


def encode_allocations(allocations: Sequence[Allocation], slot_of: dict[str, bytes]) -> bytes:
    """Each allocation as its slot key and start hour, in canonical order (equal answers, equal bytes)."""
    return b"".join(slot_of[a.bid_id] + a.start.to_bytes(8, "big") for a in sorted(allocations, key=lambda a: a.bid_id))


def decode_allocations(raw: bytes, by_id: dict[str, Bid]) -> list[Allocation]:
    if len(raw) % 40:
        raise PayloadError("allocation payload is not a whole number of records")
    out, seen = [], set()
    for off in range(0, len(raw), 40):
        bid = by_id.get(raw[off : off + 32].hex())
        if bid is None or bid.bid_id in seen:
            raise PayloadError("allocation of an unknown or repeated bid")
        seen.add(bid.bid_id)
        out.append(Allocation(bid.bid_id, bid.user, int.from_bytes(raw[off + 32 : off + 40], "big"), bid.hours,
                              bid.nodes, bid.value))
    return out


NO_CANDIDATE = b"\x00"  # the MIP task's answer when it did not run (greedy was optimal) or found nothing


class MiragePlan:
    """The allocator of one Mirage round (see the module docstring)."""

    def __init__(self, vector: BidVector, coin: bytes, providers: Sequence[bytes], k: int,
                 context: MirageRoundContext | Callable[[], MirageRoundContext] | None) -> None:
        self.vector, self.coin = vector, coin
        # A provider hands a callable: the state is read when the tasks start, after the previous round ended.
        self.context = context() if callable(context) else context
        grouped = groups(providers, k)
        p = len(grouped)
        self.tasks: dict[str, tuple[bytes, ...]] = {"greedy": grouped[vector.round % p]}
        if self.context is not None and self.context.rules.mip:
            self.tasks["mip"] = grouped[(vector.round + 1) % p]  # beside greedy, on another group when p > 1
        self._inputs: RoundInputs | None = None
        self.clearing: Clearing | None = None
        self.settlement: Settlement | None = None
        self.fees: dict[str, int] = {}

    def inputs(self) -> RoundInputs:
        if self._inputs is None:
            ctx = self.context
            if ctx is None:
                raise SolverError("no Mirage market state for this round")
            if ctx.error is not None:
                raise SolverError(ctx.error)
            try:
                self._inputs = round_inputs(ctx, self.vector, self.coin)
            except MarketError as exc:
                raise SolverError(f"market state: {exc}") from None
        return self._inputs

    def compute(self, task: str) -> bytes:
        inp = self.inputs()
        assert self.context is not None
        rules = self.context.rules
        if task == "greedy":
            return encode_allocations(greedy(inp.state, inp.ordered, rules), inp.slot_of)
        if task == "mip":
            chosen = greedy(inp.state, inp.ordered, rules)
            if _greedy_took_every_placeable_bid(inp.state, inp.ordered, chosen, rules):
                return NO_CANDIDATE  # nothing is worth more than greedy's answer: no solver run
            from peer.mirage.mip import solve_mip

            try:
                candidate = solve_mip(inp.state, inp.ordered, rules)
            except (ValueError, RuntimeError) as exc:
                raise SolverError(f"MIP: {exc}") from None
            return NO_CANDIDATE if candidate is None else b"\x01" + encode_allocations(candidate, inp.slot_of)
        raise KeyError(task)

    def finish(self, results: dict[str, bytes]) -> SignedAllocation:
        inp = self.inputs()
        assert self.context is not None
        ctx = self.context
        by_id = {b.bid_id: b for b in inp.ordered}
        chosen = decode_allocations(results["greedy"], by_id)
        try:
            check_allocation(inp.state, inp.ordered, chosen, ctx.rules)
        except MarketError as exc:  # k+1 providers agreed on it, so at least one honest one computed it
            raise PayloadError(f"greedy allocation does not check: {exc}") from None
        greedy_value = sum(a.price for a in chosen)
        algorithm, mip_value = "greedy", None
        raw = results.get("mip", NO_CANDIDATE)
        if raw != NO_CANDIDATE:
            if raw[:1] != b"\x01":
                raise PayloadError("malformed MIP answer")
            candidate = decode_allocations(raw[1:], by_id)
            try:
                check_allocation(inp.state, inp.ordered, candidate, ctx.rules)
            except MarketError:
                candidate = []  # a solver answer off by its tolerance: greedy's stands (as in clearing.clear)
            mip_value = sum(a.price for a in candidate) if candidate else None
            if mip_value is not None and mip_value > greedy_value:
                chosen, algorithm = candidate, "mip"
        payments: dict[str, int] = {}
        for a in chosen:
            payments[a.user] = payments.get(a.user, 0) + a.price
        chosen = sorted(chosen, key=lambda a: (a.start, a.bid_id))
        self.clearing = Clearing(tuple(chosen), tuple(sorted(payments.items())), algorithm, greedy_value, mip_value)
        try:
            self.settlement = settle(ctx.accounts, payments, inp.fees, ctx.policy)
        except MarketError as exc:  # budgets bound every winner, so only a corrupt state gets here
            raise PayloadError(f"settlement: {exc}") from None
        self.fees = dict(inp.fees)
        trades = [Trade(inp.slot_of[a.bid_id], bytes.fromhex(a.user), pack_trade(a.start, a.nodes, a.hours))
                  for a in chosen]
        charges = {bytes.fromhex(u): v for u, v in self.settlement.debits}
        credits = {bytes.fromhex(a.user): a.balance for a in self.settlement.accounts}
        return SignedAllocation.build(trades, charges, credits)
