"""The resale walk shared by the CRM and IDM references.

Both mechanisms pass the item down a path S = h_0, h_1, ..., h_l and price it
with "the best value once some region is removed": for CRM the region of h is
its subtree in a spanning tree, for IDM the set of nodes h dominates.  With
``outside_max(h)`` = the highest buyer value outside region(h):

* a reselling host h_j (j >= 1) keeps the item if its value >=
  outside_max(h_{j+1}) (keep on ties); otherwise it sells to h_{j+1} at
  outside_max(h_{j+1}), who pays that and hosts next; the last node keeps;
* the seller h_0 is no buyer: her value is a reserve, a price floor.  She
  sells at max(reserve, outside_max(h_1)) unless no buyer reaches the reserve
  (as in :func:`peer.sra.local_auction.run_local_auction`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from peer.result import Hop


def resale_walk(
    path: list[str], values: Mapping[str, int], outside_max: Callable[[str], int]
) -> tuple[list[Hop], str]:
    hops: list[Hop] = []
    if len(path) > 1 and values[path[-1]] < values[path[0]]:
        return hops, path[0]  # nobody reaches the seller's reserve
    for j, host in enumerate(path[:-1]):
        nxt = path[j + 1]
        price = outside_max(nxt)
        if j == 0:
            price = max(price, values[host])
        elif values[host] >= price:
            return hops, host
        hops.append(Hop(j + 1, host, nxt, price))
    return hops, path[-1]


def highest(values: Mapping[str, int], candidates: list[str], rng_choice: Callable[[list[str]], str]) -> str:
    """The highest-valued candidate, ties broken by ``rng_choice`` over the sorted tied ids."""
    top = max(values[c] for c in candidates)
    tied = sorted(c for c in candidates if values[c] == top)
    return tied[0] if len(tied) == 1 else rng_choice(tied)
