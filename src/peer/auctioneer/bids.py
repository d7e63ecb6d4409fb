"""Signed bids and the proof that a bidder equivocated.

A bid binds the round, the side (a user buying bandwidth or a provider selling
it), the value per unit in minor money units and the quantity in bandwidth
units, and is signed by the bidder's Ed25519 key.  Two different validly signed
bids from one bidder for one round are an :class:`Equivocation`: anyone can
check it offline, so the bidder is excluded (given the neutral bid) everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property

from peer.auctioneer.signing import signature_ok
from peer.net.identity import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, Identity

_BID = b"peer/auctioneer/v1/bid"
MAX_VALUE = 10**12  # minor units per bandwidth unit
MAX_QUANTITY = 10**9  # bandwidth units
MAX_ROUND = 2**63 - 1


class Side(IntEnum):
    USER = 0  # buys: value is the most it pays per unit, quantity its demand
    PROVIDER = 1  # sells: value is its cost per unit, quantity its capacity


_SIDES = (Side.USER, Side.PROVIDER)


@dataclass(frozen=True)
class SignedBid:
    round: int
    bidder: bytes  # 32-byte Ed25519 public key
    side: Side
    value: int
    quantity: int
    sig: bytes

    def signed_bytes(self) -> bytes:
        return self._signed

    @cached_property
    def _signed(self) -> bytes:  # immutable: built once for the signature check and the digest
        return bid_bytes(self.round, self.bidder, self.side, self.value, self.quantity)

    @cached_property
    def _digest(self) -> bytes:
        # The bid *is* its signed content: the signature only proves it, so two
        # signatures over the same content are the same bid, never an equivocation.
        return hashlib.sha256(self.signed_bytes()).digest()

    def digest(self) -> bytes:
        return self._digest

    def with_signature(self, sig: bytes) -> SignedBid:
        """The same content (so the same bid, the same digest) under another signature."""
        out = SignedBid(self.round, self.bidder, self.side, self.value, self.quantity, sig)
        for cached in ("_signed", "_digest"):  # what is derived from the content alone carries over
            if cached in self.__dict__:
                out.__dict__[cached] = self.__dict__[cached]
        return out


def bid_bytes(round_no: int, bidder: bytes, side: int, value: int, quantity: int) -> bytes:
    return (
        len(_BID).to_bytes(1, "big") + _BID + round_no.to_bytes(8, "big") + bidder
        + bytes((int(side),)) + value.to_bytes(8, "big") + quantity.to_bytes(8, "big")
    )


def sign_bid(identity: Identity, round_no: int, side: Side, value: int, quantity: int) -> SignedBid:
    check_fields(round_no, side, value, quantity)
    data = bid_bytes(round_no, identity.public_key, side, value, quantity)
    return SignedBid(round_no, identity.public_key, Side(side), value, quantity, identity.sign(data))


def check_fields(round_no: int, side: int, value: int, quantity: int) -> None:
    """Raise ValueError unless every field is in range (the cheap checks, before any signature)."""
    problem = field_problem(round_no, side, value, quantity)
    if problem is not None:
        raise ValueError(problem)


def field_problem(round_no: int, side: int, value: int, quantity: int) -> str | None:
    """Which field is out of range, or ``None``.  Written out, not looped: every provider runs it on every bid."""
    if type(round_no) is not int or not 0 <= round_no <= MAX_ROUND:
        return f"round out of range: {round_no!r}"
    if type(value) is not int or not 0 <= value <= MAX_VALUE:
        return f"value out of range: {value!r}"
    if type(quantity) is not int or not 0 <= quantity <= MAX_QUANTITY:
        return f"quantity out of range: {quantity!r}"
    if side not in _SIDES:
        return f"unknown side {side!r}"
    return None


def bid_problem(bid: SignedBid, round_no: int) -> str | None:
    """Why ``bid`` is not a valid bid for ``round_no``, or ``None`` (the signature is checked last)."""
    shared = _SHARED.get()
    if shared is None:
        return _bid_problem(bid, round_no)
    held = shared.checked.get(id(bid))
    if held is not None and held[0] is bid and held[1] == round_no:
        return held[2]
    problem = _bid_problem(bid, round_no)
    shared.checked[id(bid)] = (bid, round_no, problem)  # holds the bid, so its id is not reused
    return problem


def _bid_problem(bid: SignedBid, round_no: int) -> str | None:
    if not isinstance(bid, SignedBid):
        return "not a bid"
    if bid.round != round_no:
        return f"bid for round {bid.round}, not {round_no}"
    problem = field_problem(bid.round, bid.side, bid.value, bid.quantity)
    if problem is not None:
        return problem
    if not isinstance(bid.bidder, bytes) or len(bid.bidder) != PUBLIC_KEY_BYTES:
        return "bidder is not a 32-byte key"
    if not isinstance(bid.sig, bytes) or len(bid.sig) != SIGNATURE_BYTES:
        return "signature is not 64 bytes"
    if not _signature_ok(bid):
        return "bad signature"
    return None


class _SharedChecks:
    """What a simulator running many providers in one process checks once for all of them.

    ``sigs``: (bidder, bid digest, signature) triples that verified: the same bytes verify the
    same way for every provider.  ``checked``: ``bid_problem``'s answer for a bid *object* and
    round; the simulator hands every provider the same immutable bid objects, and the answer is a
    pure function of them.  Both are exact; neither exists outside ``shared_verification``.
    """

    __slots__ = ("checked", "sigs")

    def __init__(self) -> None:
        self.sigs: set[tuple[bytes, bytes, bytes]] = set()
        self.checked: dict[int, tuple[SignedBid, int, str | None]] = {}


#: ``None`` (the default, and always in a provider process or a node): every check is made.
_SHARED: ContextVar[_SharedChecks | None] = ContextVar("shared_bid_checks", default=None)


@contextmanager
def shared_verification() -> Iterator[None]:
    """Inside the block, bid checks are shared between the providers of this process (a simulator)."""
    token = _SHARED.set(_SharedChecks())
    try:
        yield
    finally:
        _SHARED.reset(token)


def _signature_ok(bid: SignedBid) -> bool:
    shared = _SHARED.get()
    if shared is None:
        return signature_ok(bid.bidder, bid.signed_bytes(), bid.sig)
    key = (bid.bidder, bid.digest(), bid.sig)
    if key in shared.sigs:
        return True
    ok = signature_ok(bid.bidder, bid.signed_bytes(), bid.sig)
    if ok:
        shared.sigs.add(key)
    return ok


@dataclass(frozen=True, slots=True)
class Equivocation:
    """Two different signed bids of one bidder for one round, in canonical (digest) order."""

    first: SignedBid
    second: SignedBid

    @property
    def bidder(self) -> bytes:
        return self.first.bidder

    @staticmethod
    def of(a: SignedBid, b: SignedBid) -> Equivocation:
        return Equivocation(a, b) if a.digest() < b.digest() else Equivocation(b, a)

    def problem(self, round_no: int) -> str | None:
        """``None`` iff this really proves that one bidder signed two different bids for ``round_no``."""
        if self.first.bidder != self.second.bidder:
            return "the two bids are from different bidders"
        if self.first.digest() >= self.second.digest():
            return "not two different bids in canonical order"
        return bid_problem(self.first, round_no) or bid_problem(self.second, round_no)
