"""Unilateral deviations from SRA's intended strategy: a brute-force check of Thm 5.3.

For each small instance (graph, integer values, seller, run seed) the harness
runs the distributed SRA in rounds mode once honestly, then once for every
(non-seller node, deviation) pair with the SAME run seed, and compares the
deviator's utility, always computed with its TRUE value, against honest play.
A deviation may change the realised tree (who invites whom, parent choices):
that is part of what is tested.

Deviation kinds.  The first six are the strategies of the paper's proof of
Thm 5.3, expressed with :class:`peer.sra.machine.Behaviour`:

* ``shade`` / ``inflate``: declare a bid below / above the true value;
* ``invite-subset``: forward the invitation to a proper subset of the
  neighbours it would invite;
* ``report-to-all``: send the stage-2 Bid to every inviter (needs >= 2);
* ``aggregate-low`` / ``aggregate-high``: report a stage-2 aggregate below /
  above the true max.

Two more go beyond the proof (``Behaviour.context`` and ``Behaviour.parent``;
a :class:`Deviation` keeps them in their own fields so that the replay check
knows about them):

* ``context-low`` / ``context-high``: report a wrong *stage-3* context bid
  (the aggregate that the local auctions actually use);
* ``parent-choice``: pick a specific inviter as parent instead of the seeded
  uniform choice (the paper's intended action is "randomly select one").

A profitable deviation (gain > 0) is re-checked against a central replay of
stage 3 on the deviant run's realised tree, so that a finding is not a
simulator artefact, and the smallest one per kind is shrunk (fewest nodes,
then fewest edges).

The instances, the replay check and the rendering live in
:mod:`~peer.experiments.deviation_instances`,
:mod:`~peer.experiments.deviation_replay` and
:mod:`~peer.experiments.deviation_output`; their names are re-exported here.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace

import networkx as nx

from peer.experiments.deviation_instances import (  # noqa: F401  (re-exported)
    LETTERS,
    Instance,
    connected_atlas,
    make_instance,
    random_connected,
    value_profile,
)
from peer.experiments.deviation_model import (  # noqa: F401  (re-exported)
    CATEGORIES,
    KINDS,
    Deviation,
    Finding,
    InstanceReport,
    KindStats,
    Outcome,
    Play,
    gain,
)
from peer.experiments.deviation_output import describe_finding, render  # noqa: F401  (re-exported)
from peer.experiments.deviation_replay import replay_agrees, replay_general  # noqa: F401  (re-exported)
from peer.sim.run import SimulationError, simulate
from peer.sra.machine import Behaviour

# ---------------------------------------------------------------- deviations


def bid_thresholds(values: Iterable[int]) -> list[int]:
    """Every amount that sits at, just below or just above some value: all order positions a bid can take."""
    out = {0}
    for v in values:
        out.update((v - 1, v, v + 1))
    return sorted(a for a in out if a >= 0)


def subsets_to_try(targets: Sequence[str], max_degree: int, rng: random.Random) -> list[frozenset[str]]:
    """Every proper subset of ``targets`` if there are at most ``max_degree``, else a seeded sample."""
    targets = sorted(targets)
    if len(targets) <= max_degree:
        return [frozenset(c) for r in range(len(targets)) for c in itertools.combinations(targets, r)]
    chosen = {frozenset(), *(frozenset(targets) - {t} for t in targets), *(frozenset({t}) for t in targets)}
    while len(chosen) < 2**max_degree:
        chosen.add(frozenset(t for t in targets if rng.random() < 0.5) - {targets[rng.randrange(len(targets))]})
    return sorted(chosen, key=lambda s: (len(s), sorted(s)))


def play(instance: Instance, node: str | None = None, deviation: Deviation | None = None) -> Play:
    """Run the distributed SRA of ``instance`` in rounds mode, ``node`` deviating by ``deviation``.

    A deviant run that does not complete raises SimulationError (strategic
    deviations are legal messages: such a run would be a bug).
    """
    scenario = instance.scenario()
    if node is not None and deviation is not None:
        scenario = scenario.with_behaviours({node: deviation.effective})
    result, network = simulate(scenario, seed=instance.seed, mode="rounds")
    parents = {n: tuple(m.parents) for n, m in network.machines.items()}
    timeouts = sum(len(m.silent) for m in network.machines.values())
    return Play(result, parents, tuple(r for r, _ in network.stats.rejected), timeouts)


def deviations_for(
    instance: Instance, node: str, honest: Play, *, max_degree: int = 5, kinds: Iterable[str] | None = None
) -> list[Deviation]:
    """Every deviation of ``node`` the sweep tries, given the honest run (its inviters, targets, aggregate)."""
    wanted = set(KINDS if kinds is None else kinds)
    values = instance.value_map
    v = values[node]
    top = max(values.values()) + 1
    report = honest.result.nodes[node]
    aggregate = max([v, *(values[c] for c in _subtree(node, honest.parents))])
    levels = [a for a in bid_thresholds(values.values()) if a <= top]
    out: list[Deviation] = []
    for amount in levels:
        if amount < v and "shade" in wanted:
            out.append(Deviation("shade", Behaviour(bid=amount)))
        if amount > v and "inflate" in wanted:
            out.append(Deviation("inflate", Behaviour(bid=amount)))
    if "invite-subset" in wanted:
        targets = [n for n in instance.graph().neighbors(node) if n not in report.inviters]
        rng = random.Random(f"dev/subsets/{instance.describe()}/{node}")
        out.extend(Deviation("invite-subset", Behaviour(invite_only=s)) for s in subsets_to_try(targets, max_degree, rng))
    if len(report.inviters) >= 2:
        if "report-to-all" in wanted:
            out.append(Deviation("report-to-all", Behaviour(report_to_all=True)))
        if "parent-choice" in wanted:
            out.extend(Deviation("parent-choice", parent=p) for p in report.inviters if p != report.parent)
    for amount in sorted({0, aggregate - 1, aggregate + 1, top} - {aggregate}):
        kind = "aggregate-low" if amount < aggregate else "aggregate-high"
        if amount >= 0 and kind in wanted:
            out.append(Deviation(kind, Behaviour(aggregate=amount)))
    for amount in levels:
        kind = "context-low" if amount < aggregate else "context-high"
        if amount != aggregate and kind in wanted:
            out.append(Deviation(kind, context=amount))
    return out


def _subtree(node: str, parents: dict[str, tuple[str, ...]]) -> set[str]:
    """Strict descendants of ``node`` in the realised parent relation."""
    children: dict[str, list[str]] = {}
    for child, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(child)
    seen: set[str] = set()
    stack = list(children.get(node, ()))
    while stack:
        x = stack.pop()
        if x not in seen:
            seen.add(x)
            stack.extend(children.get(x, ()))
    return seen


# ---------------------------------------------------------------- evaluation


Runner = Callable[[Instance, str | None, Deviation | None], Play]


def evaluate(
    instance: Instance, node: str, deviation: Deviation, honest: Play, deviant: Play, *, verify: bool = True
) -> Finding | None:
    """The comparator: a :class:`Finding` if ``deviant`` gives ``node`` more than ``honest`` did, else None.

    With ``verify``, the deviant run is replayed centrally on its realised tree.
    """
    g = gain(honest, deviant, node)
    if g <= 0:
        return None
    agrees = replay_agrees(instance, deviant, node, deviation) if verify else True
    return Finding(instance, node, deviation, Outcome.of(honest, node), Outcome.of(deviant, node), agrees,
                   deviant.rejected_by_others(node), honest.timeouts + deviant.timeouts)


def check_instance(
    instance: Instance,
    *,
    runner: Runner = play,
    max_degree: int = 5,
    kinds: Iterable[str] | None = None,
    verify: bool = True,
) -> InstanceReport:
    """Try every deviation of every buyer of ``instance``; collect the profitable ones."""
    report = InstanceReport()
    honest = runner(instance, None, None)
    if verify and not replay_agrees(instance, honest, None, None):
        report.honest_replay_mismatches.append(instance)
    for node in instance.nodes:
        if node == instance.seller or node not in honest.result.nodes or not honest.result.nodes[node].inviters:
            continue
        for deviation in deviations_for(instance, node, honest, max_degree=max_degree, kinds=kinds):
            stats = report.stats[deviation.kind]
            stats.tried += 1
            try:
                deviant = runner(instance, node, deviation)
            except SimulationError:
                stats.aborted += 1
                continue
            stats.rejected_runs += deviant.rejected_by_others(node) > 0
            stats.changed += (deviant.result.hops, deviant.result.winner) != (honest.result.hops, honest.result.winner)
            finding = evaluate(instance, node, deviation, honest, deviant, verify=verify)
            if finding is not None:
                stats.profitable[finding.category] += 1
                stats.max_gain[finding.category] = max(stats.max_gain[finding.category], finding.gain)
                report.findings.append(finding)
    return report


# ---------------------------------------------------------------- shrinking


def shrink(finding: Finding, *, runner: Runner = play) -> Finding:
    """Greedily delete edges and nodes while the same deviation stays profitable with the same seed."""
    current = finding
    improved = True
    while improved:
        improved = False
        for candidate in _smaller(current.instance, current.node, _kept_nodes(current)):
            smaller = _retry(current, candidate, runner)
            if smaller is not None:
                current = smaller
                improved = True
                break
    return current


def _kept_nodes(finding: Finding) -> set[str]:
    """Nodes a shrink step may not delete: the seller, the deviator, its chosen parent."""
    keep = {finding.instance.seller, finding.node}
    if finding.deviation.parent is not None:
        keep.add(finding.deviation.parent)
    return keep


def _smaller(instance: Instance, node: str, keep: set[str]) -> Iterator[Instance]:
    graph = instance.graph()
    for u, v in instance.edges:  # one edge fewer
        g = graph.copy()
        g.remove_edge(u, v)
        if nx.is_connected(g):
            yield replace(instance, edges=tuple(e for e in instance.edges if e != (u, v)))
    for x in instance.nodes:  # one node fewer
        if x in keep:
            continue
        g = graph.copy()
        g.remove_node(x)
        if g.number_of_nodes() and nx.is_connected(g):
            yield replace(
                instance,
                edges=tuple(e for e in instance.edges if x not in e),
                values=tuple(p for p in instance.values if p[0] != x),
            )


def _retry(finding: Finding, instance: Instance, runner: Runner) -> Finding | None:
    """The same deviation on a smaller instance, if it is still profitable in the same category."""
    deviation = finding.deviation
    only = deviation.behaviour.invite_only
    if only is not None:
        only = only & set(instance.graph().neighbors(finding.node))
        deviation = replace(deviation, behaviour=replace(deviation.behaviour, invite_only=only))
    try:
        honest = runner(instance, None, None)
        report = honest.result.nodes[finding.node]
        if only is not None and set(instance.graph().neighbors(finding.node)) - set(report.inviters) <= only:
            return None  # no longer a deviation
        if deviation.parent is not None and deviation.parent not in report.inviters:
            return None
        deviant = runner(instance, finding.node, deviation)
    except (SimulationError, KeyError):
        return None
    smaller = evaluate(instance, finding.node, deviation, honest, deviant)
    if smaller is None or smaller.category != finding.category:
        return None
    return smaller


# ---------------------------------------------------------------- the sweep


@dataclass(frozen=True)
class SweepConfig:
    atlas_min_nodes: int = 2
    atlas_max_nodes: int = 6
    random_graphs: int = 30
    random_nodes: tuple[int, int] = (7, 9)
    seeds: tuple[int, ...] = (1,)
    profiles: tuple[str, ...] = ("distinct", "ties")
    max_degree: int = 5
    shrink_candidates: int = 3  # how many of the smallest findings per kind to shrink
    workers: int = 1


FULL = SweepConfig(workers=os.cpu_count() or 1)
QUICK = SweepConfig(atlas_max_nodes=4, random_graphs=2, random_nodes=(5, 6), max_degree=3, shrink_candidates=1)


def instances(config: SweepConfig) -> list[Instance]:
    """Every instance of the sweep, in a fixed order (small graphs first)."""
    out: list[Instance] = []
    for index, graph in connected_atlas(config.atlas_min_nodes, config.atlas_max_nodes):
        for seller in sorted(graph.nodes):
            out.extend(_valued(graph, seller, config, f"atlas G{index}"))
    rng = random.Random("dev/random-graphs")
    lo, hi = config.random_nodes
    for k in range(config.random_graphs):
        graph = random_connected(rng.randint(lo, hi), rng)
        out.extend(_valued(graph, rng.choice(sorted(graph.nodes)), config, f"random #{k}"))
    return out


def _valued(graph: nx.Graph, seller: object, config: SweepConfig, label: str) -> Iterator[Instance]:
    for profile in config.profiles:
        rng = random.Random(f"dev/values/{label}/{seller}/{profile}")
        buyers = sorted((n for n in graph.nodes if n != seller), key=repr)
        vals = dict(zip(buyers, value_profile(profile, len(buyers), rng)))
        vals[seller] = 0
        for seed in config.seeds:
            yield make_instance(graph, seller, vals, seed, f"{label} {profile}")


@dataclass
class SweepReport:
    config: SweepConfig
    instances: int
    stats: dict[str, KindStats]
    smallest: dict[tuple[str, str], Finding]  # (kind, category) -> shrunk smallest counterexample
    findings: list[Finding]
    honest_replay_mismatches: list[Instance]
    seconds: float


def _check_chunk(args: tuple[list[Instance], int]) -> InstanceReport:
    chunk, max_degree = args
    report = InstanceReport()
    for instance in chunk:
        report.merge(check_instance(instance, max_degree=max_degree))
    return report


def sweep(config: SweepConfig = FULL) -> SweepReport:
    """Run every deviation on every instance; shrink the smallest counterexample of each kind."""
    start = time.perf_counter()
    todo = instances(config)
    total = InstanceReport()
    chunks = [todo[i::64] for i in range(64)] if config.workers > 1 else [todo]
    if config.workers > 1:
        with ProcessPoolExecutor(config.workers) as pool:
            for part in pool.map(_check_chunk, [(c, config.max_degree) for c in chunks]):
                total.merge(part)
    else:
        total.merge(_check_chunk((todo, config.max_degree)))
    total.findings.sort(key=lambda f: (f.key, f.node, f.deviation.describe()))
    smallest: dict[tuple[str, str], Finding] = {}
    for kind in KINDS:
        for category in CATEGORIES:
            candidates = [f for f in total.findings if f.deviation.kind == kind and f.category == category]
            shrunk = [shrink(f) for f in candidates[: config.shrink_candidates]]
            if shrunk:
                smallest[kind, category] = min(shrunk, key=lambda f: (f.key, f.node))
    return SweepReport(config, len(todo), total.stats, smallest, total.findings,
                       total.honest_replay_mismatches, time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep (``--quick`` for the small one) and print the table and the counterexamples."""
    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small sweep used by the tests")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    if args.workers is not None:
        config = replace(config, workers=args.workers)
    report = sweep(config)
    console = Console(width=None if sys.stdout.isatty() else 200)
    for item in render(report):
        console.print(item)
    console.print(f"time: {report.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
