"""Timing of an auction, and the range every wire value must lie in."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SraConfig:
    """Timing of one auction.  Times are in the shell's clock units (seconds on real nodes).

    ``reply_timeout`` is the seller's wait in stage 2, ``context_timeout`` a
    host's wait for context bids in stage 3 and ``confirm_timeout`` the
    seller's wait for her hop-1 buyer's answer under guarded resale (which
    covers the whole resale chain below it); everyone else waits for what the
    budget it was handed allows (see :mod:`peer.sra.machine`).
    """

    gather_window: float = 0.5
    reply_timeout: float = 30.0
    context_timeout: float = 30.0
    margin: float = 0.5  # covers one message's transit and handling
    # Guarded resale (docs/sra.md): a hop's buyer hosts its own hop before it commits to buy,
    # so a bid that vanishes downstream never leaves an honest host paying more than it
    # can recover.  False: the paper's literal stage 3 (buy first, then resell).
    guarded: bool = True
    confirm_timeout: float = 120.0  # the seller's wait for a buyer's Confirm or Refuse
    # Verifiable coins (peer.sra.coins): a node's parent is picked by its deterministic
    # Ed25519 signature over the auction id, which its inviters check.  False: the paper's
    # private coin (a seeded random choice nobody can check).
    verifiable_coins: bool = False


MAX_AMOUNT = 2**63 - 1  # amounts and hop numbers must fit the ledger's fixed-width fields
MAX_BUDGET = 1e9  # a wire budget (time units a sender will still wait) must stay below this
HASH = re.compile(r"[0-9a-f]{64}")


def amount_ok(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_AMOUNT


def budget_ok(value: object) -> bool:
    if value is None:
        return True  # the sender did not say: the receiver uses its own timeout
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < MAX_BUDGET
