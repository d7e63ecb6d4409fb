"""CRM and IDM on many value profiles at once, for graphs whose spanning trees can be enumerated.

The references (:func:`peer.reference.crm.crm_on_tree`,
:func:`peer.reference.idm.idm_outcome`) evaluate one value profile at a time
in pure Python: far too slow for the paper's 10^4 samples x 10^3 trees.  But
on a fixed graph everything except the values is fixed: for a given tree and a
given highest bidder z the resale path is known, and so is, for every path
node h, the set of buyers whose best value is ``outside_max(h)``.  So we
precompute those paths and sets (:class:`WalkPlan`, built with the
references' own path functions) and run the resale walk of
:mod:`peer.reference.walk` as integer numpy operations over all rows.

Values are int64 minor units, one column per node (the seller's column holds
her reserve); every amount stays an int64 (values are at most a few 10^6, far
from overflow).  Ties are supported where the references resolve them
deterministically (a host keeps the item when its value equals the price);
the one random tie-break, choosing z among equal highest values, is the
caller's: every function here takes z explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from peer.reference.crm import diffusion_path, tree_path
from peer.reference.spanning import ParentMap, enumerate_spanning_trees

IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class WalkPlan:
    """One resale path S = h_0, ..., h_L = z, and which buyers price each hop.

    ``outside[j]`` marks the buyer columns outside region(h_j) (a subtree for
    CRM, a dominated set for IDM); row 0 (the seller) is unused.
    """

    path: tuple[int, ...]
    outside: NDArray[np.bool_]  # (len(path), columns)


@dataclass(frozen=True)
class Outcomes:
    """The walk's result for each row: who ends with the item, every utility, the seller's revenue.

    ``winner`` is the seller's column when she keeps the item.  ``path`` and
    ``prices`` (padded with -1) give the hops: hop j (1-based) goes from
    path[j-1] to path[j] at prices[j-1], for j <= hops.
    """

    winner: NDArray[np.intp]
    utilities: IntArray  # (rows, columns)
    revenue: IntArray
    hops: NDArray[np.intp]
    path: NDArray[np.intp]  # (rows, columns), -1 padded
    prices: IntArray  # (rows, columns), -1 padded


def empty_outcomes(rows: int, columns: int) -> Outcomes:
    return Outcomes(
        winner=np.zeros(rows, dtype=np.intp),
        utilities=np.zeros((rows, columns), dtype=np.int64),
        revenue=np.zeros(rows, dtype=np.int64),
        hops=np.zeros(rows, dtype=np.intp),
        path=np.full((rows, columns), -1, dtype=np.intp),
        prices=np.full((rows, columns), -1, dtype=np.int64),
    )


def walk(values: IntArray, plan: WalkPlan) -> Outcomes:
    """The resale walk of :func:`peer.reference.walk.resale_walk` on every row of ``values``."""
    rows, columns = values.shape
    if rows and values.min() < 0:
        raise ValueError("values must be non-negative (outside_max masks with 0)")
    path = plan.path
    last = len(path) - 1
    if last < 1:
        raise ValueError("a walk needs a path from the seller to at least one buyer")
    seller = path[0]
    reserve = values[:, seller]
    # outside_max(h_j): values are >= 0, so masking with 0 also gives the
    # references' "0 when nobody is outside".
    out = np.zeros((rows, last + 1), dtype=np.int64)
    for j in range(1, last + 1):
        out[:, j] = np.where(plan.outside[j], values, 0).max(axis=1)
    price = out.copy()  # price[:, j] = what h_j pays for the item
    price[:, 1] = np.maximum(out[:, 1], reserve)
    sold = values[:, path[-1]] >= reserve
    # h_j (1 <= j < last) keeps the item when its value reaches the next price;
    # the last node always keeps.  First such j is the winner's position.
    keeps = np.ones((rows, last + 1), dtype=bool)
    keeps[:, 0] = False
    for j in range(1, last):
        keeps[:, j] = values[:, path[j]] >= price[:, j + 1]
    pos = np.where(sold, keeps.argmax(axis=1), 0)

    result = empty_outcomes(rows, columns)
    path_arr = np.asarray(path, dtype=np.intp)
    result.winner[:] = path_arr[pos]
    result.hops[:] = pos
    result.path[:, : last + 1] = path_arr
    for j in range(1, last + 1):
        bought = pos >= j
        result.prices[:, j - 1] = np.where(bought, price[:, j], -1)
        node = path[j]
        if j < last:
            resale = np.where(pos > j, price[:, j + 1] - price[:, j], 0)
        else:
            resale = np.zeros(rows, dtype=np.int64)
        keep = np.where(pos == j, values[:, node] - price[:, j], 0)
        result.utilities[:, node] = resale + keep
    result.revenue[:] = np.where(pos >= 1, price[:, 1], 0)
    # As utilities_from_hops: the seller's utility is her revenue, or her reserve if she keeps.
    result.utilities[:, seller] = np.where(pos >= 1, result.revenue, reserve)
    return result


def evaluate_by_z(values: IntArray, z: NDArray[np.intp], plans: Mapping[int, WalkPlan]) -> Outcomes:
    """Each row walked with the plan of its own highest bidder ``z[row]``."""
    rows, columns = values.shape
    result = empty_outcomes(rows, columns)
    for target in np.unique(z):
        idx = np.flatnonzero(z == target)
        part = walk(values[idx], plans[int(target)])
        for name in ("winner", "utilities", "revenue", "hops", "path", "prices"):
            getattr(result, name)[idx] = getattr(part, name)
    return result


def highest_columns(values: IntArray, buyers: Sequence[int]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """Per row: the first buyer column holding the highest value, and the mask of all tied ones."""
    cols = np.asarray(buyers, dtype=np.intp)
    sub = values[:, cols]
    top = sub.max(axis=1, keepdims=True)
    tied = np.zeros(values.shape, dtype=bool)
    tied[:, cols] = sub == top
    return cols[sub.argmax(axis=1)], tied


class Layout:
    """The component of the seller as numpy columns (nodes sorted by id)."""

    def __init__(self, graph: nx.Graph, seller: str) -> None:
        component = graph.subgraph(nx.node_connected_component(graph, seller)).copy()
        self.graph = component
        self.seller = seller
        self.nodes: list[str] = sorted(component.nodes)
        self.column = {n: i for i, n in enumerate(self.nodes)}
        self.buyers: list[int] = [self.column[n] for n in self.nodes if n != seller]
        self.adjacency = {n: set(component.neighbors(n)) for n in component.nodes}

    def outside_mask(self, region: set[str]) -> NDArray[np.bool_]:
        mask = np.zeros(len(self.nodes), dtype=bool)
        for col in self.buyers:
            if self.nodes[col] not in region:
                mask[col] = True
        return mask

    def plan(self, path: list[str], regions: Mapping[str, set[str]]) -> WalkPlan:
        outside = np.zeros((len(path), len(self.nodes)), dtype=bool)
        for j, node in enumerate(path[1:], start=1):
            outside[j] = self.outside_mask(regions[node])
        return WalkPlan(tuple(self.column[n] for n in path), outside)


def subtrees(parents: ParentMap) -> dict[str, set[str]]:
    """Every node's subtree (itself and its descendants) in a rooted tree."""
    out: dict[str, set[str]] = {n: {n} for n in parents}
    for node in parents:
        up = parents[node]
        while up is not None:
            out[up].add(node)
            up = parents[up]
    return out


def canonical_trees(layout: Layout, limit: int) -> list[ParentMap]:
    """Every spanning tree, in a fixed order (sorted edge lists) so that a seeded tree index means one tree."""
    trees: list[ParentMap] = []
    for parents in enumerate_spanning_trees(layout.graph, layout.seller):
        trees.append(parents)
        if len(trees) > limit:
            raise ValueError(
                f"the graph has more than {limit} spanning trees; this experiment enumerates them"
            )
    return sorted(trees, key=lambda p: sorted((c, u) for c, u in p.items() if u is not None))


class CrmTables:
    """Per enumerated spanning tree and per possible highest bidder z: CRM's diffusion path and walk plan."""

    def __init__(self, layout: Layout, *, limit: int = 100_000) -> None:
        self.layout = layout
        self.trees = canonical_trees(layout, limit)
        self.plans: list[dict[int, WalkPlan]] = []
        for parents in self.trees:
            regions = subtrees(parents)
            per_z: dict[int, WalkPlan] = {}
            for z in layout.buyers:
                path = diffusion_path(tree_path(parents, layout.nodes[z]), layout.adjacency)
                per_z[z] = layout.plan(path, regions)
            self.plans.append(per_z)

    def evaluate(self, values: IntArray, z: NDArray[np.intp], tree: int) -> Outcomes:
        """CRM on tree number ``tree`` for every row, highest bidder z[row]."""
        return evaluate_by_z(values, z, self.plans[tree])


class IdmTables:
    """Per possible highest bidder z: IDM's critical-ancestor path and dominated sets (graph-only, so once)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        seller = layout.seller
        idom = nx.immediate_dominators(layout.graph.to_directed(), seller)
        # D(x) = x's subtree in the dominator tree: a "parent map" rooted at the seller.
        dom_parents: ParentMap = {n: (None if n == seller else idom[n]) for n in layout.graph.nodes}
        regions = subtrees(dom_parents)
        self.plans: dict[int, WalkPlan] = {}
        for z in layout.buyers:
            path = tree_path(dom_parents, layout.nodes[z])  # seller, d_1, ..., d_m, z
            self.plans[z] = layout.plan(path, regions)

    def evaluate(self, values: IntArray, z: NDArray[np.intp]) -> Outcomes:
        return evaluate_by_z(values, z, self.plans)
