"""Stage 3 recomputed centrally from a run's realised invitation relation and tree.

Given who invited whom (the participants of each node's local auction), each
node's parent, the declared bids and the run seed (for the hosts' tie-breaks),
this walks the resale path exactly as the distributed hosts should.  A
distributed run must equal its replay: same path, prices, winner, utilities.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from peer.result import Hop, RunResult, utilities_from_hops
from peer.sra.local_auction import replay_tie_break, run_local_auction


def context_bid(
    node: str, host: str, bids: Mapping[str, int], children: Mapping[str, list[str]], inviters: Mapping[str, set[str]]
) -> int:
    """max(own bid, context bids of tree children that are not themselves the host's invitees)."""
    best = bids[node]
    stack = [node]
    while stack:  # iterative: trees can be deep
        x = stack.pop()
        if bids[x] > best:
            best = bids[x]
        for child in children.get(x, ()):
            if host not in inviters[child]:
                stack.append(child)
    return best


def replay_stage3(
    *,
    seller: str,
    bids: Mapping[str, int],
    participants: Mapping[str, list[str]],
    parents: Mapping[str, str | None],
    inviters: Mapping[str, set[str]],
    seed: int,
    coin_auction: str | None = None,
    tie_coin: Callable[[str, int], bytes] | None = None,
) -> tuple[list[Hop], str]:
    """The resale path (hops) and the final winner (``coin_auction`` or ``tie_coin``: ties by the
    hosts' coins, see :func:`peer.sra.local_auction.replay_tie_break`)."""
    children: dict[str, list[str]] = {}
    for node, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(node)
    hops: list[Hop] = []
    host, reserve, hop = seller, 0, 1
    while True:
        ctx = {j: context_bid(j, host, bids, children, inviters) for j in participants.get(host, [])}
        rng, coin = replay_tie_break(seed, host, hop, coin_auction, tie_coin)
        result = run_local_auction(bids[host], reserve, ctx, rng, origin=host == seller, tie_coin=coin)
        if result.winner is None:
            return hops, host
        hops.append(Hop(hop, host, result.winner, result.price))
        host, reserve, hop = result.winner, result.price, hop + 1


def replay_run(run: RunResult, values: Mapping[str, int], bids: Mapping[str, int] | None = None, *,
               tie_coin: Callable[[str, int], bytes] | None = None) -> RunResult:
    """The replay of a distributed run, as a run of mechanism "replay" (``tie_coin``: the hosts'
    coins of a real run under verifiable coins; a simulated one names its auction in ``extra``)."""
    bids = dict(values) if bids is None else dict(bids)
    hops, winner = replay_stage3(
        seller=run.seller,
        bids=bids,
        participants={n: r.invitees for n, r in run.nodes.items()},
        parents={n: r.parent for n, r in run.nodes.items()},
        inviters={n: set(r.inviters) for n, r in run.nodes.items()},
        seed=run.seed,
        coin_auction=run.extra.get("coin_auction"), tie_coin=tie_coin,
    )
    utilities, revenue = utilities_from_hops(run.seller, dict(values), hops, winner)
    nodes = {n: type(r)(r.value, r.inviters, r.invitees, r.parent) for n, r in run.nodes.items()}
    for h in hops:
        nodes[h.buyer].bought_at = h.price
        nodes[h.seller].sold_at = h.price
    if run.seller in nodes:
        nodes[run.seller].bought_at = None
    return RunResult(
        mechanism="replay", seller=run.seller, seed=run.seed, nodes=nodes, hops=hops, winner=winner,
        utilities=dict(utilities), revenue=revenue, messages={},
    )
