"""Li et al.'s Information Diffusion Mechanism (IDM), the paper's baseline.

The highest bidder w*'s critical ancestors d_1..d_m (nodes every S..w* path
passes: its dominators from S, with both directions of every edge) and w*
form the path.  D(x), the set x dominates, is what falls away when x leaves.
Then the resale walk of :mod:`peer.reference.walk` with outside_max(x) = the
best value outside D(x): the first d_k whose value is highest once D(d_{k+1})
is removed keeps the item and pays the best value outside D(d_k); each
earlier d_i receives the difference of those figures.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

import networkx as nx

from peer.reference.crm import valid_component
from peer.reference.walk import highest, resale_walk
from peer.result import Hop, NodeReport, RunResult, utilities_from_hops


def idm_outcome(
    graph: nx.Graph, seller: str, values: Mapping[str, int], rng: random.Random
) -> tuple[list[Hop], str]:
    component = valid_component(graph, seller)
    buyers = [n for n in component.nodes if n != seller]
    if not buyers:
        return [], seller
    top = highest(values, buyers, rng.choice)
    idom = nx.immediate_dominators(component.to_directed(), seller)
    chain = [top]
    while chain[-1] != seller:
        chain.append(idom[chain[-1]])
    path = chain[::-1]  # seller, d_1, ..., d_m, top
    dominated: dict[str, set[str]] = {n: {n} for n in component.nodes}
    # D(x) = x's subtree in the dominator tree.
    kids: dict[str, list[str]] = {}
    for node, dom in idom.items():
        if node != seller:
            kids.setdefault(dom, []).append(node)
    for x in path[1:]:
        stack, seen = [x], {x}
        while stack:
            for y in kids.get(stack.pop(), ()):
                seen.add(y)
                stack.append(y)
        dominated[x] = seen

    def outside_max(x: str) -> int:
        region = dominated[x]
        return max((values[b] for b in buyers if b not in region), default=0)

    return resale_walk(path, values, outside_max)


def idm(graph: nx.Graph, seller: str, values: Mapping[str, int], *, seed: int) -> RunResult:
    hops, winner = idm_outcome(graph, seller, values, random.Random(f"idm/{seed}"))
    utilities, revenue = utilities_from_hops(seller, dict(values), hops, winner)
    nodes = {n: NodeReport(value=values[n]) for n in sorted(values)}
    for h in hops:
        nodes[h.buyer].bought_at = h.price
        nodes[h.seller].sold_at = h.price
    nodes[seller].bought_at = None
    return RunResult(
        mechanism="idm", seller=seller, seed=seed, nodes=nodes, hops=hops, winner=winner,
        utilities=dict(utilities), revenue=revenue,
    )
