"""Cluster membership: explicit, or computed alike by every node from the graph and the seed.

``auto_membership`` runs networkx's Louvain community detection on a canonical
copy of the graph (nodes and edges inserted in sorted order, so the input's
iteration order cannot change the result), then rebalances towards k clusters
of near-equal size (k = round(sqrt(n)) unless given; sqrt(n) minimises the
traffic, Prop. 11): communities are laid end to end, largest first, each in
breadth-first order from its smallest node, and the sequence is cut into k
consecutive chunks of sizes differing by at most one.  A big community is
thereby split into neighbouring pieces and small ones are merged with the
next, so clusters stay mostly local in the graph (cheaper gossip) while the
traffic formula sees equal sizes.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import networkx as nx


@dataclass(frozen=True)
class Membership:
    """Clusters by id (sorted), each a sorted tuple of node ids."""

    clusters: Mapping[str, tuple[str, ...]]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for cid, members in self.clusters.items():
            if not members:
                raise ValueError(f"cluster {cid!r} is empty")
            if tuple(sorted(members)) != tuple(members):
                raise ValueError(f"cluster {cid!r} is not in canonical order")
            if seen & set(members):
                raise ValueError(f"cluster {cid!r} shares members with another cluster")
            seen |= set(members)
        if list(self.clusters) != sorted(self.clusters):
            raise ValueError("cluster ids are not in canonical order")

    @cached_property
    def cluster_of(self) -> dict[str, str]:
        return {m: cid for cid, members in self.clusters.items() for m in members}

    @cached_property
    def nodes(self) -> tuple[str, ...]:
        return tuple(sorted(self.cluster_of))

    @property
    def n(self) -> int:
        return len(self.cluster_of)

    @property
    def k(self) -> int:
        return len(self.clusters)

    @cached_property
    def ids(self) -> tuple[str, ...]:
        return tuple(self.clusters)

    def size(self, cid: str) -> int:
        return len(self.clusters[cid])

    @cached_property
    def digest(self) -> str:
        """Hash of the whole membership: nodes that agree on it agree on this."""
        h = hashlib.sha256(b"peer/qpq/v1/membership\x00")
        for cid, members in self.clusters.items():
            h.update(len(cid.encode()).to_bytes(4, "big") + cid.encode() + len(members).to_bytes(4, "big"))
            for m in members:
                h.update(len(m.encode()).to_bytes(4, "big") + m.encode())
        return h.hexdigest()


def cluster_ids(k: int) -> list[str]:
    width = len(str(max(k - 1, 0)))
    return [f"c{i:0{width}d}" for i in range(k)]


def explicit_membership(cluster_of: Mapping[str, str]) -> Membership:
    groups: dict[str, list[str]] = {}
    for node, cid in cluster_of.items():
        groups.setdefault(cid, []).append(node)
    return Membership({cid: tuple(sorted(groups[cid])) for cid in sorted(groups)})


def chunk_membership(ordered: Sequence[str], k: int) -> Membership:
    """Cut ``ordered`` into k consecutive chunks whose sizes differ by at most one."""
    n = len(ordered)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    base, extra = divmod(n, k)
    out: dict[str, tuple[str, ...]] = {}
    start = 0
    for i, cid in enumerate(cluster_ids(k)):
        size = base + (1 if i < extra else 0)
        out[cid] = tuple(sorted(ordered[start:start + size]))
        start += size
    return Membership(out)


def default_k(n: int) -> int:
    return max(1, min(n, round(math.sqrt(n))))


def auto_membership(graph: nx.Graph, *, seed: int, k: int | None = None) -> Membership:
    """Community detection, then rebalancing towards k clusters (see the module docstring)."""
    canonical = nx.Graph()
    canonical.add_nodes_from(sorted(str(v) for v in graph.nodes))
    canonical.add_edges_from(sorted(tuple(sorted((str(u), str(v)))) for u, v in graph.edges if u != v))
    n = canonical.number_of_nodes()
    if n == 0:
        raise ValueError("the graph has no nodes")
    k = default_k(n) if k is None else k
    if k == 1:
        return chunk_membership(sorted(canonical.nodes), 1)
    communities = nx.community.louvain_communities(canonical, seed=seed)
    ordered_communities = sorted((sorted(c) for c in communities), key=lambda c: (-len(c), c[0]))
    sequence: list[str] = []
    for community in ordered_communities:
        sequence.extend(_bfs_order(canonical.subgraph(community), community))
    return chunk_membership(sequence, k)


def _bfs_order(sub: nx.Graph, members: list[str]) -> list[str]:
    """Breadth-first from the smallest node, neighbours in sorted order; unreachable ones appended."""
    order: list[str] = []
    seen: set[str] = set()
    for root in members:  # sorted: restarts pick up any piece the first search missed
        if root in seen:
            continue
        seen.add(root)
        queue = deque([root])
        while queue:
            node = queue.popleft()
            order.append(node)
            for nb in sorted(sub.neighbors(node)):
                if nb not in seen:
                    seen.add(nb)
                    queue.append(nb)
    return order
