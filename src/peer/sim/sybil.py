"""Sybil splitting: one node plays the auction as several identities.

``Behaviour(split=k)`` on node x (``[behaviours.x] split = k`` in a scenario
file) turns x into identities ``x#1`` .. ``x#k`` before the run:

* x's neighbours, in sorted order, are shuffled with a stream seeded by
  (run seed, x) and dealt round-robin: the i-th neighbour of the shuffled list
  is linked to identity ``x#(i mod k + 1)``.  So every identity gets
  ceil or floor of deg(x)/k of x's edges, and all of them get one if
  deg(x) >= k;
* k - 1 extra edges join the identities into a path ``x#1 - x#2 - ... - x#k``
  (x's own hidden links: the identities are one person);
* the value sits on ``x#1``: it declares x's value (and keeps any other
  deviation x has), the others declare 0 (``Behaviour(bid=0)``).  Every
  identity's *true* value is x's value, since whichever identity ends up with
  the item, x has it: the run's utilities then add up to x's real utility
  (resales between identities cancel out).

The seller cannot be split (she would be shill-bidding, another attack).
"""

from __future__ import annotations

import random
from dataclasses import replace

import networkx as nx

from peer.scenario.model import Scenario
from peer.sra.machine import HONEST, Behaviour


def identity_names(scenario: Scenario, node: str, k: int) -> list[str]:
    """``node#1`` .. ``node#k``, with extra ``#`` until no name clashes with an existing node."""
    sep = "#"
    while True:
        names = [f"{node}{sep}{i}" for i in range(1, k + 1)]
        if not any(n in scenario.graph for n in names):
            return names
        sep += "#"


def split_node(scenario: Scenario, node: str, k: int, seed: int) -> tuple[Scenario, list[str]]:
    """``scenario`` with ``node`` split into ``k`` identities (see the module docstring)."""
    if node == scenario.seller:
        raise ValueError("the seller cannot be split into identities")
    if node not in scenario.graph:
        raise ValueError(f"{node!r} is not a node of the scenario")
    if k < 1:
        raise ValueError("a node needs at least one identity")
    names = identity_names(scenario, node, k)
    neighbours = sorted(scenario.graph.neighbors(node))
    random.Random(f"sim/sybil/{seed}/{node}").shuffle(neighbours)
    graph = nx.Graph(scenario.graph)
    graph.remove_node(node)
    graph.add_nodes_from(names)
    for index, neighbour in enumerate(neighbours):
        graph.add_edge(names[index % k], neighbour)
    graph.add_edges_from(zip(names, names[1:]))
    value = scenario.values[node]
    values = {n: v for n, v in scenario.values.items() if n != node}
    values.update(dict.fromkeys(names, value))
    behaviours = {n: b for n, b in scenario.behaviours.items() if n != node}
    own = replace(scenario.behaviour(node), split=1)
    if own != HONEST:
        behaviours[names[0]] = own
    for name in names[1:]:
        behaviours[name] = Behaviour(bid=0)
    split = Scenario(scenario.name, scenario.seed, scenario.seller, graph, values, behaviours, scenario.source)
    return split, names


def apply_splits(scenario: Scenario, seed: int) -> tuple[Scenario, dict[str, list[str]]]:
    """Split every node whose behaviour asks for it.  Returns the new scenario and node -> identities."""
    out: dict[str, list[str]] = {}
    for node in sorted(n for n, b in scenario.behaviours.items() if b.split > 1):
        scenario, names = split_node(scenario, node, scenario.behaviour(node).split, seed)
        out[node] = names
    return scenario, out
