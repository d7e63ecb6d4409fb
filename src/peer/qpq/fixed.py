"""Exact declarations: preferences as 32-bit fixed-point integers.

A declared preference is an integer ``v`` in ``[0, ONE)`` standing for
``v / ONE`` in [0, 1).  Integers go on the wire and into commitments (fixed
width, one spelling per value), so every member hashes and compares exactly
the same thing.  Floats appear only where statistics are computed (the
goodness-of-fit test) and where a node normalises its own raw value; neither
needs agreement across machines beyond the accept/reject decision.
"""

from __future__ import annotations

import math

BITS = 32
ONE = 1 << BITS
MAX_VALUE = ONE - 1
VALUE_BYTES = BITS // 8


def to_fixed(p: float) -> int:
    """The fixed-point value of a probability ``p`` (clamped into [0, 1))."""
    if not p > 0.0:  # also catches NaN: a broken CDF declares 0, never crashes
        return 0
    return min(int(p * ONE), MAX_VALUE)


def to_float(v: int) -> float:
    return v / ONE


def value_ok(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_VALUE


def iroot(x: int, n: int) -> int:
    """floor(x ** (1/n)) for integers x >= 0, n >= 1, exactly.

    Small roots (ours are below 2**32) start from a float estimate; large ones
    from Newton's iteration from above.  Exact big-integer corrections finish
    either way, so the result is the same on every platform (C ``pow`` is not
    guaranteed to round alike everywhere).
    """
    if x < 0 or n < 1:
        raise ValueError("iroot needs x >= 0 and n >= 1")
    if n == 1 or x < 2:
        return x
    bits = x.bit_length()
    if bits // n < 50:
        shift = max(0, bits - 1000)  # log2 of x without overflowing a float
        y = int(2.0 ** ((math.log2(x >> shift) + shift) / n))
    else:
        y = 1 << -(-bits // n)  # >= the root; Newton decreases monotonically to the floor
        while True:
            z = ((n - 1) * y + x // y ** (n - 1)) // n
            if z >= y:
                break
            y = z
    while y > 0 and y**n > x:
        y -= 1
    while (y + 1) ** n <= x:
        y += 1
    return y


def beta_quantile(u: int, shape: int) -> int:
    """The Beta(shape, 1) quantile of the fixed-point uniform ``u``: floor(ONE * (u/ONE) ** (1/shape)).

    Beta(shape, 1) has CDF x**shape, so its quantile is u**(1/shape).  Computed
    as the integer ``shape``-th root of ``u * ONE**(shape-1)``: exact.
    """
    if not value_ok(u):
        raise ValueError(f"not a fixed-point value: {u!r}")
    if shape < 1:
        raise ValueError("shape must be >= 1")
    if shape == 1:
        return u
    return iroot(u << (BITS * (shape - 1)), shape)


def beta_cdf(v: int, shape: int) -> int:
    """The Beta(shape, 1) CDF of the fixed-point ``v``: floor(ONE * (v/ONE) ** shape), exactly.

    The probability integral transform of a cluster winner's value: if ``v`` is
    the max of ``shape`` uniforms, the result is uniform.
    """
    if shape < 1:
        raise ValueError("shape must be >= 1")
    if shape == 1:
        return v
    return (v**shape) >> (BITS * (shape - 1))
