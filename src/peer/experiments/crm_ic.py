"""Is the centralized SRA (CRM averaged over spanning trees, Eq. 5) incentive compatible?  An exhaustive count.

The paper closes Sec. 5.1 with "the centralized SRA is IC because the
execution is done by the center and for each randomly chosen resale path,
the execution is similar to IDM".  This module checks the claim for value
misreports: on every connected graph of networkx's atlas with up to
``max_nodes`` nodes, every seller, every vector of buyer values in
0..``max_value`` (the seller's reserve 0), every buyer and every report in
0..``max_value`` + 1, it computes the buyer's exact expected utility under
CRM (every spanning tree enumerated, ties for the highest bidder z averaged
uniformly), with its TRUE value, and counts the reports that beat the truth.

Run: ``python -m peer.experiments.crm_ic [--max-nodes 4] [--max-value 3]``.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import networkx as nx

from peer.experiments.deviation_instances import connected_atlas
from peer.reference.crm import TreeIndex, diffusion_path, tree_path
from peer.reference.spanning import ParentMap, enumerate_spanning_trees
from peer.reference.walk import resale_walk


@dataclass(frozen=True)
class Misreport:
    """A report that raises a buyer's expected utility under CRM."""

    edges: tuple[tuple[str, str], ...]
    values: tuple[tuple[str, int], ...]
    buyer: str
    report: int
    truthful: Fraction  # the buyer's expected utility when it reports its value
    deviant: Fraction  # ... when it reports ``report`` (valued at its true value)

    @property
    def size(self) -> tuple[int, int, int]:
        return len(self.values), len(self.edges), sum(v for _, v in self.values)

    def describe(self) -> str:
        edges = " ".join(f"{u}-{v}" for u, v in self.edges)
        vals = " ".join(f"{n}={v}" for n, v in self.values)
        return (f"edges [{edges}] values [{vals}] seller s: {self.buyer} reports {self.report}; expected utility "
                f"{self.truthful} -> {self.deviant} (gain {self.deviant - self.truthful})")


@dataclass
class IcCount:
    graphs: int = 0
    instances: int = 0  # (graph, seller, value vector)
    reports: int = 0  # (instance, buyer, report != value) pairs evaluated
    profitable: int = 0
    instances_with_gain: int = 0
    found: list[Misreport] = field(default_factory=list)

    @property
    def smallest(self) -> Misreport | None:
        return min(self.found, key=lambda m: (m.size, m.describe()), default=None)

    @property
    def distinct(self) -> list[Misreport]:
        """The profitable misreports where the buyers' true values are pairwise distinct."""
        out = []
        for m in self.found:
            vals = [v for n, v in m.values if n != "s"]
            if len(set(vals)) == len(vals):
                out.append(m)
        return out


def expected_utility(adjacency: Mapping[str, set[str]], seller: str, reports: Mapping[str, int], buyer: str,
                     true_value: int, trees: Sequence[ParentMap]) -> Fraction:
    """``buyer``'s exact expected utility under CRM on ``reports``, valued at ``true_value``.

    Averaged over every spanning tree, and within a tree uniformly over the
    tied highest bidders z.  A buyer pays for each hop it buys and is paid for
    each hop it sells; it gets ``true_value`` if it ends with the item.
    """
    buyers = [n for n in reports if n != seller]
    top = max(reports[b] for b in buyers)
    tied = sorted(b for b in buyers if reports[b] == top)
    total = Fraction(0)
    for parents in trees:
        index = TreeIndex(parents, seller, reports)
        per_tree = Fraction(0)
        for z in tied:
            path = diffusion_path(tree_path(parents, z), adjacency)
            hops, winner = resale_walk(path, reports, index.outside_max)
            u = true_value if winner == buyer else 0
            for h in hops:
                if h.buyer == buyer:
                    u -= h.price
                if h.seller == buyer:
                    u += h.price
            per_tree += u
        total += per_tree / len(tied)
    return total / len(trees)


def _named(graph: nx.Graph, seller: object) -> tuple[nx.Graph, list[str]]:
    others = sorted((n for n in graph.nodes if n != seller), key=repr)
    names = {seller: "s", **{n: "abcdefghijklmnopqr"[i] for i, n in enumerate(others)}}
    return nx.relabel_nodes(graph, names), [names[n] for n in others]


def search(max_nodes: int = 4, max_value: int = 3, min_nodes: int = 2) -> IcCount:
    """Every (graph, seller, values, buyer, report) in range; the profitable misreports."""
    count = IcCount()
    for _index, graph in connected_atlas(min_nodes, max_nodes):
        count.graphs += 1
        for seller in sorted(graph.nodes):
            named, buyers = _named(graph, seller)
            adjacency = {n: set(named.neighbors(n)) for n in named.nodes}
            trees = list(enumerate_spanning_trees(named, "s"))
            edges = tuple(sorted(tuple(sorted(e)) for e in named.edges))
            for vector in itertools.product(range(max_value + 1), repeat=len(buyers)):
                values = {"s": 0, **dict(zip(buyers, vector))}
                count.instances += 1
                gained = False
                for buyer in buyers:
                    truth = expected_utility(adjacency, "s", values, buyer, values[buyer], trees)
                    for report in range(max_value + 2):
                        if report == values[buyer]:
                            continue
                        count.reports += 1
                        lie = expected_utility(adjacency, "s", {**values, buyer: report}, buyer, values[buyer],
                                               trees)
                        if lie > truth:
                            count.profitable += 1
                            gained = True
                            count.found.append(Misreport(edges, tuple(sorted(values.items())), buyer, report,
                                                         truth, lie))
                count.instances_with_gain += gained
    return count


def per_tree(graph_edges: Sequence[tuple[str, str]], values: Mapping[str, int], buyer: str,
             report: int) -> Iterator[tuple[str, Fraction, Fraction]]:
    """For the write-up: each spanning tree, with the buyer's utility truthful and misreporting."""
    graph = nx.Graph(list(graph_edges))
    adjacency = {n: set(graph.neighbors(n)) for n in graph.nodes}
    for parents in enumerate_spanning_trees(graph, "s"):
        label = " ".join(f"{p}->{c}" for c, p in sorted(parents.items()) if p is not None)
        truth = expected_utility(adjacency, "s", values, buyer, values[buyer], [parents])
        lie = expected_utility(adjacency, "s", {**values, buyer: report}, buyer, values[buyer], [parents])
        yield label, truth, lie


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-nodes", type=int, default=4)
    parser.add_argument("--max-value", type=int, default=3)
    args = parser.parse_args(argv)
    count = search(args.max_nodes, args.max_value)
    print(f"{count.graphs} connected graphs of 2..{args.max_nodes} nodes, every seller, buyer values in "
          f"0..{args.max_value}: {count.instances} instances, {count.reports} misreports evaluated")
    print(f"profitable misreports: {count.profitable}, in {count.instances_with_gain} instances")
    distinct = count.distinct
    print(f"of which with pairwise distinct buyer values: {len(distinct)}")
    smallest_distinct = min(distinct, key=lambda m: (m.size, m.describe()), default=None)
    for title, found in (("smallest", count.smallest), ("smallest with distinct values", smallest_distinct)):
        if found is None:
            continue
        print(f"{title}:", found.describe())
        for label, truth, lie in per_tree(found.edges, dict(found.values), found.buyer, found.report):
            print(f"  tree {label}: u = {truth} truthful, {lie} misreporting")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
