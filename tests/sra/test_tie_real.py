"""Verifiable tie-breaks on real node shells (links, signatures, the wire codec, fsync'd ledgers), in memory.

Three buyers tie for the seller's hop.  The seller signs its tie coin with its
identity, the Offer carries the coin and the tied keys through the codec, and
the buyer checks them; the hop goes to the buyer the seller's coin picks, as in
the simulator with the same keys, and no node refuses anything.
"""

from __future__ import annotations

from pathlib import Path

from peer.scenario.model import Scenario, explicit_scenario
from peer.sra.coins import coin_message, tie_purpose, tie_winner
from tests.node.harness import identity_for
from tests.node.test_coins_real import AUCTION, build, run, simulated

M = 10**6
EDGES = [("s", "a"), ("s", "b"), ("s", "c"), ("a", "d")]
VALUES = {"s": 0, "a": 4 * M, "b": 4 * M, "c": 4 * M, "d": 1 * M}


def scenario() -> Scenario:
    return explicit_scenario(EDGES, VALUES, seller="s", seed=1, name="ties")


async def test_a_tied_hop_on_real_nodes_goes_to_the_sellers_coin_pick(tmp_path: Path) -> None:
    sc = scenario()
    nodes = build(sc, tmp_path)
    await run(nodes, list(nodes))
    keys = {n: node.me for n, node in nodes.items()}
    coin = identity_for(sc, "s").sign(coin_message(AUCTION, tie_purpose(1)))
    pick = tie_winner(coin, [keys[n] for n in ("a", "b", "c")])
    chain = nodes["s"].store.chain(AUCTION)
    assert chain is not None
    real_hops = [(h.body.seller, h.body.buyer, h.body.price) for h in chain.hops]
    assert real_hops[0] == (keys["s"], pick, 4 * M)
    network = simulated(sc, keys)
    assert real_hops == [(e.seller, e.buyer, e.price) for e in network.ledger.chain()]
    for name, node in nodes.items():
        assert node.bad == 0, name
