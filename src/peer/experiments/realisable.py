"""The trees SRA can realise in rounds mode, against the spanning trees CRM averages over (Thm 4.6).

In rounds mode a node's inviters are exactly its neighbours one BFS level
closer to the seller, and every edge inside a level is void.  So the trees SRA
can build are the choices of one inviter per node: their number is the product
of the inviter counts.  CRM (Eq. 5) averages over every spanning tree of the
graph, including trees SRA never builds, so "CRM = SRA in rounds mode" holds
tree by tree but not as a distribution.

:func:`distribution_check` runs both: SRA over many run seeds (every realised
parent map is counted) and CRM exactly over all spanning trees.

Run: ``python -m peer.experiments.realisable [scenario.toml ...]``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import networkx as nx

from peer.reference.crm import crm
from peer.reference.spanning import count_spanning_trees
from peer.scenario.load import load_scenario
from peer.scenario.model import Scenario, explicit_scenario
from peer.sim.run import simulate


def rounds_inviters(graph: nx.Graph, seller: str) -> dict[str, list[str]]:
    """Each node's inviters in rounds mode: its neighbours one BFS level closer to the seller."""
    level = nx.single_source_shortest_path_length(graph, seller)
    return {n: sorted(m for m in graph.neighbors(n) if level.get(m) == level[n] - 1)
            for n in level if n != seller}


def realisable_trees(graph: nx.Graph, seller: str) -> int:
    """How many parent maps SRA can realise in rounds mode."""
    return math.prod(len(i) for i in rounds_inviters(graph, seller).values())


@dataclass(frozen=True)
class Distribution:
    name: str
    spanning_trees: int
    realisable: int
    seen: int  # distinct parent maps over the run seeds
    runs: int
    sra_revenue_mean: Fraction  # over the run seeds
    sra_revenue_min: int
    sra_revenue_max: int
    crm_revenue: Fraction  # exact, over every spanning tree

    def describe(self) -> str:
        return (f"{self.name}: {self.spanning_trees} spanning trees, {self.realisable} realisable by SRA in rounds "
                f"mode ({self.seen} seen in {self.runs} runs); SRA revenue mean {self.sra_revenue_mean} "
                f"({float(self.sra_revenue_mean):.6g}), range [{self.sra_revenue_min}, {self.sra_revenue_max}]; "
                f"CRM revenue {self.crm_revenue} ({float(self.crm_revenue):.6g})")


def distribution_check(scenario: Scenario, runs: int = 200) -> Distribution:
    graph, seller, values = scenario.graph, scenario.seller, scenario.values
    seen: set[tuple[tuple[str, str | None], ...]] = set()
    revenues: list[int] = []
    for seed in range(1, runs + 1):
        result, network = simulate(scenario, seed=seed, mode="rounds")
        seen.add(tuple(sorted((n, m.parents[0] if m.parents else None) for n, m in network.machines.items())))
        revenues.append(int(result.revenue))
    reference = crm(graph, seller, values, seed=1, enumerate_limit=10**6)
    assert reference.extra["trees_exact"]
    return Distribution(
        scenario.name, count_spanning_trees(graph), realisable_trees(graph, seller), len(seen), runs,
        Fraction(sum(revenues), runs), min(revenues), max(revenues), Fraction(reference.revenue),
    )


def triangle(a: int = 2, b: int = 4) -> Scenario:
    return explicit_scenario([("s", "a"), ("s", "b"), ("a", "b")], {"s": 0, "a": a, "b": b}, seller="s",
                             name="triangle")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help="scenario files (default: the triangle a=2, b=4)")
    parser.add_argument("--runs", type=int, default=200, help="run seeds per scenario")
    args = parser.parse_args(argv)
    scenarios: list[Scenario] = [triangle()] + [load_scenario(p) for p in args.scenarios]
    for scenario in scenarios:
        print(distribution_check(scenario, args.runs).describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
