"""The virtual currency (exact, closed) and the signed hash-chained balance record."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer.mirage.clearing import clear
from peer.mirage.currency import CurrencyPolicy, open_accounts, settle, split_by_shares
from peer.mirage.market import MirageMarket
from peer.mirage.model import A2, Bid, MarketError
from peer.mirage.record import RecordError, RoundInputs, compute_entry, genesis_entry, sign_entry, verify_chain
from peer.money import SCALE
from peer.net.identity import Identity

ACCOUNTS = open_accounts({"a": (1000 * SCALE, 1000), "b": (1000 * SCALE, 1000), "c": (2000 * SCALE, 2000)})


def test_winners_are_debited_and_the_pool_goes_back_by_shares() -> None:
    s = settle(ACCOUNTS, {"a": 100 * SCALE}, {"b": 1}, CurrencyPolicy())
    bal = {x.user: x.balance for x in s.accounts}
    pool = 100 * SCALE + 1
    assert dict(s.dividends) == {"a": pool // 4, "b": pool // 4, "c": pool - 2 * (pool // 4)}
    assert bal["a"] == 1000 * SCALE - 100 * SCALE + pool // 4
    assert sum(bal.values()) == sum(x.balance for x in ACCOUNTS)


def test_savings_tax_takes_a_share_of_the_excess_only() -> None:
    rich = tuple(replace(x, balance=x.baseline + (10 * SCALE if x.user == "a" else 0)) for x in ACCOUNTS)
    s = settle(rich, {}, {}, CurrencyPolicy(Fraction(1, 10)))
    assert dict(s.taxes) == {"a": SCALE, "b": 0, "c": 0}
    bal = {x.user: x.balance for x in s.accounts}
    assert bal["a"] == 1000 * SCALE + 9 * SCALE + SCALE // 4
    assert sum(bal.values()) == sum(x.balance for x in rich)


def test_a_debit_beyond_the_balance_is_refused() -> None:
    with pytest.raises(MarketError, match="owes"):
        settle(ACCOUNTS, {"a": 1001 * SCALE}, {}, CurrencyPolicy())
    with pytest.raises(MarketError, match="no account"):
        settle(ACCOUNTS, {"zed": 1}, {}, CurrencyPolicy())


@settings(max_examples=200, deadline=None)
@given(pool=st.integers(0, 10**15), shares=st.lists(st.integers(0, 5000), min_size=1, max_size=12))
def test_split_is_exact_and_proportional(pool: int, shares: list[int]) -> None:
    if sum(shares) == 0:
        shares[0] = 1
    accounts = open_accounts({f"u{i}": (0, s) for i, s in enumerate(shares)})
    parts = split_by_shares(pool, accounts)
    assert sum(parts.values()) == pool
    total = sum(shares)
    for a in accounts:
        assert abs(parts[a.user] - Fraction(pool * a.shares, total)) < 1


def _run_rounds(n_rounds: int):
    """A small market over several rounds: the inputs and entries each of three providers would compute."""
    rules, policy = A2, CurrencyPolicy(Fraction(1, 100))
    market = MirageMarket(rules, capacity=10)
    entries = [genesis_entry(ACCOUNTS, rules, policy)]
    inputs = []
    for now in range(n_rounds):
        for i, user in enumerate("abc"):
            market.submit(Bid(f"{user}{now}", user, (now + i + 1) * SCALE, 4 + i, 1 + (now + i) % 6, now, now + 3), now)
        accounts = entries[-1].accounts()
        state, bids = market.round_inputs(now, {a.user: a.balance for a in accounts})
        round_inputs = RoundInputs(state, bids, tuple(sorted(market.take_fees().items())))
        entry, clearing = compute_entry(entries[-1], round_inputs, rules, policy)
        market.apply(clearing)
        inputs.append(round_inputs)
        entries.append(entry)
    return rules, policy, entries, inputs


def test_every_provider_computes_the_same_chain_and_it_verifies() -> None:
    rules, policy, entries, inputs = _run_rounds(12)
    providers = [Identity.from_seed(bytes([i]) * 32) for i in range(3)]
    # Each provider recomputes each entry from the previous one and the inputs, and signs its hash.
    signed = [entries[0]]
    for entry, round_inputs in zip(entries[1:], inputs):
        own = [compute_entry(signed[-1], round_inputs, rules, policy)[0] for _ in providers]
        assert len({e.hash for e in own}) == 1
        merged = own[0]
        for p in providers:
            merged = sign_entry(merged, p)
        assert merged.hash == entry.hash
        signed.append(merged)
    signed[0] = sign_entry(sign_entry(sign_entry(signed[0], providers[0]), providers[1]), providers[2])
    keys = [p.public_hex for p in providers]
    verify_chain(signed, inputs, rules, policy, keys)
    total = sum(a.balance for a in ACCOUNTS)
    assert all(sum(a.balance for a in e.accounts()) == total for e in signed)
    assert any(e.body["allocations"] for e in signed[1:])


def test_a_tampered_balance_or_signature_does_not_verify() -> None:
    rules, policy, entries, inputs = _run_rounds(5)
    provider = Identity.from_seed(b"\x07" * 32)
    signed = [sign_entry(e, provider) for e in entries]
    verify_chain(signed, inputs, rules, policy, [provider.public_hex])
    body = dict(signed[3].body)
    body["accounts"] = [dict(a) for a in body["accounts"]]
    body["accounts"][0]["balance"] += 1
    forged = sign_entry(replace(signed[3], body=body, signatures=()), provider)  # even re-signed
    with pytest.raises(RecordError, match="round 3: recomputed entry differs"):
        verify_chain([*signed[:3], forged, *signed[4:]], inputs, rules, policy, [provider.public_hex])
    other = Identity.from_seed(b"\x08" * 32)
    with pytest.raises(RecordError, match="not a provider"):
        verify_chain([*signed[:2], sign_entry(signed[2], other), *signed[3:]], inputs, rules, policy,
                     [provider.public_hex])
    bad_sig = replace(signed[1], signatures=((provider.public_hex, "00" * 64),))
    with pytest.raises(RecordError, match="bad signature"):
        verify_chain([signed[0], bad_sig, *signed[2:]], inputs, rules, policy, [provider.public_hex])
    with pytest.raises(RecordError, match="1 provider signatures, 2 needed"):
        verify_chain(signed, inputs, rules, policy, [provider.public_hex, other.public_hex])


def test_clear_is_deterministic_on_the_recorded_inputs() -> None:
    rules, _, _, inputs = _run_rounds(6)
    for r in inputs:
        assert clear(r.state, r.bids, rules) == clear(r.state, r.bids, rules)


def test_a_malformed_entry_is_a_record_error_not_a_crash() -> None:
    rules, policy, entries, inputs = _run_rounds(2)
    broken = replace(entries[1], body={"accounts": [{"user": "a"}]})
    with pytest.raises(RecordError):
        verify_chain([entries[0], broken, entries[2]], inputs, rules, policy, [])
    with pytest.raises(RecordError, match="malformed record"):
        verify_chain([replace(entries[0], body={})], [], rules, policy, [])
