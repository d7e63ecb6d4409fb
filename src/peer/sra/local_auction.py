"""The local VCG auction of one hop: the one rule shared by the node machine and the replay.

Keeping it in one pure function means the distributed run and the centralized
replay cannot drift apart on pricing; what the replay then checks is everything
else: who took part, and which context bids they computed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


def tie_break_rng(seed: int, host: str, hop: int) -> random.Random:
    """The host's tie-breaking stream for one hop, derived from the run seed.

    A string seed is hashed with SHA-512 by ``random``, so this does not depend
    on PYTHONHASHSEED and any replay derives exactly the same stream.
    """
    return random.Random(f"sra/tie/{seed}/{host}/{hop}")


@dataclass(frozen=True, slots=True)
class LocalResult:
    winner: str | None  # None: the host keeps the item
    price: int  # what the winner pays (the host's reserve when it keeps)
    first: int | None  # highest context bid
    second: int | None  # second-highest context bid


def run_local_auction(
    host_bid: int, reserve: int, bids: dict[str, int], rng: random.Random, *, origin: bool = False
) -> LocalResult:
    """Second price with reserve ``reserve``; a reselling host keeps on ties (Eq. 1 of the paper).

    ``bids`` maps participant -> context bid.  Ties for first place are broken
    uniformly at random with ``rng``; the ranking is over the sorted ids so it
    does not depend on arrival order.

    The original seller (``origin``) is not a buyer: her value is her reserve,
    a price floor.  She sells whenever the best bid reaches max(reserve,
    second bid).  Applying keep-on-ties to her too would make a seller with
    reserve 0 and a single bidder keep the item for nothing; the paper's CRM
    never lets the seller keep, so this reading is the one both agree on.
    """
    if not bids:
        return LocalResult(None, reserve, None, None)
    names = sorted(bids)
    keys = {name: rng.random() for name in names}
    ranked = sorted(names, key=lambda name: (-bids[name], keys[name]))
    first = bids[ranked[0]]
    second = bids[ranked[1]] if len(ranked) > 1 else None
    if origin:
        reserve = max(reserve, host_bid)
    price = reserve if second is None else max(reserve, second)
    if first < price or (not origin and host_bid >= price):
        return LocalResult(None, reserve, first, second)
    return LocalResult(ranked[0], price, first, second)
