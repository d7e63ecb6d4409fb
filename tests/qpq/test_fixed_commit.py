"""Fixed-point values, exact Beta maps, commitments and the round's hashes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peer.qpq.commit import (
    NONCE_BYTES,
    commit_digest,
    commit_ok,
    derive_nonce,
    replacement_value,
    sim_secret,
    tie_key,
    transcript_hash,
)
from peer.qpq.fixed import MAX_VALUE, ONE, beta_cdf, beta_quantile, iroot, to_fixed

NONCE = bytes(range(NONCE_BYTES))


@given(st.integers(min_value=0, max_value=2**4000), st.integers(min_value=1, max_value=300))
def test_iroot_is_the_exact_floor_root(x: int, n: int) -> None:
    y = iroot(x, n)
    assert y**n <= x < (y + 1) ** n


@given(st.integers(min_value=0, max_value=MAX_VALUE), st.integers(min_value=1, max_value=64))
def test_beta_quantile_inverts_the_cdf(u: int, shape: int) -> None:
    y = beta_quantile(u, shape)
    assert 0 <= y <= MAX_VALUE
    # y is the largest fixed-point value whose CDF does not exceed u (up to the floor in beta_cdf).
    assert beta_cdf(y, shape) <= u
    assert y == MAX_VALUE or (y + 1) ** shape > u << (32 * (shape - 1))
    assert abs(y / ONE - (u / ONE) ** (1 / shape)) < 1e-8


def test_to_fixed_clamps() -> None:
    assert to_fixed(0.0) == 0 and to_fixed(-1.0) == 0 and to_fixed(math.nan) == 0
    assert to_fixed(1.0) == MAX_VALUE and to_fixed(0.5) == ONE // 2


def test_commitment_opens_only_with_its_value_nonce_member_round_and_level() -> None:
    d = commit_digest("s", 3, 1, "alice", 12345, NONCE)
    assert commit_ok(d, "s", 3, 1, "alice", 12345, NONCE)
    assert not commit_ok(d, "s", 3, 1, "alice", 12346, NONCE)  # another value
    assert not commit_ok(d, "s", 3, 1, "alice", 12345, bytes(NONCE_BYTES))  # another nonce
    assert not commit_ok(d, "s", 3, 1, "bob", 12345, NONCE)  # someone else's commitment
    assert not commit_ok(d, "s", 4, 1, "alice", 12345, NONCE)  # another round
    assert not commit_ok(d, "s", 3, 2, "alice", 12345, NONCE)  # another level
    assert not commit_ok(d, "t", 3, 1, "alice", 12345, NONCE)  # another stream
    assert not commit_ok(d, "s", 3, 1, "alice", ONE, NONCE)  # out of range: False, not an exception
    assert not commit_ok(d, "s", 3, 1, "alice", 12345, b"short")


def test_commitment_fields_cannot_slide_into_each_other() -> None:
    # Length prefixes: ("ab", member "c") and ("a", member "bc") hash differently.
    assert commit_digest("ab", 0, 1, "c", 1, NONCE) != commit_digest("a", 0, 1, "bc", 1, NONCE)


def test_commit_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError):
        commit_digest("s", 0, 1, "a", -1, NONCE)
    with pytest.raises(ValueError):
        commit_digest("s", 0, 1, "a", 1, b"x")


def test_nonces_are_private_and_per_round() -> None:
    a, b = sim_secret(1, "a"), sim_secret(1, "b")
    assert derive_nonce(a, "s", 0, 1) != derive_nonce(b, "s", 0, 1)
    assert derive_nonce(a, "s", 0, 1) != derive_nonce(a, "s", 1, 1)
    assert derive_nonce(a, "s", 0, 1) != derive_nonce(a, "s", 0, 2)
    assert len(derive_nonce(a, "s", 0, 1)) == NONCE_BYTES


def _transcript(values: list[int | None]) -> bytes:
    slots = [f"m{i}" for i in range(len(values))]
    nonces = [NONCE if v is not None else None for v in values]
    return transcript_hash("s", 0, 1, "c0", slots, slots, values, nonces, [1] * len(values))


def test_replacement_depends_on_every_reveal_and_the_slot() -> None:
    base = _transcript([1, 2, 3])
    assert replacement_value(base, "m0") == replacement_value(_transcript([1, 2, 3]), "m0")
    assert replacement_value(base, "m0") != replacement_value(_transcript([1, 2, 4]), "m0")
    assert replacement_value(base, "m0") != replacement_value(_transcript([1, 2, None]), "m0")
    assert replacement_value(base, "m0") != replacement_value(base, "m1")
    assert tie_key(base, "m0") != tie_key(base, "m1")


def test_winner_level_replacement_is_beta_distributed() -> None:
    # The mean of Beta(m, 1) is m/(m+1): check it on 4000 hashed draws.
    m = 8
    draws = [replacement_value(_transcript([i]), "m0", m) / ONE for i in range(4000)]
    assert abs(sum(draws) / len(draws) - m / (m + 1)) < 0.01
    assert replacement_value(_transcript([7]), "m0", 1) == replacement_value(_transcript([7]), "m0")
