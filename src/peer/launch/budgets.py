"""What a scenario's topology demands of the launch: one connected graph, and waits long enough.

Why the waits depend on the graph (see :mod:`peer.sra.machine`): every request
that expects an answer carries a *budget*, and each node hands its children
what is left of its own budget minus two ``margin`` s (one for its own reply's
transit, one for theirs).  In stage 2 a node also spends its gather window
before it forwards.  So the budget a node at depth k of the invitation tree
receives is::

    stage 2 (Invite):         reply_timeout   - margin - (k-1) * (2 * margin + gather_window)
    stage 3 (context, level j below the host):  context_timeout - (2j - 1) * margin

Once that reaches zero, a node stops waiting for its children at once and
treats them as silent, which changes the outcome of an honest run (the replay
check then fails).

The depth that counts is that of the *realised* invitation tree, and it can
exceed the seller's distance to the farthest node: a node's first invitation
may come by a longer path whose hops happened to be faster.  On ws-20 (distance
3) we saw chains of 4 on a busy machine, and with budgets sized for depth 3
(plus two margins of slack) 2 of 4 runs differed from the replay; sized for
twice the distance, 6 of 6 matched.  So we size for ``2 x distance`` levels,
each keeping two margins of slack at the bottom, and refuse shorter timeouts
with a message that says what is needed.  Nothing smaller can be proved safe
from the graph alone: the machine would need to know its depth (see the
report in docs/troubleshooting.md).
Under guarded resale the seller's ``confirm_timeout`` covers the whole resale
chain below her buyer; each hop down takes about three margins from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from peer.scenario.model import Scenario
from peer.sra.config import SraConfig

MARGIN = SraConfig().margin  # the nodes use the machine's default margin


@dataclass(frozen=True)
class Topology:
    depth: int  # hops from the seller to the farthest node it can reach
    unreachable: list[str]  # nodes the seller's invitations can never reach

    @classmethod
    def of(cls, scenario: Scenario) -> Topology:
        reached = nx.single_source_shortest_path_length(scenario.graph, scenario.seller)
        return cls(depth=max(reached.values(), default=0),
                   unreachable=sorted(set(scenario.graph.nodes) - set(reached), key=_natural))


@dataclass(frozen=True)
class Minimums:
    reply: float
    context: float
    confirm: float


DEPTH_FACTOR = 2  # realised tree depth allowed for, as a multiple of the seller's farthest distance


def minimum_timeouts(distance: int, gather_window: float, margin: float = MARGIN) -> Minimums:
    depth = DEPTH_FACTOR * max(distance, 1)
    slack = 2 * margin
    reply = margin + (depth - 1) * (2 * margin + gather_window) + gather_window + slack
    context = (2 * depth - 1) * margin + slack
    confirm = context + 3 * margin * depth
    return Minimums(reply=round(reply, 3), context=round(context, 3), confirm=round(confirm, 3))


def timeout_problems(
    topology: Topology, *, gather_window: float, reply_timeout: float, context_timeout: float,
    confirm_timeout: float, guarded: bool,
) -> list[str]:
    """One sentence per timeout too short for this graph (empty: all are enough)."""
    need = minimum_timeouts(topology.depth, gather_window)
    why = (f"the seller's farthest node is {topology.depth} hop(s) away, so the invitation tree can be "
           f"{DEPTH_FACTOR * max(topology.depth, 1)} levels deep, and each level takes {2 * MARGIN:g} s")
    problems = []
    if reply_timeout < need.reply:
        problems.append(f"--reply-timeout {reply_timeout:g} is too short for this graph: {why} "
                        f"(+ the {gather_window:g} s gather window) off the stage-2 wait; use at least {need.reply:g}")
    if context_timeout < need.context:
        problems.append(f"--context-timeout {context_timeout:g} is too short for this graph: {why} "
                        f"off the stage-3 wait; use at least {need.context:g}")
    if guarded and confirm_timeout < need.confirm:
        problems.append(f"--confirm-timeout {confirm_timeout:g} is too short for this graph: it covers the "
                        f"whole resale chain (one hop per level of the tree); use at least {need.confirm:g}")
    return problems


def disconnected_message(scenario: Scenario, topology: Topology) -> str:
    shown = ", ".join(topology.unreachable[:10]) + (" ..." if len(topology.unreachable) > 10 else "")
    return (f"{scenario.source}: the graph is not connected: {len(topology.unreachable)} node(s) cannot be "
            f"reached from the seller {scenario.seller} ({shown}); their processes would wait for an auction "
            f"that never reaches them.  Connect them in [graph], or remove them.")


def _natural(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name)
