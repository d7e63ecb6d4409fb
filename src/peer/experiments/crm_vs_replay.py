"""SRA against the paper's centralized reduction (CRM): Thm 4.6 and Prop. 5.4, checked exhaustively.

Thm 4.6 says CRM computed on a spanning tree T equals SRA on the same tree.
For each small instance we run the distributed SRA, take its realised tree
(every node's parent), compute :func:`peer.reference.crm.crm_on_tree` on that
tree with the same values, and compare resale path, prices, winner and
utilities with the distributed run (which must itself equal its replay).

CRM picks the highest bidder z with its own random tie-break, SRA breaks ties
in its local auctions: the two agree *up to ties* when some choice of z among
the tied highest values makes CRM equal SRA; a *disagreement* is an instance
where no choice does.

Prop. 5.4 says the seller's revenue under SRA and under CRM (averaged over
ALL spanning trees) is never below VCG among the seller's neighbours.  We
check CRM exactly (every spanning tree enumerated, ties for z averaged
uniformly) and SRA run by run.
"""

from __future__ import annotations

import argparse
import sys
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import networkx as nx

from peer.experiments.deviations import Instance, connected_atlas, make_instance, value_profile
from peer.reference.crm import TreeIndex, crm_on_tree, diffusion_path, tree_path
from peer.reference.replay import context_bid, replay_run
from peer.reference.spanning import ParentMap, enumerate_spanning_trees
from peer.reference.vcg import vcg_neighbours
from peer.result import Hop, utilities_from_hops
from peer.sim.run import simulate

MODES = ("rounds", "async")


# ---------------------------------------------------------------- one comparison


@dataclass(frozen=True)
class Side:
    """One mechanism's outcome on one tree."""

    hops: tuple[Hop, ...]
    winner: str
    utilities: tuple[tuple[str, int], ...]

    @staticmethod
    def of(seller: str, values: Mapping[str, int], hops: Sequence[Hop], winner: str) -> Side:
        utilities, _ = utilities_from_hops(seller, dict(values), list(hops), winner)
        return Side(tuple(hops), winner, tuple(sorted((n, int(u)) for n, u in utilities.items())))

    @property
    def revenue(self) -> int:
        return self.hops[0].price if self.hops else 0

    def path(self) -> str:
        steps = " ".join(f"{h.seller}->{h.buyer}@{h.price}" for h in self.hops)
        return f"{steps + '; ' if steps else ''}{self.winner} keeps"


class _Pick:
    """A stand-in for ``random.Random`` whose ``choice`` returns a given element: CRM with a chosen z."""

    def __init__(self, z: str) -> None:
        self.z = z

    def choice(self, seq: Sequence[str]) -> str:
        return self.z if self.z in seq else seq[0]


@dataclass(frozen=True)
class Comparison:
    instance: Instance
    mode: str
    parents: tuple[tuple[str, str | None], ...]  # the realised tree
    inviters: tuple[tuple[str, tuple[str, ...]], ...]
    sra: Side  # the distributed run
    replay_matches: bool  # the distributed run equals its central replay
    crm: dict[str, Side]  # CRM on the realised tree, for each highest bidder z CRM may pick

    @property
    def agrees(self) -> bool:
        """Some tie-break of z makes CRM equal SRA (path, prices, winner, utilities)."""
        return any(side == self.sra for side in self.crm.values())

    @property
    def same_utilities(self) -> bool:
        """Some tie-break of z gives every node the same utility as SRA (the paths may still differ)."""
        return any(side.utilities == self.sra.utilities for side in self.crm.values())

    @property
    def tie_only(self) -> bool:
        """They agree, but only for some of the tied choices of z."""
        return self.agrees and any(side != self.sra for side in self.crm.values())

    @property
    def parent_map(self) -> ParentMap:
        return dict(self.parents)


def compare(instance: Instance, mode: str = "rounds") -> Comparison:
    """Run SRA, then CRM on SRA's realised tree; see :class:`Comparison`."""
    run, _ = simulate(instance.scenario(), seed=instance.seed, mode=mode)
    values = instance.value_map
    replayed = replay_run(run, values)
    parents: ParentMap = {n: r.parent for n, r in run.nodes.items() if r.parent is not None or n == run.seller}
    graph = instance.graph()
    adjacency = {n: set(graph.neighbors(n)) for n in graph.nodes}
    buyers = [n for n in parents if n != instance.seller]
    crm: dict[str, Side] = {}
    if buyers:
        top = max(values[b] for b in buyers)
        for z in sorted(b for b in buyers if values[b] == top):
            hops, winner = crm_on_tree(adjacency, instance.seller, values, parents, _Pick(z))  # type: ignore[arg-type]
            crm[z] = Side.of(instance.seller, values, hops, winner)
    else:
        crm[instance.seller] = Side.of(instance.seller, values, [], instance.seller)
    return Comparison(
        instance=instance,
        mode=mode,
        parents=tuple(sorted(parents.items())),
        inviters=tuple(sorted((n, tuple(r.inviters)) for n, r in run.nodes.items())),
        sra=Side.of(instance.seller, values, run.hops, run.winner or instance.seller),
        replay_matches=replayed.hops == run.hops and replayed.winner == run.winner,
        crm=crm,
    )


# ---------------------------------------------------------------- why they differ


def explain(c: Comparison) -> str:
    """Both computations side by side: SRA's local auctions (context bids) and CRM's outside maxima."""
    values = c.instance.value_map
    parents = c.parent_map
    inviters = {n: set(i) for n, i in c.inviters}
    children: dict[str, list[str]] = {}
    for node, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(node)
    invitees = {n: sorted(m for m, inv in inviters.items() if n in inv) for n in values}
    lines = [f"instance: {c.instance.describe()} mode {c.mode}",
             "realised tree: " + " ".join(f"{n}<-{p}" for n, p in c.parents if p is not None),
             "inviters: " + " ".join(f"{n}<-{{{','.join(i)}}}" for n, i in c.inviters if i)]
    lines.append(f"SRA: {c.sra.path()}; revenue {c.sra.revenue}")
    for hop in c.sra.hops + (Hop(len(c.sra.hops) + 1, c.sra.winner, "", 0),):
        host = hop.seller
        bids = {j: context_bid(j, host, values, children, inviters) for j in invitees[host]}
        if bids:
            cut = {j: [k for k in children.get(j, ()) if host in inviters[k]] for j in bids}
            shown = ", ".join(
                f"{j}:{b}" + (f" (cuts {','.join(cut[j])})" if cut[j] else "") for j, b in sorted(bids.items())
            )
            lines.append(f"  hop {hop.hop}: host {host} (value {values[host]}) context bids {shown}")
    index = TreeIndex(parents, c.instance.seller, values)
    graph = c.instance.graph()
    adjacency = {n: set(graph.neighbors(n)) for n in graph.nodes}
    for z, side in c.crm.items():
        path = diffusion_path(tree_path(parents, z), adjacency)
        outside = ", ".join(f"v1st(T-{h})={index.outside_max(h)}" for h in path[1:])
        lines.append(f"CRM (z={z}): diffusion path {'-'.join(path)}; {outside}; {side.path()}; revenue {side.revenue}")
    differing = [n for (n, u), (_, w) in zip(c.sra.utilities, next(iter(c.crm.values())).utilities) if u != w]
    lines.append("utilities SRA : " + " ".join(f"{n}={u}" for n, u in c.sra.utilities))
    for z, side in c.crm.items():
        lines.append(f"utilities CRM({z}): " + " ".join(f"{n}={u}" for n, u in side.utilities))
    if differing:
        lines.append("differ for: " + ", ".join(differing))
    return "\n".join(lines)


# ---------------------------------------------------------------- Prop. 5.4


def crm_expected_revenue(graph: nx.Graph, seller: str, values: Mapping[str, int]) -> tuple[Fraction, int, int]:
    """CRM's exact expected revenue: (revenue, trees, trees whose revenue is below VCG-neighbours').

    Every spanning tree is enumerated; within a tree, ties for z are averaged uniformly.
    """
    adjacency = {n: set(graph.neighbors(n)) for n in graph.nodes}
    buyers = [n for n in graph.nodes if n != seller]
    top = max(values[b] for b in buyers)
    tied = sorted(b for b in buyers if values[b] == top)
    vcg = vcg_revenue(graph, seller, values)
    total = Fraction(0)
    trees = low = 0
    for parents in enumerate_spanning_trees(graph, seller):
        trees += 1
        tree_rev = Fraction(0)
        for z in tied:
            hops, _ = crm_on_tree(adjacency, seller, values, parents, _Pick(z))  # type: ignore[arg-type]
            tree_rev += hops[0].price if hops else 0
        tree_rev /= len(tied)
        low += tree_rev < vcg
        total += tree_rev
    return total / trees, trees, low


def vcg_revenue(graph: nx.Graph, seller: str, values: Mapping[str, int]) -> int:
    return int(vcg_neighbours(graph, seller, values, seed=0).revenue)


@dataclass(frozen=True)
class Prop54Violation:
    instance: Instance
    crm_revenue: Fraction
    vcg_revenue: int
    trees: int
    trees_below: int

    def describe(self) -> str:
        return (f"{self.instance.describe()}: CRM revenue {self.crm_revenue} ({float(self.crm_revenue):.4f}) "
                f"< VCG-neighbours {self.vcg_revenue}; {self.trees_below}/{self.trees} spanning trees below")


def prop54_check(instance: Instance) -> Prop54Violation | None:
    graph = instance.graph()
    values = instance.value_map
    if graph.number_of_nodes() < 2:
        return None
    revenue, trees, low = crm_expected_revenue(graph, instance.seller, values)
    vcg = vcg_revenue(graph, instance.seller, values)
    return Prop54Violation(instance, revenue, vcg, trees, low) if revenue < vcg else None


# ---------------------------------------------------------------- the sweep


@dataclass(frozen=True)
class SweepConfig:
    atlas_max_nodes: int = 7
    prop54_max_nodes: int = 6
    seeds: tuple[int, ...] = (1, 2, 3)
    small_nodes: int = 4  # graphs up to this size get ``small_seeds`` instead (async realisations are rare)
    small_seeds: tuple[int, ...] = tuple(range(1, 41))
    profiles: tuple[str, ...] = ("distinct", "ties")
    modes: tuple[str, ...] = MODES


FULL = SweepConfig()
QUICK = SweepConfig(atlas_max_nodes=4, prop54_max_nodes=4, seeds=(1, 2), small_nodes=3, small_seeds=tuple(range(1, 21)))


def instances(
    max_nodes: int, profiles: Sequence[str], seeds: Sequence[int], *, small_nodes: int = 0,
    small_seeds: Sequence[int] = (),
) -> Iterator[Instance]:
    """Every connected atlas graph up to ``max_nodes``, every seller, every value profile and seed."""
    for index, graph in connected_atlas(2, max_nodes):
        for seller in sorted(graph.nodes):
            for profile in profiles:
                rng = random.Random(f"crm/values/{index}/{seller}/{profile}")
                buyers = sorted(n for n in graph.nodes if n != seller)
                vals = dict(zip(buyers, value_profile(profile, len(buyers), rng)))
                vals[seller] = 0
                for seed in small_seeds if graph.number_of_nodes() <= small_nodes else seeds:
                    yield make_instance(graph, seller, vals, seed, f"atlas G{index} {profile}")


@dataclass
class ModeStats:
    compared: int = 0
    agree_exactly: int = 0  # for every tie choice of z
    tie_only: int = 0  # agree for some tie choice of z only
    disagree_path: int = 0  # no z gives SRA's path, but some z gives every node SRA's utility
    disagree_utilities: int = 0  # no z gives SRA's utilities
    disagree_utilities_distinct: int = 0  # ... of which with all buyers' values distinct
    tree_graph_disagreements: int = 0  # disagreements on graphs that are trees (theory: none)
    tree_graphs: int = 0
    replay_mismatch: int = 0  # distributed != replay (a simulator bug)
    revenue_below_vcg: int = 0  # SRA runs whose revenue is below VCG among neighbours
    smallest_path: Comparison | None = None
    smallest: Comparison | None = None  # the smallest disagreement in utilities

    @property
    def disagree(self) -> int:
        return self.disagree_path + self.disagree_utilities

    def add(self, c: Comparison) -> None:
        instance = c.instance
        self.compared += 1
        self.replay_mismatch += not c.replay_matches
        self.revenue_below_vcg += c.sra.revenue < vcg_revenue(instance.graph(), instance.seller, instance.value_map)
        is_tree = nx.is_tree(instance.graph())
        self.tree_graphs += is_tree
        if c.agrees:
            self.tie_only += c.tie_only
            self.agree_exactly += not c.tie_only
            return
        self.tree_graph_disagreements += is_tree
        if c.same_utilities:
            self.disagree_path += 1
            if self.smallest_path is None or _size(instance) < _size(self.smallest_path.instance):
                self.smallest_path = c
            return
        self.disagree_utilities += 1
        buyers = [v for n, v in instance.values if n != instance.seller]
        self.disagree_utilities_distinct += len(set(buyers)) == len(buyers)
        if self.smallest is None or _size(instance) < _size(self.smallest.instance):
            self.smallest = c


@dataclass
class SweepReport:
    modes: dict[str, ModeStats] = field(default_factory=dict)
    prop54_checked: int = 0
    prop54_violations: int = 0
    prop54_smallest: Prop54Violation | None = None
    prop54_smallest_distinct: Prop54Violation | None = None
    seconds: float = 0.0


def _size(instance: Instance) -> tuple[int, int, int]:
    n, m = instance.size
    return n, m, sum(v for _, v in instance.values)


def sweep(config: SweepConfig = FULL) -> SweepReport:
    start = time.perf_counter()
    report = SweepReport(modes={m: ModeStats() for m in config.modes})
    for instance in instances(config.atlas_max_nodes, config.profiles, config.seeds,
                              small_nodes=config.small_nodes, small_seeds=config.small_seeds):
        for mode in config.modes:
            report.modes[mode].add(compare(instance, mode))
    seeds = config.seeds[:1]  # CRM's average does not depend on the run seed
    for instance in instances(config.prop54_max_nodes, config.profiles, seeds):
        report.prop54_checked += 1
        v = prop54_check(instance)
        if v is None:
            continue
        report.prop54_violations += 1
        if report.prop54_smallest is None or _size(instance) < _size(report.prop54_smallest.instance):
            report.prop54_smallest = v
        if "distinct" in instance.label and (
            report.prop54_smallest_distinct is None or _size(instance) < _size(report.prop54_smallest_distinct.instance)
        ):
            report.prop54_smallest_distinct = v
    report.seconds = time.perf_counter() - start
    return report


# ---------------------------------------------------------------- the paper-figure2 scenario


def figure2_revenues(path: str, seed: int = 1) -> dict[str, object]:
    """CRM (exact over all spanning trees) and VCG-neighbours revenue on a scenario file."""
    from peer.mechanisms import run_mechanism
    from peer.scenario.load import load_scenario

    scenario = load_scenario(path)
    crm_run = run_mechanism("crm", scenario, seed=seed)
    vcg_run = run_mechanism("vcg-neighbours", scenario, seed=seed)
    exact, trees, below = crm_expected_revenue(scenario.graph, scenario.seller, scenario.values)
    sra_runs = [simulate(scenario, seed=s, mode="rounds")[0].revenue for s in range(seed, seed + 20)]
    return {
        "values": dict(scenario.values),
        "crm_revenue": crm_run.revenue,
        "crm_trees": crm_run.extra.get("trees"),
        "crm_exact": exact,
        "trees_below_vcg": below,
        "trees": trees,
        "vcg_revenue": vcg_run.revenue,
        "sra_min_revenue_20_seeds": min(sra_runs),
    }


# ---------------------------------------------------------------- output


def render(report: SweepReport) -> list[object]:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"CRM on SRA's realised tree vs distributed SRA ({report.seconds:.1f} s)")
    for col in ("mode", "compared", "agree", "agree up to ties", "path differs only", "utilities differ",
                "(distinct values)", "on tree graphs", "replay mismatch", "SRA rev < VCG", "smallest (n, m)"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for mode, s in report.modes.items():
        table.add_row(mode, str(s.compared), str(s.agree_exactly), str(s.tie_only), str(s.disagree_path),
                      str(s.disagree_utilities), str(s.disagree_utilities_distinct),
                      f"{s.tree_graph_disagreements}/{s.tree_graphs}", str(s.replay_mismatch),
                      str(s.revenue_below_vcg), "-" if s.smallest is None else str(s.smallest.instance.size))
    out: list[object] = [table]
    for mode, s in report.modes.items():
        if s.smallest is not None:
            out.append(Text(f"\nsmallest disagreement in utilities, {mode} mode:\n{explain(s.smallest)}"))
        if s.smallest_path is not None:
            out.append(Text(f"\nsmallest path-only disagreement, {mode} mode:\n{explain(s.smallest_path)}"))
    out.append(Text(f"\nProp. 5.4 for CRM averaged over all spanning trees: {report.prop54_violations} violations "
                    f"in {report.prop54_checked} instances"))
    if report.prop54_smallest is not None:
        out.append(Text(f"smallest: {report.prop54_smallest.describe()}"))
    if report.prop54_smallest_distinct is not None:
        out.append(Text(f"smallest with distinct values: {report.prop54_smallest_distinct.describe()}"))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--figure2", default=None, help="a scenario file to check Prop. 5.4 on (e.g. paper-figure2)")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 200)
    report = sweep(QUICK if args.quick else FULL)
    for item in render(report):
        console.print(item)
    if args.figure2:
        console.print(figure2_revenues(args.figure2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
