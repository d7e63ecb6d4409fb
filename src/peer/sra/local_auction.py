"""The local VCG auction of one hop: the one rule shared by the node machine and the replay.

Keeping it in one pure function means the distributed run and the centralized
replay cannot drift apart on pricing; what the replay then checks is everything
else: who took part, and which context bids they computed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from peer.sra.coins import tie_key


def tie_break_rng(seed: int, host: str, hop: int) -> random.Random:
    """The host's tie-breaking stream for one hop, derived from the run seed.

    A string seed is hashed with SHA-512 by ``random``, so this does not depend
    on PYTHONHASHSEED and any replay derives exactly the same stream.
    """
    return random.Random(f"sra/tie/{seed}/{host}/{hop}")


def replay_tie_break(
    seed: int, host: str, hop: int, coin_auction: str | None = None,
    tie_coin: Callable[[str, int], bytes] | None = None,
) -> tuple[random.Random | None, bytes | None]:
    """(rng, tie_coin) for :func:`run_local_auction` as the host of a run used them.

    ``tie_coin(host, hop)``: the hosts' coins of a run under verifiable coins
    (a launch checker signs them with the identities it made).  ``coin_auction``:
    the auction id of a simulated run under verifiable coins (the simulator
    records it as ``RunResult.extra["coin_auction"]``), whose name-derived keys
    let anyone recompute the coins.  Otherwise the run seed's stream.
    """
    if tie_coin is not None:
        return None, tie_coin(host, hop)
    if coin_auction is None:
        return tie_break_rng(seed, host, hop), None
    from peer.sra.coin_keys import SimulatedKeys  # Ed25519: loaded only when coins are on
    from peer.sra.coins import coin_message, tie_purpose

    return None, SimulatedKeys(host).sign(coin_message(coin_auction, tie_purpose(hop)))


@dataclass(frozen=True, slots=True)
class LocalResult:
    winner: str | None  # None: the host keeps the item
    price: int  # what the winner pays (the host's reserve when it keeps)
    first: int | None  # highest context bid
    second: int | None  # second-highest context bid


def run_local_auction(
    host_bid: int, reserve: int, bids: dict[str, int], rng: random.Random | None, *, origin: bool = False,
    tie_coin: bytes | None = None,
) -> LocalResult:
    """Second price with reserve ``reserve``; a reselling host keeps on ties (Eq. 1 of the paper).

    ``bids`` maps participant -> context bid.  Ties for first place are broken
    uniformly at random with ``rng``; the ranking is over the sorted ids so it
    does not depend on arrival order.  With ``tie_coin`` (verifiable coins,
    :mod:`peer.sra.coins`) they are broken by the coin instead (``rng`` is then
    unused): each name is ranked by its own score, so whoever knows the coin
    and the tied names recomputes the winner without the other bids.

    The original seller (``origin``) is not a buyer: her value is her reserve,
    a price floor.  She sells whenever the best bid reaches max(reserve,
    second bid).  Applying keep-on-ties to her too would make a seller with
    reserve 0 and a single bidder keep the item for nothing; the paper's CRM
    never lets the seller keep, so this reading is the one both agree on.
    """
    if not bids:
        return LocalResult(None, reserve, None, None)
    names = sorted(bids)
    if tie_coin is not None:
        coin = tie_coin
        ranked = sorted(names, key=lambda name: (-bids[name], tie_key(coin, name)))
    else:
        if rng is None:
            raise ValueError("run_local_auction needs an rng or a tie coin")
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


def tied_at_top(bids: dict[str, int]) -> tuple[str, ...]:
    """The bidders whose bid equals the highest one, sorted (what a tie coin chooses among)."""
    if not bids:
        return ()
    top = max(bids.values())
    return tuple(sorted(name for name, amount in bids.items() if amount == top))
