"""Exact money.

Amounts are integers in minor units (``SCALE`` units per whole unit), on the
wire, in the ledger and in every comparison.  Decimals appear only at the edges:
parsing a scenario and printing a result.  A binary float never holds money.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

#: Minor units per whole unit: six decimal places, enough for the paper's
#: continuous values (sampled on a micro grid) and for any real currency.
SCALE = 10**6
_QUANTUM = Decimal(1).scaleb(-6)

Money = int
MAX_DIGITS = 12  # whole-unit digits: 10^12 units x 10^6 minor units still fit the ledger's 63-bit fields


class MoneyError(ValueError):
    """A value that cannot be an exact amount of money."""


def parse_money(raw: object) -> Money:
    """Turn a scenario value (int, decimal string, or a float literal) into minor units.

    Floats from TOML are converted through their shortest repr, so ``0.7``
    means exactly 0.7; more than six decimal places is an error, not a rounding.
    """
    if isinstance(raw, bool):
        raise MoneyError(f"expected a number, got {raw!r}")
    if isinstance(raw, int):
        dec = Decimal(raw)
    elif isinstance(raw, float):
        dec = Decimal(repr(raw))
    elif isinstance(raw, (str, Decimal)):
        try:
            dec = Decimal(raw)
        except InvalidOperation:
            raise MoneyError(f"not a number: {raw!r}") from None
    else:
        raise MoneyError(f"expected a number, got {type(raw).__name__}")
    if not dec.is_finite():
        raise MoneyError(f"not a finite number: {raw!r}")
    # Bound the size before any arithmetic: a huge exponent overflows Decimal or stalls it.
    if dec != 0 and dec.adjusted() > MAX_DIGITS:
        raise MoneyError(f"too large (at most {MAX_DIGITS} digits before the point): {raw!r}")
    if dec < 0:
        raise MoneyError(f"negative amount: {raw!r}")
    if dec != 0 and (dec.adjusted() < -6 or dec != dec.quantize(_QUANTUM)):
        raise MoneyError(f"more than 6 decimal places: {raw!r}")
    units = dec.quantize(_QUANTUM) * SCALE  # at most 25 digits: exact in the default 28-digit context
    return int(units)


def to_decimal(units: int) -> Decimal:
    """Minor units as an exact Decimal in whole units (trailing zeros dropped)."""
    dec = Decimal(units).scaleb(-6)
    return dec.quantize(Decimal(1)) if dec == dec.to_integral_value() else dec.normalize()


def format_money(units: int | None) -> str:
    return "" if units is None else str(to_decimal(units))


def describe_amount(value: object) -> str:
    """An amount for a message: whole units if it is one, else exactly what was sent
    (messages about refused input must not fail on the input they describe)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return format_money(value)
    return repr(value)
