"""The outcome of one run of any mechanism, and its JSON form.

Amounts are minor units: ``int`` for one run, ``Fraction`` for expectations
(the tree-averaged CRM).  JSON numbers are written from exact Decimals, never
from binary floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

import msgspec

from peer.money import SCALE, to_decimal

Amount = int | Fraction


@dataclass
class NodeReport:
    value: int
    inviters: list[str] = field(default_factory=list)
    invitees: list[str] = field(default_factory=list)  # local-auction participants
    parent: str | None = None
    bought_at: int | None = None
    sold_at: int | None = None


@dataclass(frozen=True)
class Hop:
    hop: int
    seller: str
    buyer: str
    price: int


@dataclass
class RunResult:
    mechanism: str
    seller: str
    seed: int
    nodes: dict[str, NodeReport]
    hops: list[Hop]
    winner: str | None
    utilities: dict[str, Amount]
    revenue: Amount
    messages: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def role(self, node: str) -> str:
        if node == self.seller:
            return "seller"
        if node == self.winner:
            return "winner"
        report = self.nodes[node]
        if report.bought_at is not None and report.sold_at is not None:
            return "local seller"
        return "other"

    def resale_path(self) -> list[str]:
        return [self.seller, *(h.buyer for h in self.hops)]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mechanism": self.mechanism,
            "seller": self.seller,
            "seed": self.seed,
            "nodes": {
                name: {
                    "value": amount_to_decimal(r.value),
                    "inviters": r.inviters,
                    "invitees": r.invitees,
                    "parent": r.parent,
                }
                for name, r in self.nodes.items()
            },
            "hops": [
                {"hop": h.hop, "seller": h.seller, "buyer": h.buyer, "price": amount_to_decimal(h.price)}
                for h in self.hops
            ],
            "winner": self.winner,
            "utilities": {n: amount_to_decimal(u) for n, u in self.utilities.items()},
            "revenue": amount_to_decimal(self.revenue),
            "messages": dict(self.messages),
        }
        out.update(self.extra)
        return out


def amount_to_decimal(amount: Amount) -> Decimal:
    """Minor units to whole units, exact for ints, 12 decimal places for expectations."""
    if isinstance(amount, int):
        return to_decimal(amount)
    with localcontext() as ctx:
        ctx.prec = 40
        dec = Decimal(amount.numerator) / Decimal(amount.denominator) / SCALE
        dec = dec.quantize(Decimal(1).scaleb(-12))
    return dec.normalize() if dec != 0 else Decimal(0)


_ENCODER = msgspec.json.Encoder(decimal_format="number")


def _default(obj: Any) -> Any:
    if isinstance(obj, Fraction):
        return amount_to_decimal(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


def dumps(data: Any, *, indent: int = 2) -> str:
    """JSON with Decimals written as exact numbers."""
    raw = msgspec.json.Encoder(decimal_format="number", enc_hook=_default).encode(data)
    return msgspec.json.format(raw, indent=indent).decode() if indent else raw.decode()


def utilities_from_hops(
    seller: str, values: dict[str, int], hops: list[Hop], winner: str | None
) -> tuple[dict[str, int], int]:
    """Quasi-linear utilities of a resale path: (per node, seller's revenue).

    The winner gets value - purchase price; each local seller sale - purchase;
    the seller her revenue (or her reserve value if she keeps the item);
    everyone else 0.
    """
    utilities = {n: 0 for n in values}
    bought = {h.buyer: h.price for h in hops}
    sold = {h.seller: h.price for h in hops}
    for node in set(bought) | set(sold):
        if node == seller:
            continue
        if node in sold:
            utilities[node] = sold[node] - bought[node]
    revenue = sold.get(seller, 0)
    utilities[seller] = revenue if hops else values[seller]
    if winner is not None and winner != seller:
        utilities[winner] = values[winner] - bought[winner]
    return utilities, revenue
