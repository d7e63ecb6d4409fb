"""#16.1, the anti-entropy path: a neighbour's anti-entropy answer carrying validly signed chains
of throwaway keys (announcement and hops) used to be admitted as "started" and stored, then
served on to every node by anti-entropy.  Now a neighbour may vouch for a bounded number of
chains here, and what it vouched for is never served on: a node two hops away stores none."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from peer.ledger import Entries
from peer.ledger.admission import AdmissionPolicy
from peer.ledger.records import CHAIN_SUFFIX, chain_file_name
from peer.net.websocket import MemoryHub
from peer.node import recovery
from tests.ledger._spam import spam_chain
from tests.node.live import M, make_nodes, running, sell, wait_everywhere

EDGES = [("m", "a"), ("a", "b"), ("b", "c")]  # m is the spammer; b is two hops from it
VALUES = {"m": 0, "a": 3 * M, "b": 5 * M, "c": 1 * M}


def chain_files(root: Path, name: str) -> set[str]:
    return {p.name for p in (root / name / "ledger").glob(f"*{CHAIN_SUFFIX}")}


async def test_chains_a_spammer_vouches_for_stay_bounded_next_door_and_never_reach_two_hops(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recovery, "SUMMARY_INTERVAL", 0.3)  # many periodic exchanges in a short test
    monkeypatch.setattr(recovery, "CATCHUP_COOLDOWN", 0.2)
    nodes = make_nodes(EDGES, VALUES, tmp_path, MemoryHub())
    spam = [spam_chain(i, hops=2, tag="ae") for i in range(300)]
    async with running(nodes, limit=90):
        async with nodes["m"]._lock:
            for start in range(0, len(spam), 25):  # as an anti-entropy answer: m's own, to a only
                entries = tuple(e for c in spam[start:start + 25] for e in c.entries)
                nodes["m"].publish_scoped(Entries(entries))
        honest = await sell(nodes["c"], "lamp")
        await wait_everywhere({k: v for k, v in nodes.items() if k != "m"}, honest)
        # Until a has taken in all it will, then many more exchanges: a would serve b what it stored.
        with trio.fail_after(30):
            while True:
                before = len(nodes["a"].store.chains())
                await trio.sleep(1.0)
                if len(nodes["a"].store.chains()) == before:
                    break
        await trio.sleep(4.0)
    honest_file = chain_file_name(honest)
    for name in ("b", "c"):
        assert chain_files(tmp_path, name) == {honest_file}, (name, len(chain_files(tmp_path, name)))
    cap = AdmissionPolicy().max_vouched_per_neighbour
    stored = chain_files(tmp_path, "a") - {honest_file}
    assert 0 < len(stored) <= cap
    assert all(nodes["a"].store.vouched_by(c.auction) == nodes["m"].me for c in spam
               if nodes["a"].store.chain(c.auction) is not None)
    for name in ("a", "b", "c"):
        assert [o["outcome"] for o in nodes[name].outcomes] == ["completed"], name
        assert nodes[name].store.verify_all().ok
