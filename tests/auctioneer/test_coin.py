"""Property 4: the commit-reveal common coin."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer.coin import CoinSession, CoinStream, combine, commitment

SESSION = b"test/coin"


def parties_and_secrets(n: int, seed: int) -> list[tuple[bytes, bytes, bytes]]:
    import random

    rng = random.Random(seed)
    return [(bytes([i]) * 32, rng.randbytes(32), rng.randbytes(16)) for i in range(n)]


def sessions(secrets: list[tuple[bytes, bytes, bytes]]) -> list[CoinSession]:
    ids = [p for p, _, _ in secrets]
    return [CoinSession(SESSION, ids, p, s, n) for p, s, n in secrets]


def exchange_commitments(all_sessions: list[CoinSession]) -> None:
    for a in all_sessions:
        for b in all_sessions:
            if a is not b:
                assert b.on_commitment(a.me, a.my_commitment()) is None


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(st.integers(1, 9), st.integers(0, 10**6))
def test_honest_parties_output_the_same_xor_of_shares(n, seed):
    secrets = parties_and_secrets(n, seed)
    all_sessions = sessions(secrets)
    exchange_commitments(all_sessions)
    reveals = [(s.me, *s.my_reveal()) for s in all_sessions]
    for s in all_sessions:
        for party, share, nonce in reveals:
            if party != s.me:
                assert s.on_reveal(party, share, nonce) is None
    values = {s.value() for s in all_sessions}
    assert values == {combine(share for _, share, _ in secrets)}


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(st.integers(2, 8), st.integers(0, 10**6), st.data())
def test_a_changed_reveal_is_bottom_naming_the_culprit(n, seed, data):
    secrets = parties_and_secrets(n, seed)
    all_sessions = sessions(secrets)
    exchange_commitments(all_sessions)
    liar = data.draw(st.integers(0, n - 1))
    honest = all_sessions[(liar + 1) % n]
    share, nonce = all_sessions[liar].my_reveal()
    other = bytes(b ^ 1 for b in share)
    fault = honest.on_reveal(all_sessions[liar].me, other, nonce)
    assert fault is not None and fault.culprits == (all_sessions[liar].me,) and fault.proved
    assert honest.value() is None


def test_no_reveal_before_every_commitment():
    all_sessions = sessions(parties_and_secrets(3, 1))
    with pytest.raises(RuntimeError):
        all_sessions[0].my_reveal()


def test_a_withheld_reveal_times_out_naming_the_silent_party():
    all_sessions = sessions(parties_and_secrets(3, 2))
    exchange_commitments(all_sessions)
    a, b, c = all_sessions
    a.on_reveal(b.me, *b.my_reveal())
    fault = a.timeout()
    assert fault.culprits == (c.me,) and not fault.proved and a.value() is None


def test_a_second_different_commitment_is_proof():
    all_sessions = sessions(parties_and_secrets(2, 3))
    a, b = all_sessions
    assert a.on_commitment(b.me, b.my_commitment()) is None
    fault = a.on_commitment(b.me, commitment(SESSION, b.me, bytes(32), bytes(16)))
    assert fault is not None and fault.kind == "two-commitments" and fault.culprits == (b.me,)


def test_a_non_party_changes_nothing():
    a, b = sessions(parties_and_secrets(2, 4))
    fault = a.on_commitment(b"\xff" * 32, bytes(32))
    assert fault is not None and fault.kind == "not-a-party" and a.fault is None
    assert a.missing_commitments() == (b.me,)


@settings(deadline=None, derandomize=True, database=None)
@given(st.binary(min_size=32, max_size=32), st.integers(1, 1000))
def test_stream_draws_are_in_range_and_deterministic(coin, n):
    a, b = CoinStream(coin, b"x"), CoinStream(coin, b"x")
    draws = [a.randbelow(n) for _ in range(20)]
    assert draws == [b.randbelow(n) for _ in range(20)]
    assert all(0 <= d < n for d in draws)


@settings(deadline=None, derandomize=True, database=None)
@given(st.binary(min_size=32, max_size=32), st.lists(st.integers(), max_size=30))
def test_shuffled_is_a_permutation(coin, items):
    assert sorted(CoinStream(coin).shuffled(items)) == sorted(items)


def test_randbelow_is_close_to_uniform():
    stream = CoinStream(bytes(32), b"uniform")
    counts = [0] * 6
    for _ in range(6000):
        counts[stream.randbelow(6)] += 1
    # chi-square with 5 degrees of freedom; 20.5 is the 0.999 quantile
    chi2 = sum((c - 1000) ** 2 / 1000 for c in counts)
    assert chi2 < 20.5
