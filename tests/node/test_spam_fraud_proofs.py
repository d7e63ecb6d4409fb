"""#16.1, the fraud-proof path at node level: a neighbour floods valid fraud proofs about throwaway
chains (each throwaway seller signed two announcements).  Before, every node verified, kept and
relayed every one of them: fraud logs grew on every disk.  Now nobody keeps a proof about an
auction it does not hold, and one neighbour's proofs about such auctions share its budget of new
auctions, so they stop at the victim."""

from __future__ import annotations

from pathlib import Path

import trio

from peer.ledger import FraudProofs
from peer.ledger.records import FRAUD_FILE
from peer.net.websocket import MemoryHub
from tests.ledger._spam import spam_proof
from tests.node.live import M, make_nodes, running, sell, wait_everywhere

EDGES = [("m", "a"), ("a", "b"), ("b", "c")]
VALUES = {"m": 0, "a": 3 * M, "b": 5 * M, "c": 1 * M}


async def test_fraud_proofs_about_throwaway_chains_reach_no_disk(tmp_path: Path) -> None:
    nodes = make_nodes(EDGES, VALUES, tmp_path, MemoryHub())
    proofs = [spam_proof(i) for i in range(300)]
    async with running(nodes, limit=90):
        async with nodes["m"]._lock:
            for start in range(0, len(proofs), 10):
                nodes["m"].publish(FraudProofs(tuple(proofs[start:start + 10])))
        honest = await sell(nodes["c"], "lamp")
        await wait_everywhere({k: v for k, v in nodes.items() if k != "m"}, honest)
        await trio.sleep(1.0)
    for name in ("a", "b", "c"):
        assert not (tmp_path / name / "ledger" / FRAUD_FILE).exists(), name
        assert nodes[name].store.fraud_proofs() == []
        assert [o["outcome"] for o in nodes[name].outcomes] == ["completed"], name
    assert nodes["a"].gossip.stats.screened > 0  # past m's budget, not even delivered
