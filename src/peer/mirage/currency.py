"""Mirage's closed virtual currency: baselines, shares, debits, profit sharing and a savings tax.

Each account starts at its baseline.  Every round, winners are debited what
they pay and bidders their transaction fees; accounts above their baseline
pay the savings tax on the excess ("use it or lose it").  All of that is the
round's pool, and the pool goes back to every account in proportion to its
shares, which rewards users who stay out of the market at peak times.  The
currency is closed: the total of all balances never changes.

Integer money throughout: the pool is split by largest remainder (ties by
user name), so the parts sum exactly to the pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from peer.mirage.model import MarketError


@dataclass(frozen=True, slots=True)
class Account:
    user: str
    baseline: int
    shares: int
    balance: int


@dataclass(frozen=True, slots=True)
class CurrencyPolicy:
    savings_tax: Fraction = Fraction(0)  # per round, on the balance above the baseline

    def __post_init__(self) -> None:
        if not 0 <= self.savings_tax <= 1:
            raise MarketError(f"savings tax {self.savings_tax} is not a fraction in [0, 1]")


@dataclass(frozen=True, slots=True)
class Settlement:
    """One round's money: what each account paid, was taxed, received, and its new balance."""

    debits: tuple[tuple[str, int], ...]
    taxes: tuple[tuple[str, int], ...]
    dividends: tuple[tuple[str, int], ...]
    accounts: tuple[Account, ...]


def open_accounts(spec: dict[str, tuple[int, int]]) -> tuple[Account, ...]:
    """Accounts at their baselines, from ``{user: (baseline, shares)}``, sorted by user."""
    out = []
    for user, (baseline, shares) in sorted(spec.items()):
        if baseline < 0 or shares < 0:
            raise MarketError(f"{user}: negative baseline or shares")
        out.append(Account(user, baseline, shares, baseline))
    if out and sum(a.shares for a in out) == 0:
        raise MarketError("no account holds any shares: the pool could not be shared out")
    return tuple(out)


def split_by_shares(pool: int, accounts: tuple[Account, ...]) -> dict[str, int]:
    """``pool`` minor units in proportion to shares, exactly (largest remainder, ties by user)."""
    total = sum(a.shares for a in accounts)
    if pool == 0 or total == 0:
        return {a.user: 0 for a in accounts}
    base = {a.user: pool * a.shares // total for a in accounts}
    left = pool - sum(base.values())
    by_remainder = sorted(accounts, key=lambda a: (-(pool * a.shares % total), a.user))
    for a in by_remainder[:left]:
        base[a.user] += 1
    return base


def settle(accounts: tuple[Account, ...], payments: dict[str, int], fees: dict[str, int],
           policy: CurrencyPolicy) -> Settlement:
    """The round's debits, tax and dividends applied to ``accounts``; MarketError if anyone would go negative."""
    known = {a.user for a in accounts}
    for user in (*payments, *fees):
        if user not in known:
            raise MarketError(f"{user} has no account")
    debits = {a.user: payments.get(a.user, 0) + fees.get(a.user, 0) for a in accounts}
    after = {}
    for a in accounts:
        if debits[a.user] > a.balance:
            raise MarketError(f"{a.user} owes {debits[a.user]} with {a.balance}")
        after[a.user] = a.balance - debits[a.user]
    taxes = {}
    for a in accounts:
        excess = after[a.user] - a.baseline
        taxes[a.user] = int(excess * policy.savings_tax) if excess > 0 else 0  # floor: never over-taxes
    pool = sum(debits.values()) + sum(taxes.values())
    dividends = split_by_shares(pool, accounts)
    new = tuple(
        Account(a.user, a.baseline, a.shares, after[a.user] - taxes[a.user] + dividends[a.user]) for a in accounts
    )
    return Settlement(
        tuple(sorted(debits.items())), tuple(sorted(taxes.items())), tuple(sorted(dividends.items())), new
    )


def budgets(accounts: tuple[Account, ...], fees: dict[str, int]) -> dict[str, int]:
    """What each user can still pay for allocations this round: its balance less the fees it already owes."""
    return {a.user: max(0, a.balance - fees.get(a.user, 0)) for a in accounts}
