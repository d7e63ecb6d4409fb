"""networkx's Barabási–Albert graph, built straight on string node ids.

``nx.relabel``-style conversion of a 100,000-node generated graph cost as much
as generating it (1.2-2.0 s each: networkx makes an edge-attribute dict and
checks both ends for every edge, twice).  This builds the same graph in one
pass: the same algorithm and the same draws from the same ``random.Random``
stream as ``networkx.barabasi_albert_graph(n, m, seed)`` (a star on m + 1
nodes, then each new node attaches to m distinct nodes drawn from the list of
edge ends), and the same node and adjacency order that
:func:`peer.scenario.graphs.as_string_graph` gives networkx's graph, so every
run on it is the run it was.  ``tests/sim/test_barabasi_albert.py`` pins
the equality against networkx.
"""

from __future__ import annotations

import gc
import random

import networkx as nx


def barabasi_albert_strings(n: int, m: int, seed: int) -> nx.Graph:
    if m < 1 or m >= n:
        raise nx.NetworkXError(f"Barabási–Albert network must have m >= 1 and m < n, m = {m}, n = {n}")
    # The build allocates about 7 container objects per node and none of them is garbage, so the
    # collector's passes in between would be wasted: at 100,000 nodes they were a third of it.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(n, m, seed)
    finally:
        if was_enabled:
            gc.enable()


def _build(n: int, m: int, seed: int) -> nx.Graph:
    rng = random.Random(seed)
    choice = rng.choice
    getrandbits = rng.getrandbits
    # rng.choice(seq) is seq[rng._randbelow(len(seq))], and _randbelow draws getrandbits(k) for
    # k = len(seq).bit_length() until one is below len(seq): done inline, the same draws, without
    # the two Python calls per draw (300,000 draws at 100,000 nodes), where _randbelow is that.
    inline = random.Random._randbelow is random.Random._randbelow_with_getrandbits  # type: ignore[attr-defined]
    # adjacency of the int graph, each list in networkx's insertion order
    adj: list[list[int]] = [list(range(1, m + 1))] + [[0] for _ in range(m)]
    repeated = [0] * m + list(range(1, m + 1))  # each node once per edge end (networkx's order)
    for source in range(m + 1, n):
        targets: set[int] = set()
        if inline:
            size = len(repeated)
            bits = size.bit_length()
            while len(targets) < m:  # networkx's _random_subset
                r = getrandbits(bits)
                while r >= size:
                    r = getrandbits(bits)
                targets.add(repeated[r])
        else:
            while len(targets) < m:
                targets.add(choice(repeated))
        adj.append(list(targets))
        for t in targets:
            adj[t].append(source)
        repeated.extend(targets)
        repeated.extend([source] * m)
    names = [str(i) for i in range(n)]
    nodes: dict[str, dict[str, object]] = {name: {} for name in names}
    string_adj: dict[str, dict[str, dict[str, object]]] = {name: {} for name in names}
    # What Graph.add_edges_from does with networkx's edge order (each node's neighbours after it,
    # in adjacency order), which decides the string graph's adjacency order as in
    # as_string_graph: one attribute dict per edge, shared by both ends.  Done here directly,
    # without its per-edge membership checks, which were most of the cost.
    for u in range(n):
        su = names[u]
        out = string_adj[su]
        for v in adj[u]:
            if v > u:
                sv = names[v]
                data: dict[str, object] = {}
                out[sv] = data
                string_adj[sv][su] = data
    graph = nx.Graph()
    graph._node = nodes  # networkx's own node and adjacency stores, before any view of them is made
    graph._adj = string_adj
    return graph
