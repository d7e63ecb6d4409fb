"""Spanning trees of a (small or large) graph: count, enumerate, sample uniformly.

Trees are returned as parent maps rooted at a given node.  Uniform sampling
uses Wilson's algorithm (loop-erased random walks) with a seeded ``random.Random``:
it is exact, linear in the cover time, and needs no numpy; networkx's own
``random_spanning_tree`` was too slow at 1,000 nodes and its counts overflow.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from fractions import Fraction

import networkx as nx

ParentMap = dict[str, str | None]


def count_spanning_trees(graph: nx.Graph, limit: int | None = None) -> int:
    """The number of spanning trees (Kirchhoff), exact.  Stops early past ``limit`` if given.

    Uses fraction-free Gaussian elimination on a Laplacian minor, so it is
    exact with Python integers; intended for graphs of at most a few hundred nodes.
    """
    nodes = sorted(graph.nodes)
    if len(nodes) <= 1:
        return 1
    if not nx.is_connected(graph):
        return 0
    index = {n: i for i, n in enumerate(nodes)}
    size = len(nodes) - 1
    matrix = [[Fraction(0)] * size for _ in range(size)]
    for u, v in graph.edges:
        i, j = index[u] - 1, index[v] - 1
        if i >= 0:
            matrix[i][i] += 1
        if j >= 0:
            matrix[j][j] += 1
        if i >= 0 and j >= 0:
            matrix[i][j] -= 1
            matrix[j][i] -= 1
    det = Fraction(1)
    for col in range(size):
        pivot = next((r for r in range(col, size) if matrix[r][col] != 0), None)
        if pivot is None:
            return 0
        if pivot != col:
            matrix[col], matrix[pivot] = matrix[pivot], matrix[col]
            det = -det
        det *= matrix[col][col]
        inv = 1 / matrix[col][col]
        for r in range(col + 1, size):
            factor = matrix[r][col] * inv
            if factor:
                row, prow = matrix[r], matrix[col]
                for c in range(col, size):
                    row[c] -= factor * prow[c]
    count = int(abs(det))
    return count if limit is None or count <= limit else limit + 1


def root_tree(edges: list[tuple[str, str]], root: str) -> ParentMap:
    """Orient an edge set (a tree) away from ``root``."""
    adjacency: dict[str, list[str]] = {}
    for u, v in edges:
        adjacency.setdefault(u, []).append(v)
        adjacency.setdefault(v, []).append(u)
    parents: ParentMap = {root: None}
    stack = [root]
    while stack:
        x = stack.pop()
        for y in adjacency.get(x, ()):
            if y not in parents:
                parents[y] = x
                stack.append(y)
    return parents


def enumerate_spanning_trees(graph: nx.Graph, root: str) -> Iterator[ParentMap]:
    """Every spanning tree of a connected graph, each once, rooted at ``root``."""
    for tree in nx.SpanningTreeIterator(graph):
        yield root_tree(list(tree.edges), root)


def wilson_tree(adjacency: dict[str, list[str]], root: str, rng: random.Random) -> ParentMap:
    """A uniformly random spanning tree of a connected graph (Wilson 1996)."""
    in_tree = {root}
    parents: ParentMap = {root: None}
    successor: dict[str, str] = {}
    for start in sorted(adjacency):
        node = start
        while node not in in_tree:  # random walk; overwriting successors erases loops
            successor[node] = rng.choice(adjacency[node])
            node = successor[node]
        node = start
        while node not in in_tree:
            in_tree.add(node)
            parents[node] = successor[node]
            node = successor[node]
    return parents
