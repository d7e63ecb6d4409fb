"""The sweep's replay check: stage 3 recomputed centrally on a run's realised tree.

Kept apart from :mod:`peer.experiments.deviations` so that the harness module
stays small; it only needs a run's result and realised parents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peer.reference.replay import replay_run
from peer.result import Hop
from peer.sra.local_auction import replay_tie_break, run_local_auction

if TYPE_CHECKING:
    from peer.experiments.deviation_instances import Instance
    from peer.experiments.deviation_model import Deviation, Play


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
        context_override=override, coin_auction=run.extra.get("coin_auction"),
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
    coin_auction: str | None = None,
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
        rng, coin = replay_tie_break(seed, host, hop, coin_auction)  # the hosts' coins under verifiable coins
        result = run_local_auction(bids[host], reserve, ctx, rng, origin=host == seller, tie_coin=coin)
        if result.winner is None:
            return hops, host
        hops.append(Hop(hop, host, result.winner, result.price))
        host, reserve, hop = result.winner, result.price, hop + 1
