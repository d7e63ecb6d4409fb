"""Timing of an auction, and the range every wire value must lie in."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SraConfig:
    """Timing of one auction.  Times are in the shell's clock units (seconds on real nodes).

    ``reply_timeout`` is the seller's wait in stage 2 and ``context_timeout`` a
    host's wait in stage 3; everyone else waits for what the budget it was
    handed allows (see :mod:`peer.sra.machine`).
    """

    gather_window: float = 0.5
    reply_timeout: float = 30.0
    context_timeout: float = 30.0
    margin: float = 0.5  # covers one message's transit and handling


MAX_AMOUNT = 2**63 - 1  # amounts and hop numbers must fit the ledger's fixed-width fields
HASH = re.compile(r"[0-9a-f]{64}")


def amount_ok(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_AMOUNT


def budget_ok(value: object) -> bool:
    if value is None:
        return True  # the sender did not say: the receiver uses its own timeout
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e9
