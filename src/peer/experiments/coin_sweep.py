"""Choosing one's parent, with the paper's private coin and with verifiable coins: an exhaustive count.

For every small instance of the deviation sweep (:mod:`peer.experiments.deviations`:
every connected graph of the atlas up to ``max_nodes``, every seller, two value
profiles, rounds mode) and every buyer with at least two inviters, the buyer
picks each inviter other than its honest parent, in three ways:

* ``naive``: it reports honestly otherwise (under verifiable coins its Bid
  lists every inviter, so the chosen parent refuses it);
* ``omit``: its Bid lists only the inviters its coin ranks after the chosen
  one, and it sends the others a Decline naming the chosen parent (they
  refuse it: evidence);
* ``silent``: the same, but it says nothing to the inviters its coin ranks
  first (they time out on it and it sits out their local auctions).

Without verifiable coins the three are the same deviation (there is no coin
to cover).  The gain is the buyer's utility, with its true value, against the
honest run under the same coins.

Run: ``python -m peer.experiments.coin_sweep [--max-nodes 5]``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from peer.experiments.deviation_instances import Instance, connected_atlas
from peer.experiments.deviation_model import Deviation, Play, gain
from peer.experiments.deviations import SweepConfig, _valued
from peer.sim.run import SimulationError, default_config, simulate
from peer.sra.machine import Behaviour

COVERS: dict[str, str | None] = {"naive": None, "omit": "omit", "silent": "silent"}


def play_coins(instance: Instance, node: str | None, deviation: Deviation | None, *, verifiable: bool) -> Play:
    """:func:`peer.experiments.deviations.play` with the coins chosen (not strict: a refused Bid may abort)."""
    scenario = instance.scenario()
    if node is not None and deviation is not None:
        scenario = scenario.with_behaviours({node: deviation.effective})
    config = dataclasses.replace(default_config(scenario, "rounds", None), verifiable_coins=verifiable)
    result, network = simulate(scenario, seed=instance.seed, mode="rounds", config=config,
                               strict=node is None)
    parents = {n: tuple(m.parents) for n, m in network.machines.items()}
    timeouts = sum(len(m.silent) for m in network.machines.values())
    return Play(result, parents, tuple(r for r, _ in network.stats.rejected), timeouts)


@dataclass
class CoverStats:
    tried: int = 0
    profitable: int = 0  # gain > 0
    profitable_unseen: int = 0  # gain > 0 with no message of the deviator refused and nobody timing out
    losing: int = 0
    rejected: int = 0  # runs where another node refused one of its messages
    timeouts: int = 0  # runs where some node gave up waiting on an invitee
    not_completed: int = 0
    max_gain: int = 0
    total_gain: int = 0
    example: tuple[Instance, str, str] | None = None  # the first profitable (instance, node, parent)


@dataclass
class CoinSweep:
    verifiable: bool
    instances: int = 0
    stats: dict[str, CoverStats] = field(default_factory=lambda: {k: CoverStats() for k in COVERS})


def sweep_instances(instances: Iterable[Instance], *, verifiable: bool) -> CoinSweep:
    out = CoinSweep(verifiable)
    for instance in instances:
        out.instances += 1
        honest = play_coins(instance, None, None, verifiable=verifiable)
        for node in instance.nodes:
            report = honest.result.nodes.get(node)
            if node == instance.seller or report is None or len(report.inviters) < 2:
                continue
            for parent in sorted(p for p in report.inviters if p != report.parent):
                for label, cover in COVERS.items():
                    deviation = Deviation("parent-choice", Behaviour(coin_cover=cover), parent=parent)
                    _count(out.stats[label], instance, node, parent, honest, deviation, verifiable)
    return out


def _count(stats: CoverStats, instance: Instance, node: str, parent: str, honest: Play, deviation: Deviation,
           verifiable: bool) -> None:
    stats.tried += 1
    try:
        deviant = play_coins(instance, node, deviation, verifiable=verifiable)
    except SimulationError:  # never raised for deviant runs (not strict); kept for safety
        stats.not_completed += 1
        return
    if deviant.result.extra.get("status") != "completed":
        stats.not_completed += 1
    g = gain(honest, deviant, node)
    seen = deviant.rejected_by_others(node) > 0
    stats.rejected += seen
    stats.timeouts += deviant.timeouts > 0
    stats.total_gain += g
    if g > 0:
        stats.profitable += 1
        stats.profitable_unseen += not seen and deviant.timeouts == 0
        stats.max_gain = max(stats.max_gain, g)
        if stats.example is None:
            stats.example = (instance, node, parent)
    elif g < 0:
        stats.losing += 1


def atlas_instances(max_nodes: int) -> list[Instance]:
    config = SweepConfig(atlas_max_nodes=max_nodes)
    out: list[Instance] = []
    for index, graph in connected_atlas(2, max_nodes):
        for seller in sorted(graph.nodes):
            out.extend(_valued(graph, seller, config, f"atlas G{index}"))
    return out


def render(sweeps: Sequence[CoinSweep]) -> list[str]:
    lines = ["coins       cover   tried  profitable  unseen  losing  rejected  timeouts  not-completed  max gain  "
             "total gain"]
    for s in sweeps:
        for label, st in s.stats.items():
            lines.append(f"{'verifiable' if s.verifiable else 'private':<11} {label:<7} {st.tried:>5}  "
                         f"{st.profitable:>10}  {st.profitable_unseen:>6}  {st.losing:>6}  {st.rejected:>8}  "
                         f"{st.timeouts:>8}  {st.not_completed:>13}  {st.max_gain:>8}  {st.total_gain:>10}")
    for s in sweeps:
        for label, st in s.stats.items():
            if st.example is not None:
                inst, node, parent = st.example
                lines.append(f"{'verifiable' if s.verifiable else 'private'} {label}: {node} picks {parent} in "
                             f"{inst.describe()}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-nodes", type=int, default=5, help="largest atlas graph (<= 7)")
    args = parser.parse_args(argv)
    instances = atlas_instances(args.max_nodes)
    sweeps = [sweep_instances(instances, verifiable=v) for v in (False, True)]
    print(f"{len(instances)} instances (atlas graphs of 2..{args.max_nodes} nodes, every seller, "
          "distinct and tied values, rounds mode)")
    for line in render(sweeps):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
