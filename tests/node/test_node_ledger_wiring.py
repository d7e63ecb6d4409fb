"""The ledger's scaling, lost-entry and admission hooks, wired into the node (#15.10, #15.9, #16.1)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import pytest
import trio
from nacl.signing import SigningKey

from peer.ledger import Announcement, Chain, Entries, Summaries, encode_payload
from peer.ledger.records import CHAIN_SUFFIX, chain_file_name, scan
from peer.ledger.split import PAYLOAD_LIMIT
from peer.ledger.store import LedgerStore
from peer.net.websocket import MemoryHub
from peer.node.node import Node
from tests.ledger._helpers import make_chain
from tests.node.live import M, make_node, make_nodes, running, sell, wait_everywhere


def fill(data_dir: Path, chains: Iterable[Chain], monkeypatch: pytest.MonkeyPatch, *, upto: int | None = None) -> None:
    """Write chains (the first ``upto`` entries of each) as a stopped node's ledger.  Setup only:
    fsync is skipped to keep it fast (durability is not what these tests are about)."""
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", lambda fd: None)
        with LedgerStore.open_data_dir(data_dir) as store:
            for chain in chains:
                for entry in chain.entries[:upto]:
                    assert store.append(entry)


def events(root: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (root / f"{name}.ndjson").read_text().splitlines() if line.strip()]


def lengths(node: Node, auctions: Iterable[str]) -> dict[str, int]:
    return {a: (c.length if (c := node.store.chain(a)) is not None else 0) for a in auctions}


async def test_a_node_with_1500_chains_restarts_and_catches_a_neighbour_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # #15.10: its summaries alone are over the gossip payload limit, so it used to be unable to
    # restart and exchange them.  Now it exchanges bucket digests, and every answer is split.
    chains = [make_chain(f"bulk-{i:04d}", hops=1, seller=i % 10) for i in range(1500)]
    fill(tmp_path / "x", chains, monkeypatch)
    fill(tmp_path / "y", chains[:1480], monkeypatch)  # y lacks 20 chains ...
    fill(tmp_path / "y", chains[1480:1490], monkeypatch, upto=1)  # ... and the hops of 10 of them
    nodes = make_nodes([("x", "y")], {"x": 1 * M, "y": 2 * M}, tmp_path, MemoryHub())
    assert len(encode_payload(Summaries(tuple(nodes["x"].store.summaries())))) > PAYLOAD_LIMIT
    want = {c.auction: c.length for c in chains}
    async with running(nodes, limit=120):
        with trio.fail_after(90):
            while lengths(nodes["y"], want) != want:
                await trio.sleep(0.1)
    for node in nodes.values():
        assert node.store.verify_all().ok
        assert [c.entries for c in node.store.chains()] == [c.entries for c in chains]
    errors = [e for n in nodes for e in events(tmp_path, n) if e["kind"] == "error"]
    assert not errors, errors[:3]
    recovered = next(e for e in events(tmp_path, "x") if e["kind"] == "recovered")
    assert recovered["ok"] and len(recovered["auctions"]) == 1500 and recovered["lost"] == {}


async def test_entries_lost_while_stopped_come_back_from_the_neighbours(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # #15.9: x's chain file is cut at a record boundary while x is stopped.  On restart x
    # reports the lost entries, and its neighbours give them back: its ledger verifies again.
    chains = [make_chain(f"kept-{i}", hops=3, seller=i) for i in range(4)]
    for name in ("x", "y", "z"):
        fill(tmp_path / name, chains, monkeypatch)
    victim = tmp_path / "x" / "ledger" / chain_file_name("kept-1")
    records = scan(victim.read_bytes()).records
    with open(victim, "r+b") as fh:
        fh.truncate(records[1][0])  # keep the announcement only: three acknowledged hops lost
    nodes = make_nodes([("x", "y"), ("x", "z"), ("y", "z")], {"x": M, "y": M, "z": M}, tmp_path, MemoryHub())
    assert nodes["x"].store.is_lost("kept-1")
    assert not nodes["x"].store.verify_all().ok
    async with running(nodes):
        with trio.fail_after(30):
            while nodes["x"].store.is_lost("kept-1") or not nodes["x"].store.verify_all().ok:
                await trio.sleep(0.05)
    assert nodes["x"].store.chain("kept-1") == chains[1]
    recovered = next(e for e in events(tmp_path, "x") if e["kind"] == "recovered")
    assert recovered["lost"] == {victim.name: {"have": 1, "acknowledged": 4}}
    assert not recovered["ok"]  # it said so at start; anti-entropy filled it afterwards


async def test_announcement_spam_leaves_a_node_two_hops_away_bounded_and_an_honest_sale_completes(
        tmp_path: Path) -> None:
    # #16.1: f floods validly signed announcements of throwaway auctions (a new key each).
    # Nobody invites anyone to them, so the nodes keep them in the bounded pending area,
    # not on disk; an honest auction (whose Invite admits it) still completes everywhere.
    edges = [("f", "a"), ("a", "b"), ("b", "c"), ("a", "c")]
    values = {"f": 0, "a": 3 * M, "b": 5 * M, "c": 1 * M}
    nodes = make_nodes(edges, values, tmp_path, MemoryHub())
    spam = [Announcement.create(SigningKey(bytes([i % 256, i // 256]) * 16), auction=f"junk-{i}", item="junk",
                                created_at_ms=1_700_000_000_000 + i) for i in range(400)]
    async with running(nodes, limit=90):
        async with nodes["f"]._lock:
            for start in range(0, len(spam), 20):
                nodes["f"].publish(Entries(tuple(spam[start:start + 20])))
        honest = await sell(nodes["c"], "lamp")
        await wait_everywhere({k: v for k, v in nodes.items() if k != "f"}, honest)
        await trio.sleep(0.5)  # what is still in flight of the flood
    for name in ("a", "b", "c"):
        node = nodes[name]
        assert [o["outcome"] for o in node.outcomes] == ["completed"], name
        files = sorted(p.name for p in (tmp_path / name / "ledger").glob(f"*{CHAIN_SUFFIX}"))
        assert files == [chain_file_name(honest)], (name, len(files))
        assert node.store.pending() <= 1024
        assert node.store.chain(honest) is not None and node.store.chain(honest).length > 1
    assert nodes["b"].store.pending() > 0  # the spam did reach b, two hops from f


def test_the_periodic_exchange_expires_chains_that_never_started(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # #16.1: announcement-only chains older than the policy's ttl go at the next exchange;
    # started chains stay.  (The ttl is the file's age, so a ttl of 0 expires them at once.)
    from peer.ledger import AdmissionPolicy
    from peer.node.recovery import SUMMARY_INTERVAL

    chains = [make_chain(f"c-{i}", hops=1, seller=i) for i in range(4)]
    fill(tmp_path / "x", chains[:2], monkeypatch)
    fill(tmp_path / "x", chains[2:], monkeypatch, upto=1)
    node = make_node("x", ["y"], M, tmp_path, MemoryHub(), log_json=None)
    sent: list[object] = []
    monkeypatch.setattr(node, "publish_scoped", sent.append)
    node.catchup.exchange(0.0)
    assert len(node.store.chains()) == 4  # the default ttl is an hour
    node.store.set_admission(AdmissionPolicy(unstarted_ttl=0.0))
    node.catchup.exchange(SUMMARY_INTERVAL)  # not yet time for the next sweep
    assert len(node.store.chains()) == 4
    node.catchup.exchange(1000.0)
    assert [c.auction for c in node.store.chains()] == ["c-0", "c-1"]
    assert sorted(p.name for p in (tmp_path / "x" / "ledger").glob(f"*{CHAIN_SUFFIX}")) == sorted(
        chain_file_name(a) for a in ("c-0", "c-1"))
    assert len(sent) == 3
    node.store.close()
    node.log.close()


def test_a_payload_that_cannot_be_split_is_logged_not_raised(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from peer.ledger import PayloadTooLarge
    from peer.node import gossip_io as node_module

    def too_large(payload: object) -> list[bytes]:
        raise PayloadTooLarge("one Entries item of 70000 bytes exceeds the payload limit")

    node = make_node("x", ["y"], M, tmp_path, MemoryHub())
    monkeypatch.setattr(node_module, "split_payload", too_large)
    node.publish(Entries((make_chain("a1", hops=0).announcement,)))
    node.publish_scoped(Summaries(()))
    node.store.close()
    node.log.close()
    errors = [e["reason"] for e in events(tmp_path, "x") if e["kind"] == "error"]
    assert errors == [f"cannot publish {kind} on {topic}: one Entries item of 70000 bytes exceeds the payload limit"
                      for kind, topic in (("Entries", "ledger"), ("Summaries", "ledger-sum"))]
