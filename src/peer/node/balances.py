"""Net positions from a ledger copy: what each key received minus what it paid, over every auction.

Every hop moves ``price`` from its buyer to its seller, so the positions of all
keys in one copy sum to zero by construction, and honest copies (which hold the
same chains) agree on every key's position.  Amounts are exact minor units.
"""

from __future__ import annotations

from collections.abc import Iterable

from peer.ledger import Chain


def balances(chains: Iterable[Chain]) -> dict[str, int]:
    """Key (hex) -> received minus paid, over every hop of every chain."""
    out: dict[str, int] = {}
    for chain in chains:
        for hop in chain.hops:
            body = hop.body
            out[body.seller] = out.get(body.seller, 0) + body.price
            out[body.buyer] = out.get(body.buyer, 0) - body.price
    return out
