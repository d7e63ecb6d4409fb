"""VCG among the seller's neighbours only: no diffusion (the bound of Prop. 5.4)."""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx

from peer.result import Hop, NodeReport, RunResult, utilities_from_hops
from peer.sra.local_auction import run_local_auction, tie_break_rng


def vcg_neighbours(graph: nx.Graph, seller: str, values: Mapping[str, int], *, seed: int) -> RunResult:
    bids = {n: values[n] for n in graph.neighbors(seller)}
    result = run_local_auction(values[seller], 0, bids, tie_break_rng(seed, seller, 1), origin=True)
    hops = [] if result.winner is None else [Hop(1, seller, result.winner, result.price)]
    winner = seller if result.winner is None else result.winner
    utilities, revenue = utilities_from_hops(seller, dict(values), hops, winner)
    nodes = {n: NodeReport(value=values[n]) for n in sorted(values)}
    for h in hops:
        nodes[h.buyer].bought_at = h.price
        nodes[h.seller].sold_at = h.price
    return RunResult(
        mechanism="vcg-neighbours", seller=seller, seed=seed, nodes=nodes, hops=hops, winner=winner,
        utilities=dict(utilities), revenue=revenue,
    )
