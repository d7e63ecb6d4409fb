"""Shared settings and strategies for the fuzz suite.

Every test here is derandomized (the same examples on every run, so CI is
deterministic) and has no deadline (CI machines vary); ``database=None`` keeps
a developer's local example database from changing what CI runs.  Example
counts are chosen so the whole directory stays well under a minute.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

_BASE = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)


def fuzz(max_examples: int, **kwargs: Any) -> settings:
    """The suite's settings with ``max_examples`` examples."""
    return settings(_BASE, max_examples=max_examples, **kwargs)


# Integers at and around every boundary the decoders care about.
BOUNDARY_INTS = [
    -(2**64), -(2**63) - 1, -(2**63), -(2**31), -1, 0, 1, 2, 255, 256, 0xFFFF, 0x10000,
    2**32 - 1, 2**32, 2**53, 2**63 - 2, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**70,
]
#: Integers msgpack can carry (msgspec refuses to encode anything wider).
MSGPACK_INTS = [i for i in BOUNDARY_INTS if -(2**63) <= i <= 2**64 - 1]

msgpack_ints = st.sampled_from(MSGPACK_INTS) | st.integers(-(2**63), 2**64 - 1)
floats = st.sampled_from([0.0, -0.0, 0.5, -1.0, 1e9, 1e9 - 1, float("inf"), float("-inf"), float("nan")]) | st.floats()

#: Scalars of every msgpack type, with the boundary values first.
msgpack_scalars = st.one_of(
    st.none(), st.booleans(), msgpack_ints, floats, st.text(max_size=40), st.binary(max_size=80),
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)


#: Any value msgspec can encode as msgpack (nested arrays and maps included).
msgpack_values = st.recursive(msgpack_scalars, _containers, max_leaves=12)

def mutate_bytes(draw: Any, raw: bytes, *, max_ops: int = 4) -> bytes:
    """Flip, set, delete, insert, duplicate or truncate a few bytes of ``raw``.

    ``draw`` is a composite's ``draw`` or ``st.data().draw``.
    """
    out = bytearray(raw)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["flip", "set", "delete", "insert", "dup", "cut"]))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        if op == "flip" and out:
            out[at] ^= draw(st.integers(1, 255))
        elif op == "set" and out:
            out[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x90, 0xC0, 0xC1, 0xC4, 0xCF, 0xD3, 0xDC, 0xDE, 0xFF]))
        elif op == "delete" and out:
            del out[at:at + draw(st.integers(1, 8))]
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "dup" and out:
            end = draw(st.integers(at, len(out)))
            out[at:at] = out[at:end]
        else:
            del out[at:]
    return bytes(out)
