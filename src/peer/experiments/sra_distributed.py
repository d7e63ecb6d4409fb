"""The distributed SRA's stage 3 in rounds mode, on many value profiles and realised trees at once.

In rounds mode (``peer.sim.run.simulate(..., mode="rounds")``) the invitation
relation is fixed by the graph: the inviters of a node at BFS depth d are
exactly its neighbours at depth d - 1 (same-depth edges are void), and the
participants of its local auction are all its invitees, i.e. its neighbours at
depth d + 1.  The only randomness before stage 3 is each node's choice of one
inviter as parent (uniform, seeded by the run seed), so the realised tree is
uniform over the product of the nodes' inviter choices.  :class:`RoundsRelation`
holds that relation and enumerates (or samples) those trees.

:func:`evaluate` then runs stage 3 exactly as :func:`peer.reference.replay.replay_stage3`
does, as integer numpy operations over rows (one value profile and one tree
per row):

* a participant j of host i bids the maximum value in j's subtree: the cut of
  :func:`peer.reference.replay.context_bid` never applies in rounds mode
  (j's tree children are at depth d(i) + 2, and their inviters at d(i) + 1, so
  i is never one of them);
* each hop is :func:`peer.sra.local_auction.run_local_auction`'s rule: second
  price with the host's purchase price as reserve (the origin seller: her
  reserve value as a floor), a reselling host keeps when its value reaches the
  price.

The one random element of stage 3, a tie for first place in a local auction
that sells, is left to the reference: :func:`evaluate` flags such rows and
:func:`evaluate_exact` recomputes them with ``replay_stage3`` and the row's
run seed.  Values must be non-negative (-1 marks "no participant").
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from peer.experiments.crm_vectorised import IntArray, Layout, Outcomes, empty_outcomes
from peer.reference.replay import replay_stage3
from peer.result import Hop, utilities_from_hops

MAX_ENUMERATED = 4096  # more realised trees than this: sample them instead


@dataclass(frozen=True)
class RoundsRelation:
    """Rounds mode's invitation relation on the seller's component (columns as in :class:`Layout`)."""

    layout: Layout
    depth: NDArray[np.intp]  # per column
    inviters: tuple[tuple[int, ...], ...]  # per column, ascending (= by node id); () for the seller
    participants: tuple[tuple[int, ...], ...]  # per column: neighbours one level deeper, ascending
    bottom_up: tuple[int, ...]  # buyer columns, deepest first (children before parents)
    participant_table: NDArray[np.intp]  # (columns, width) participants padded with -1

    @classmethod
    def from_layout(cls, layout: Layout) -> RoundsRelation:
        depths = nx.single_source_shortest_path_length(layout.graph, layout.seller)
        depth = np.array([depths[n] for n in layout.nodes], dtype=np.intp)
        columns = len(layout.nodes)
        inviters: list[tuple[int, ...]] = []
        participants: list[tuple[int, ...]] = []
        for col, name in enumerate(layout.nodes):
            near = sorted(layout.column[m] for m in layout.adjacency[name])
            inviters.append(tuple(m for m in near if depth[m] == depth[col] - 1))
            participants.append(tuple(m for m in near if depth[m] == depth[col] + 1))
        width = max(1, max(len(p) for p in participants))
        table = np.full((columns, width), -1, dtype=np.intp)
        for col, parts in enumerate(participants):
            table[col, : len(parts)] = parts
        bottom_up = tuple(sorted(layout.buyers, key=lambda c: (-depth[c], c)))
        return cls(layout, depth, tuple(inviters), tuple(participants), bottom_up, table)

    @property
    def combinations(self) -> int:
        """How many trees rounds mode can realise: the product of the buyers' inviter counts."""
        out = 1
        for col in self.layout.buyers:
            out *= len(self.inviters[col])
        return out

    def enumerate_trees(self) -> NDArray[np.intp]:
        """Every realisable tree as a row of parent columns (-1 for the seller), in product order."""
        buyers = self.layout.buyers
        choices = [self.inviters[c] for c in buyers]
        rows = [list(combo) for combo in itertools.product(*choices)]
        trees = np.full((len(rows), len(self.layout.nodes)), -1, dtype=np.intp)
        trees[:, buyers] = np.asarray(rows, dtype=np.intp).reshape(len(rows), len(buyers))
        return trees

    def sample_trees(self, rng: np.random.Generator, count: int) -> NDArray[np.intp]:
        """``count`` trees, uniform over the product: each buyer picks one of its inviters uniformly."""
        trees = np.full((count, len(self.layout.nodes)), -1, dtype=np.intp)
        for col in self.layout.buyers:  # fixed column order: part of what a seed means
            options = np.asarray(self.inviters[col], dtype=np.intp)
            trees[:, col] = options[rng.integers(0, len(options), size=count)] if len(options) > 1 else options[0]
        return trees

    def replay_relation(
        self, parents: NDArray[np.intp]
    ) -> tuple[dict[str, list[str]], dict[str, str | None], dict[str, set[str]]]:
        """``replay_stage3``'s participants, parents and inviters for the tree ``parents`` (a row of parent columns)."""
        nodes = self.layout.nodes
        return (
            {n: [nodes[m] for m in self.participants[c]] for c, n in enumerate(nodes)},
            {n: (None if parents[c] < 0 else nodes[int(parents[c])]) for c, n in enumerate(nodes)},
            {n: {nodes[m] for m in self.inviters[c]} for c, n in enumerate(nodes)},
        )

    def tree_of(self, parents: Mapping[str, str | None]) -> NDArray[np.intp]:
        """A parent map by name as a row of parent columns."""
        row = np.full(len(self.layout.nodes), -1, dtype=np.intp)
        for name, parent in parents.items():
            if parent is not None:
                row[self.layout.column[name]] = self.layout.column[parent]
        return row


@dataclass(frozen=True)
class Stage3:
    outcomes: Outcomes
    tied: NDArray[np.bool_]  # a selling local auction had a tie for first place: the tie-break decides


def subtree_max(relation: RoundsRelation, values: IntArray, parents: NDArray[np.intp]) -> IntArray:
    """Per row and buyer column: the highest value in that buyer's subtree of the row's tree."""
    rows = np.arange(len(values))
    best = values.copy()
    for col in relation.bottom_up:  # a node's subtree max is final before it is pushed to its parent
        up = parents[:, col]
        best[rows, up] = np.maximum(best[rows, up], best[:, col])
    return best


def evaluate(relation: RoundsRelation, values: IntArray, parents: NDArray[np.intp]) -> Stage3:
    """Stage 3 on every row: values[row] (the seller's column holds her reserve) on tree parents[row]."""
    rows, columns = values.shape
    if rows and values.min() < 0:
        raise ValueError("values must be non-negative")
    seller = relation.layout.column[relation.layout.seller]
    bids = subtree_max(relation, values, parents)
    table = relation.participant_table
    result = empty_outcomes(rows, columns)
    result.path[:, 0] = seller
    tied = np.zeros(rows, dtype=bool)
    host = np.full(rows, seller, dtype=np.intp)
    reserve = np.zeros(rows, dtype=np.int64)
    active = np.arange(rows)
    hop = 0
    while active.size:
        hop += 1
        h = host[active]
        part = table[h]  # (active, width)
        present = part >= 0
        ctx = np.where(present, bids[active[:, None], np.where(present, part, 0)], -1)
        count = present.sum(axis=1)
        ranked = np.sort(ctx, axis=1)
        first = ranked[:, -1]
        second = ranked[:, -2] if ranked.shape[1] > 1 else np.full(len(active), -1, dtype=np.int64)
        own = values[active, h]
        floor = np.maximum(reserve[active], own) if hop == 1 else reserve[active]  # the origin's reserve
        price = np.where(count > 1, np.maximum(floor, second), floor)
        keeps = (count == 0) | (first < price)
        if hop > 1:
            keeps |= own >= price
        sells = ~keeps
        tied[active[sells & (count > 1) & (second == first)]] = True
        buyer = part[np.arange(len(active)), ctx.argmax(axis=1)]
        moved = active[sells]
        result.path[moved, hop] = buyer[sells]
        result.prices[moved, hop - 1] = price[sells]
        result.hops[moved] = hop
        host[moved] = buyer[sells]
        reserve[moved] = price[sells]
        active = moved
    result.winner[:] = host
    utilities = result.utilities
    for j in range(1, int(result.hops.max(initial=0)) + 1):
        through = np.flatnonzero(result.hops > j)  # path[j] bought at prices[j-1] and sold at prices[j]
        utilities[through, result.path[through, j]] = result.prices[through, j] - result.prices[through, j - 1]
        ends = np.flatnonzero(result.hops == j)  # path[j] keeps the item
        node = result.path[ends, j]
        utilities[ends, node] = values[ends, node] - result.prices[ends, j - 1]
    sold = result.hops >= 1
    result.revenue[:] = np.where(sold, result.prices[:, 0], 0)
    utilities[:, seller] = np.where(sold, result.revenue, values[:, seller])
    return Stage3(result, tied)


def replay_row(
    relation: RoundsRelation, values: IntArray, parents: NDArray[np.intp], seed: int
) -> tuple[list[Hop], str]:
    """The reference: ``replay_stage3`` on one row."""
    nodes = relation.layout.nodes
    bids = {n: int(values[c]) for c, n in enumerate(nodes)}
    participants, parent_of, inviters = relation.replay_relation(parents)
    return replay_stage3(
        seller=relation.layout.seller, bids=bids, participants=participants, parents=parent_of, inviters=inviters,
        seed=seed,
    )


def set_row(relation: RoundsRelation, out: Outcomes, row: int, values: IntArray, hops: list[Hop], winner: str) -> None:
    """Overwrite one row of ``out`` with a reference outcome."""
    layout = relation.layout
    vals = {n: int(values[c]) for c, n in enumerate(layout.nodes)}
    utilities, revenue = utilities_from_hops(layout.seller, vals, hops, winner)
    out.path[row] = -1
    out.prices[row] = -1
    out.path[row, 0] = layout.column[layout.seller]
    for h in hops:
        out.path[row, h.hop] = layout.column[h.buyer]
        out.prices[row, h.hop - 1] = h.price
    out.hops[row] = len(hops)
    out.winner[row] = layout.column[winner]
    out.revenue[row] = revenue
    out.utilities[row] = [utilities[n] for n in layout.nodes]


def evaluate_exact(
    relation: RoundsRelation, values: IntArray, parents: NDArray[np.intp], seeds: NDArray[np.int64]
) -> tuple[Outcomes, int]:
    """:func:`evaluate`, with the tie-broken rows recomputed by the reference under run seed ``seeds[row]``.

    Returns the outcomes and how many rows the reference recomputed.
    """
    stage3 = evaluate(relation, values, parents)
    redo = np.flatnonzero(stage3.tied)
    for row in redo:
        hops, winner = replay_row(relation, values[row], parents[row], int(seeds[row]))
        set_row(relation, stage3.outcomes, int(row), values[row], hops, winner)
    return stage3.outcomes, len(redo)
