"""The paper's centralized reduction of SRA (Sec. 4.2), on one tree and averaged over trees.

On a spanning tree T of the valid buyers' graph: z is the highest bidder; the
tree path S..z is shortened into a *diffusion path* (no back-edge of the graph
between non-consecutive path nodes: each back-edge cuts out the nodes it
skips, greedily from S); then the item is resold down that path with
``outside_max(h) = v1st(T - h)``, the best value outside h's subtree (Eqs. 3-4).
The mechanism's outcome is the average over all spanning trees (Eq. 5):
enumerated exactly when there are few, sampled uniformly (Wilson) otherwise.
"""

from __future__ import annotations

import random
from decimal import Decimal
from collections.abc import Mapping
from fractions import Fraction

import networkx as nx

from peer.reference.spanning import ParentMap, count_spanning_trees, enumerate_spanning_trees, wilson_tree
from peer.reference.walk import highest, resale_walk
from peer.result import Hop, NodeReport, RunResult, utilities_from_hops


def tree_path(parents: ParentMap, target: str) -> list[str]:
    path = [target]
    while (up := parents[path[-1]]) is not None:
        path.append(up)
    return path[::-1]


def diffusion_path(path: list[str], adjacency: Mapping[str, set[str]]) -> list[str]:
    """Shorten a simple path so that no two non-consecutive nodes are adjacent in the graph."""
    out = [path[0]]
    i = 0
    while i < len(path) - 1:
        here = adjacency[path[i]]
        j = max(k for k in range(i + 1, len(path)) if path[k] in here)
        out.append(path[j])
        i = j
    return out


class TreeIndex:
    """O(1) 'best value outside the subtree of h' queries on one rooted tree."""

    def __init__(self, parents: ParentMap, root: str, values: Mapping[str, int]) -> None:
        children: dict[str, list[str]] = {}
        for node, parent in parents.items():
            if parent is not None:
                children.setdefault(parent, []).append(node)
        order: list[str] = []
        self.tin: dict[str, int] = {}
        self.tout: dict[str, int] = {}
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                self.tout[node] = len(order) - 1
                continue
            self.tin[node] = len(order)
            order.append(node)
            stack.append((node, True))
            for child in sorted(children.get(node, ()), reverse=True):
                stack.append((child, False))
        vals = [-1 if n == root else values[n] for n in order]  # the seller is no buyer
        self.prefix = vals[:]
        for i in range(1, len(vals)):
            self.prefix[i] = max(self.prefix[i - 1], vals[i])
        self.suffix = vals[:]
        for i in range(len(vals) - 2, -1, -1):
            self.suffix[i] = max(self.suffix[i + 1], vals[i])
        self.size = len(vals)

    def outside_max(self, node: str) -> int:
        lo, hi = self.tin[node], self.tout[node]
        best = self.prefix[lo - 1] if lo > 0 else -1
        if hi + 1 < self.size:
            best = max(best, self.suffix[hi + 1])
        return max(best, 0)


def crm_on_tree(
    adjacency: Mapping[str, set[str]],
    seller: str,
    values: Mapping[str, int],
    parents: ParentMap,
    rng: random.Random,
) -> tuple[list[Hop], str]:
    """CRM's resale path and winner on one spanning tree (``parents`` rooted at the seller)."""
    buyers = [n for n in parents if n != seller]
    if not buyers:
        return [], seller
    z = highest(values, buyers, rng.choice)
    path = diffusion_path(tree_path(parents, z), adjacency)
    index = TreeIndex(parents, seller, values)
    return resale_walk(path, values, index.outside_max)


def valid_component(graph: nx.Graph, seller: str) -> nx.Graph:
    return graph.subgraph(nx.node_connected_component(graph, seller)).copy()


def crm(
    graph: nx.Graph,
    seller: str,
    values: Mapping[str, int],
    *,
    seed: int,
    trees: int = 1000,
    enumerate_limit: int = 5000,
) -> RunResult:
    """CRM averaged over spanning trees: exactly if there are <= enumerate_limit, else ``trees`` samples."""
    component = valid_component(graph, seller)
    adjacency = {n: set(component.neighbors(n)) for n in component.nodes}
    rng = random.Random(f"crm/{seed}")
    count = count_spanning_trees(component, limit=enumerate_limit) if len(component) <= 400 else enumerate_limit + 1
    if count <= enumerate_limit:
        tree_list: list[ParentMap] = list(enumerate_spanning_trees(component, seller))
        exact = True
    else:
        sorted_adj = {n: sorted(adjacency[n]) for n in adjacency}
        tree_list = [wilson_tree(sorted_adj, seller, rng) for _ in range(trees)]
        exact = False
    totals: dict[str, Fraction] = {n: Fraction(0) for n in values}
    wins: dict[str, int] = {}
    revenue = Fraction(0)
    for parents in tree_list:
        hops, winner = crm_on_tree(adjacency, seller, values, parents, rng)
        utilities, rev = utilities_from_hops(seller, dict(values), hops, winner)
        for node, u in utilities.items():
            totals[node] += u
        revenue += rev
        wins[winner] = wins.get(winner, 0) + 1
    k = len(tree_list)
    return RunResult(
        mechanism="crm",
        seller=seller,
        seed=seed,
        nodes={n: NodeReport(value=values[n]) for n in sorted(values)},
        hops=[],
        winner=None,
        utilities={n: t / k for n, t in totals.items()},
        revenue=revenue / k,
        extra={
            "trees": k,
            "trees_exact": exact,
            "win_probability": {n: probability(c, k) for n, c in sorted(wins.items())},
        },
    )


def probability(count: int, total: int) -> Decimal:
    """count/total as a Decimal with 12 places (a statistic, never money)."""
    return (Decimal(count) / Decimal(total)).quantize(Decimal(1).scaleb(-12)).normalize()
