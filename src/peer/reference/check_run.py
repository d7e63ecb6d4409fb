"""Check a simulated SRA run against what it must be, computed without the machines.

Used by ``bench/sra_bench.py --large`` and the large-graph tests, so that a
fast simulator is also shown to be a correct one:

* **tree** (rounds mode only): with every message taking one round and a
  gather window under one round, a node's inviters are exactly its neighbours
  one hop closer to the seller, its local auction's participants exactly its
  neighbours one hop further, and its parent one of its inviters (the BFS
  layering, computed here with a plain BFS over the graph);
* **stage 3**: the resale path, prices, winner, utilities and revenue equal
  the replay of stage 3 on the run's own tree (:mod:`peer.reference.replay`);
* **ledger**: the simulator judged the run completed with an intact ledger
  (no fork, the chain verifies from genesis, nothing an honest node recorded
  is missing), and the chain it reports is the replay's path.

Each problem found is one line; an empty list means the run is right.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import networkx as nx

from peer.reference.replay import replay_run
from peer.result import RunResult


def bfs_depths(graph: nx.Graph, source: str) -> dict[str, int]:
    depth = {source: 0}
    queue = deque([source])
    adjacency = graph.adj
    while queue:
        node = queue.popleft()
        below = depth[node] + 1
        for neighbour in adjacency[node]:
            if neighbour not in depth:
                depth[neighbour] = below
                queue.append(neighbour)
    return depth


def tree_problems(run: RunResult, graph: nx.Graph, *, limit: int = 5) -> list[str]:
    """How the run's invitation tree departs from the BFS layering (rounds mode)."""
    depth = bfs_depths(graph, run.seller)
    problems: list[str] = []
    for node, report in run.nodes.items():
        if node not in depth:
            if report.inviters or report.invitees:
                problems.append(f"{node} cannot be reached from the seller but took part")
            continue
        d = depth[node]
        up = sorted(n for n in graph.adj[node] if depth.get(n) == d - 1)
        down = sorted(n for n in graph.adj[node] if depth.get(n) == d + 1)
        if report.inviters != up:
            problems.append(f"{node} (depth {d}): inviters {report.inviters[:5]}, expected {up[:5]}")
        elif report.invitees != down:
            problems.append(f"{node} (depth {d}): participants {report.invitees[:5]}, expected {down[:5]}")
        elif node != run.seller and report.parent not in up:
            problems.append(f"{node} (depth {d}): parent {report.parent} is not an inviter")
        if len(problems) >= limit:
            break
    return problems


def run_problems(
    run: RunResult, graph: nx.Graph, values: Mapping[str, int], *, rounds: bool, bids: Mapping[str, int] | None = None
) -> list[str]:
    """Everything :func:`tree_problems` and the replay find wrong with ``run`` (empty: none)."""
    problems = tree_problems(run, graph) if rounds else []
    extra = run.extra
    if extra.get("status") != "completed":
        problems.append(f"status {extra.get('status')}: {extra.get('reason')} {extra.get('detail', '')}".strip())
    ledger = extra.get("ledger", {})
    if not ledger.get("ok", False):
        problems.append(f"ledger not intact: {ledger}")
    replay = replay_run(run, values, bids)
    if replay.hops != run.hops:
        problems.append(f"hops {_path(run)} but the replay sells {_path(replay)}")
    if replay.winner != run.winner:
        problems.append(f"winner {run.winner} but the replay's is {replay.winner}")
    if replay.utilities != run.utilities or replay.revenue != run.revenue:
        changed = sorted(n for n in replay.utilities if replay.utilities[n] != run.utilities.get(n))
        problems.append(f"utilities differ from the replay's at {changed[:5]}; revenue {run.revenue} vs {replay.revenue}")
    return problems


def _path(run: RunResult) -> str:
    return " -> ".join([run.seller, *(f"{h.buyer}@{h.price}" for h in run.hops)])
