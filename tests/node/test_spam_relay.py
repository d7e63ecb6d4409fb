"""#16.1, the relay path: one neighbour flooding validly signed chains of throwaway keys, each
envelope under a fresh throwaway gossip origin, so no per-origin bound applies.  Before, the
victim delivered and relayed all of them within its link's byte budget (thousands a second), so
every node downstream paid for them too.  Now one neighbour may introduce only a bounded number of
auctions new to the node (``NEW_AUCTIONS_PER_LINK``); the rest stop at the victim."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import trio

from peer.ledger import Entries, encode_payload
from peer.net.gossip import sign_envelope
from peer.net.identity import Identity
from peer.net.websocket import MemoryHub
from peer.node.ledger_io import NEW_AUCTIONS_BURST, NEW_AUCTIONS_PER_LINK
from tests.ledger._spam import spam_chain
from tests.node.live import M, make_nodes, running, sell, wait_everywhere

EDGES = [("m", "a"), ("a", "b"), ("b", "c")]
VALUES = {"m": 0, "a": 3 * M, "b": 5 * M, "c": 1 * M}


def spam_envelopes(n: int) -> list:
    out = []
    for i in range(n):
        origin = Identity.from_seed(hashlib.sha256(b"relay-spam-origin-%d" % i).digest())
        payload = encode_payload(Entries(spam_chain(i, hops=1, tag="relay").entries))
        out.append(sign_envelope(origin, 1, int((time.time() + 60) * 1000), "ledger", payload))
    return out


async def test_throwaway_auctions_from_one_neighbour_stop_at_its_budget(tmp_path: Path) -> None:
    nodes = make_nodes(EDGES, VALUES, tmp_path, MemoryHub())
    envelopes = spam_envelopes(600)
    async with running(nodes, limit=90):
        start = trio.current_time()
        async with nodes["m"]._lock:
            for env in envelopes:
                nodes["m"].send(nodes["a"].me, env)
        with trio.fail_after(30):  # until a has looked at every one of them
            while nodes["a"].gossip.stats.delivered + nodes["a"].gossip.stats.screened < len(envelopes):
                await trio.sleep(0.05)
        elapsed = trio.current_time() - start
        honest = await sell(nodes["c"], "lamp")  # honest auctions are not the flooder's to spend
        await wait_everywhere({k: v for k, v in nodes.items() if k != "m"}, honest)
        await trio.sleep(0.5)
    allowed = NEW_AUCTIONS_BURST + NEW_AUCTIONS_PER_LINK * elapsed
    assert nodes["a"].gossip.stats.screened >= len(envelopes) - allowed
    # What a relayed waits in b's pending area (two entries a chain, nothing else pending there).
    spam_at_b = nodes["b"].store.pending()
    assert spam_at_b <= 2 * allowed, (spam_at_b, allowed)
    for name in ("a", "b", "c"):
        assert [o["outcome"] for o in nodes[name].outcomes] == ["completed"], name
