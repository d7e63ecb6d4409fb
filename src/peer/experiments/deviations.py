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

Two more are not expressible with ``Behaviour`` and are run with a small
subclass of the node machine (:class:`DeviantNode`):

* ``context-low`` / ``context-high``: report a wrong *stage-3* context bid
  (the aggregate that the local auctions actually use);
* ``parent-choice``: pick a specific inviter as parent instead of the seeded
  uniform choice (the paper's intended action is "randomly select one").

A profitable deviation (gain > 0) is re-checked against a central replay of
stage 3 on the deviant run's realised tree, so that a finding is not a
simulator artefact, and the smallest one per kind is shrunk (fewest nodes,
then fewest edges).
"""

from __future__ import annotations

import argparse
import sys
import itertools
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import networkx as nx

from peer.reference.replay import replay_run
from peer.result import Hop, RunResult
from peer.scenario.model import Scenario, explicit_scenario
from peer.sim.network import RoundDelays, SimNetwork
from peer.sim.run import SimulationError, assemble, build_machines, default_config, simulate
from peer.sra.effects import Effect, Send
from peer.sra.local_auction import run_local_auction, tie_break_rng
from peer.sra.machine import HONEST, Behaviour, SraNode
from peer.sra.messages import Bid, Decline

if TYPE_CHECKING:
    from peer.sra.machine import _Context

# Kinds in the order of the table; the flag says whether the paper's proof of Thm 5.3 covers it.
KINDS: dict[str, bool] = {
    "shade": True,
    "inflate": True,
    "invite-subset": True,
    "report-to-all": True,
    "aggregate-low": True,
    "aggregate-high": True,
    "context-low": False,
    "context-high": False,
    "parent-choice": False,
}
LETTERS = "abcdefghijklmnopqrtuvwxyz"  # buyers' names: every letter but the seller's "s"


# ---------------------------------------------------------------- instances


@dataclass(frozen=True)
class Instance:
    """One auction: an undirected graph, true values (the seller's is her reserve), seller, run seed."""

    edges: tuple[tuple[str, str], ...]
    values: tuple[tuple[str, int], ...]
    seller: str
    seed: int
    label: str = ""

    @property
    def value_map(self) -> dict[str, int]:
        return dict(self.values)

    @property
    def nodes(self) -> list[str]:
        return sorted(self.value_map)

    @property
    def size(self) -> tuple[int, int]:
        """(nodes, edges): the order in which counterexamples are compared."""
        return len(self.values), len(self.edges)

    def graph(self) -> nx.Graph:
        graph = nx.Graph()
        graph.add_nodes_from(self.value_map)
        graph.add_edges_from(self.edges)
        return graph

    def scenario(self) -> Scenario:
        return explicit_scenario(list(self.edges), self.value_map, seller=self.seller, seed=self.seed, name="dev")

    def describe(self) -> str:
        edges = " ".join(f"{u}-{v}" for u, v in self.edges)
        values = " ".join(f"{n}={v}" for n, v in self.values)
        return f"edges [{edges}] values [{values}] seller {self.seller} seed {self.seed}"


def make_instance(graph: nx.Graph, seller: object, values: dict[object, int], seed: int, label: str = "") -> Instance:
    """Name the seller ``s`` and the buyers ``a``, ``b``, ... in the order of the graph's node ids."""
    others = sorted((n for n in graph.nodes if n != seller), key=repr)
    names = {seller: "s", **{n: LETTERS[i] for i, n in enumerate(others)}}
    edges = tuple(sorted(tuple(sorted((names[u], names[v]))) for u, v in graph.edges))
    vals = tuple(sorted((names[n], values[n]) for n in graph.nodes))
    return Instance(edges=edges, values=vals, seller="s", seed=seed, label=label)  # type: ignore[arg-type]


def value_profile(kind: str, buyers: int, rng: random.Random) -> list[int]:
    """Buyers' values: ``distinct`` (a permutation of 2, 4, ..., 2n: room to bid in between) or ``ties`` (0..3)."""
    if kind == "distinct":
        vals = [2 * (i + 1) for i in range(buyers)]
        rng.shuffle(vals)
        return vals
    if kind == "ties":
        return [rng.randint(0, 3) for _ in range(buyers)]
    raise ValueError(f"unknown value profile {kind!r}")


def connected_atlas(min_nodes: int, max_nodes: int) -> Iterator[tuple[int, nx.Graph]]:
    """(atlas index, graph) of every connected graph of the atlas with min..max nodes (max <= 7)."""
    for index, graph in enumerate(nx.graph_atlas_g()):
        n = graph.number_of_nodes()
        if min_nodes <= n <= max_nodes and nx.is_connected(graph):
            yield index, graph


def random_connected(n: int, rng: random.Random) -> nx.Graph:
    """A connected graph on n nodes: a random tree plus random extra edges (seeded)."""
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    for v in range(1, n):
        graph.add_edge(v, rng.randrange(v))
    for u, v in itertools.combinations(range(n), 2):
        if not graph.has_edge(u, v) and rng.random() < 0.25:
            graph.add_edge(u, v)
    return graph


# ---------------------------------------------------------------- deviations


@dataclass(frozen=True)
class Deviation:
    """One unilateral deviation of one node.  Exactly one of the fields besides ``kind`` is set."""

    kind: str
    behaviour: Behaviour = HONEST
    context: int | None = None  # stage-3 context bid to report
    parent: str | None = None  # inviter to choose as parent

    def describe(self) -> str:
        b = self.behaviour
        if self.kind in ("shade", "inflate"):
            return f"bid {b.bid}"
        if self.kind == "invite-subset":
            return "invite only {" + ",".join(sorted(b.invite_only or ())) + "}"
        if self.kind == "report-to-all":
            return "bid to every inviter"
        if self.kind.startswith("aggregate"):
            return f"stage-2 aggregate {b.aggregate}"
        if self.kind.startswith("context"):
            return f"stage-3 context bid {self.context}"
        if self.kind == "parent-choice":
            return f"parent {self.parent}"
        return self.kind


class DeviantNode(SraNode):
    """The node machine with the deviations ``Behaviour`` cannot express.

    ``context``: every stage-3 context bid this node sends (to a requesting
    parent or directly to a host) is this amount.  ``parent``: choose this
    inviter as the parent (Bid to it, Decline to the others).  Both hook the
    machine's private steps (``_finish_context``, ``_finish_aggregation``) and
    only rewrite what those steps send.
    """

    def __init__(self, *args: object, context: int | None = None, parent: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._context_override = context
        self._parent_override = parent

    def _finish_context(self, hop: int, ctx: _Context, now: float) -> list[Effect]:
        if self._context_override is not None:
            ctx.best = self._context_override
        return super()._finish_context(hop, ctx, now)

    def _finish_aggregation(self, now: float) -> list[Effect]:
        effects = super()._finish_aggregation(now)
        chosen = self._parent_override
        if chosen is None or self.is_seller or chosen not in self.inviters:
            return effects
        self.parents = [chosen]
        out: list[Effect] = []
        for effect in effects:
            if isinstance(effect, Send) and isinstance(effect.msg, (Bid, Decline)):
                msg = Bid(auction=self.auction, amount=self.aggregate or 0) if effect.to == chosen else Decline(
                    auction=self.auction
                )
                out.append(Send(effect.to, msg))
            else:
                out.append(effect)
        return out


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


@dataclass(frozen=True)
class Play:
    """One run: the result, every node's realised parents (several only under
    report-to-all), who rejected which message, and stage-2 timeouts (invitees
    some node gave up waiting for)."""

    result: RunResult
    parents: dict[str, tuple[str, ...]]
    rejections: tuple[str, ...]  # the receiver of every rejected message
    timeouts: int

    def rejected_by_others(self, node: str | None) -> int:
        """Messages rejected by nodes other than ``node`` (the deviator): a deviation others can see."""
        return sum(r != node for r in self.rejections)


def play(instance: Instance, node: str | None = None, deviation: Deviation | None = None) -> Play:
    """Run the distributed SRA of ``instance`` in rounds mode, ``node`` deviating by ``deviation``.

    Behaviour deviations go through :func:`peer.sim.run.simulate`; the others
    through the same network with ``node``'s machine a :class:`DeviantNode`.
    """
    scenario = instance.scenario()
    if node is None or deviation is None or (deviation.context is None and deviation.parent is None):
        if node is not None and deviation is not None:
            scenario = scenario.with_behaviours({node: deviation.behaviour})
        result, network = simulate(scenario, seed=instance.seed, mode="rounds")
    else:
        result, network = _simulate_deviant(scenario, instance.seed, node, deviation)
    parents = {n: tuple(m.parents) for n, m in network.machines.items()}
    timeouts = sum(len(m.silent) for m in network.machines.values())
    return Play(result, parents, tuple(r for r, _ in network.stats.rejected), timeouts)


def _simulate_deviant(scenario: Scenario, seed: int, node: str, deviation: Deviation) -> tuple[RunResult, SimNetwork]:
    """:func:`peer.sim.run.simulate` in rounds mode with ``node``'s machine a :class:`DeviantNode`."""
    config = default_config(scenario, "rounds", None)
    auction = f"{scenario.name}/{seed}"
    machines = build_machines(scenario, seed, config, auction)
    machines[node] = DeviantNode(
        node, scenario.neighbours(node), scenario.values[node], auction=auction, seed=seed,
        seller=scenario.seller, config=config, behaviour=deviation.behaviour,
        context=deviation.context, parent=deviation.parent,
    )
    network = SimNetwork(machines, RoundDelays())
    network.start(scenario.seller)
    stats = network.run()
    return assemble(scenario, seed, machines, stats), network


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


@dataclass(frozen=True)
class Outcome:
    """What one run did, compactly: resale path, winner, the deviator's utility."""

    hops: tuple[Hop, ...]
    winner: str | None
    utility: int
    parents: tuple[tuple[str, str], ...]  # (node, parent) for every node with exactly one parent

    @staticmethod
    def of(p: Play, node: str) -> Outcome:
        parents = tuple(sorted((n, ps[0]) for n, ps in p.parents.items() if len(ps) == 1))
        return Outcome(tuple(p.result.hops), p.result.winner, int(p.result.utilities[node]), parents)

    def path(self) -> str:
        if not self.hops:
            return f"{self.winner} keeps"
        steps = " ".join(f"{h.seller}->{h.buyer}@{h.price}" for h in self.hops)
        return f"{steps}; {self.winner} keeps"


@dataclass(frozen=True)
class Finding:
    """A profitable deviation: utilities are computed with the deviator's TRUE value.

    ``timeouts``: invitees that some node gave up waiting for, in the honest
    and deviant runs together.  A gain with timeouts depends on the
    implementation's timing, not only on the mechanism.
    """

    instance: Instance
    node: str
    deviation: Deviation
    honest: Outcome
    deviant: Outcome
    replay_agrees: bool  # the deviant run equals a central replay on its realised tree
    rejected: int  # protocol messages the honest nodes rejected (a detectable deviation)
    timeouts: int = 0

    @property
    def gain(self) -> int:
        return self.deviant.utility - self.honest.utility

    @property
    def category(self) -> str:
        """``mechanism``: the deviant run equals its replay and nobody timed out; ``timeout``: some node
        gave up waiting (the gain depends on timing); ``artefact``: the run disagrees with its replay."""
        if not self.replay_agrees:
            return "artefact"
        if self.timeouts:
            return "timeout"
        return "mechanism"

    @property
    def key(self) -> tuple[int, int, int, str]:
        n, m = self.instance.size
        return n, m, sum(v for _, v in self.instance.values), self.instance.describe()


def gain(honest: Play, deviant: Play, node: str) -> int:
    """The deviator's utility gain; both utilities come from the runs' declared outcomes and TRUE values."""
    return int(deviant.result.utilities[node]) - int(honest.result.utilities[node])


Runner = Callable[[Instance, str | None, Deviation | None], Play]
CATEGORIES = ("mechanism", "timeout", "artefact")


@dataclass
class KindStats:
    tried: int = 0
    profitable: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    max_gain: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    aborted: int = 0  # runs that did not reach a consistent end (SimulationError)
    rejected_runs: int = 0  # runs in which some honest node rejected a message
    changed: int = 0  # runs whose resale path or winner differ from honest play

    def add(self, other: KindStats) -> None:
        self.tried += other.tried
        self.changed += other.changed
        self.aborted += other.aborted
        self.rejected_runs += other.rejected_runs
        for c in CATEGORIES:
            self.profitable[c] += other.profitable[c]
            self.max_gain[c] = max(self.max_gain[c], other.max_gain[c])


@dataclass
class InstanceReport:
    stats: dict[str, KindStats] = field(default_factory=lambda: {k: KindStats() for k in KINDS})
    findings: list[Finding] = field(default_factory=list)
    honest_replay_mismatches: list[Instance] = field(default_factory=list)

    def merge(self, other: InstanceReport) -> None:
        for kind, s in other.stats.items():
            self.stats[kind].add(s)
        self.findings.extend(other.findings)
        self.honest_replay_mismatches.extend(other.honest_replay_mismatches)


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


# ---------------------------------------------------------------- the replay check


def replay_agrees(instance: Instance, p: Play, node: str | None, deviation: Deviation | None) -> bool:
    """Does a central replay of stage 3 on the run's realised tree give the same path and winner?

    Two independent replays: :func:`peer.reference.replay.replay_run` where it
    applies (one parent per node, no stage-3 override), and :func:`replay_general`
    (several parents, a context override) always.
    """
    values = instance.value_map
    bids = dict(values)
    override: dict[str, int] = {}
    if node is not None and deviation is not None:
        if deviation.behaviour.bid is not None:
            bids[node] = deviation.behaviour.bid
        if deviation.context is not None:
            override[node] = deviation.context
    run = p.result
    hops, winner = replay_general(
        seller=run.seller, bids=bids, participants={n: r.invitees for n, r in run.nodes.items()},
        parents=p.parents, inviters={n: set(r.inviters) for n, r in run.nodes.items()}, seed=run.seed,
        context_override=override,
    )
    ok = hops == run.hops and winner == run.winner
    if not override and all(len(ps) <= 1 for ps in p.parents.values()):
        official = replay_run(run, values, bids)
        ok = ok and official.hops == run.hops and official.winner == run.winner
    return ok


def replay_general(
    *,
    seller: str,
    bids: dict[str, int],
    participants: dict[str, list[str]],
    parents: dict[str, tuple[str, ...]],
    inviters: dict[str, set[str]],
    seed: int,
    context_override: dict[str, int],
) -> tuple[list[Hop], str]:
    """Stage 3 recomputed centrally, allowing several parents per node and overridden context bids."""
    children: dict[str, list[str]] = {}
    for child, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(child)

    def context(x: str, host: str) -> int:
        if x in context_override:
            return context_override[x]
        best = bids[x]
        for child in children.get(x, ()):
            if host not in inviters[child]:
                best = max(best, context(child, host))
        return best

    hops: list[Hop] = []
    host, reserve, hop = seller, 0, 1
    while True:
        ctx = {j: context(j, host) for j in participants.get(host, [])}
        result = run_local_auction(bids[host], reserve, ctx, tie_break_rng(seed, host, hop), origin=host == seller)
        if result.winner is None:
            return hops, host
        hops.append(Hop(hop, host, result.winner, result.price))
        host, reserve, hop = result.winner, result.price, hop + 1


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


# ---------------------------------------------------------------- output


def render(report: SweepReport) -> list[object]:
    """Rich renderables: the per-kind table, then the smallest counterexample of each kind and category."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"SRA unilateral deviations ({report.instances} instances, {report.seconds:.1f} s)")
    columns = ("kind", "Thm 5.3 proof", "tried", "changed outcome", "profitable: mechanism", "max gain",
               "smallest (n, m)", "with timeouts", "max gain", "artefact", "aborted", "detectable")
    for col in columns:
        table.add_column(col, justify="left" if col == "kind" else "right")
    for kind, in_proof in KINDS.items():
        s = report.stats[kind]
        small = report.smallest.get((kind, "mechanism"))
        table.add_row(
            kind, "yes" if in_proof else "extra", str(s.tried), str(s.changed),
            str(s.profitable["mechanism"]), str(s.max_gain["mechanism"]),
            "-" if small is None else str(small.instance.size),
            str(s.profitable["timeout"]), str(s.max_gain["timeout"]),
            str(s.profitable["artefact"]), str(s.aborted), str(s.rejected_runs),
        )
    out: list[object] = [table]
    if report.honest_replay_mismatches:
        out.append(Text(f"honest runs that differ from their replay: {len(report.honest_replay_mismatches)}", style="red"))
    for (kind, category), f in report.smallest.items():
        out.append(Text(f"smallest {category} counterexample, {describe_finding(f)}"))
    return out


def describe_finding(f: Finding) -> str:
    return (
        f"[{f.deviation.kind}] {f.instance.describe()}\n"
        f"  node {f.node} (value {f.instance.value_map[f.node]}) deviates: {f.deviation.describe()}\n"
        f"  honest : {f.honest.path()}  -> u_{f.node} = {f.honest.utility}\n"
        f"  deviant: {f.deviant.path()}  -> u_{f.node} = {f.deviant.utility}  (gain {f.gain})\n"
        f"  honest parents : {_parents(f.honest)}\n"
        f"  deviant parents: {_parents(f.deviant)}\n"
        f"  replay agrees: {f.replay_agrees}; messages rejected by others: {f.rejected}; "
        f"timeouts: {f.timeouts}"
    )


def _parents(o: Outcome) -> str:
    return " ".join(f"{n}<-{p}" for n, p in o.parents)


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
