"""The provider role on real ``Node`` shells over the in-memory hub: scheduled rounds, user nodes' bids.

Links, handshakes, envelopes and fsync'd records are real; only the byte
transport is memory.  Rounds are scheduled on the wall clock (as across
hosts), so these tests run on the real clock, bounded.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
import trio

from peer.auctioneer.bidder_host import BidError
from peer.auctioneer.bids import Side
from peer.auctioneer.cluster import NodeCluster
from peer.auctioneer.record import read_records, verify_record
from peer.net.identity import Identity
from peer.net.websocket import MemoryHub
from peer.node.config import NeighbourSpec, NodeConfig
from peer.node.node import Node
from tests.node.harness import FAST_LINKS


def ident(name: str) -> Identity:
    return Identity.from_seed(hashlib.sha256(f"auctioneer-node-test/{name}".encode()).digest())


def write_cluster(tmp: Path, providers: list[str], users: list[str], *, k: int, epoch: float) -> Path:
    path = tmp / "cluster.json"
    path.write_text(json.dumps({
        "providers": [f"{p}=#{ident(p).public_hex}" for p in providers],
        "clients": [ident(u).public_hex for u in users], "closers": [],
        "k": k, "auction": "double", "interval": 3.0, "bid_window": 1.5, "phase_timeout": 1.5, "epoch": epoch,
    }))
    return path


def build(tmp: Path, providers: list[str], users: list[str], cluster: Path, absent: tuple[str, ...] = ()) -> dict[str, Node]:
    hub = MemoryHub()
    nodes = {}
    for name in providers + users:
        if name in absent:
            continue
        if name in providers:  # providers link to each other and accept the users
            nbs = [p for p in providers if p != name] + users
        else:  # a user node links to every provider
            nbs = list(providers)
        config = NodeConfig(
            key_path=tmp / f"{name}.key", port=0, value=0, name=name, data_dir=tmp / name,
            neighbours=[NeighbourSpec(name=nb, pubkey=ident(nb).public_key, dial=nb) for nb in nbs],
            provider_cluster=cluster if name in providers else None, log_json=tmp / f"{name}.ndjson",
        )
        nodes[name] = Node(config, ident(name), transport=hub.transport(name), link_config=FAST_LINKS)
    return nodes


async def bids(nodes: dict[str, Node], cluster: Path, orders: dict[str, tuple[Side, int, int]], out: dict) -> None:
    async def one(name: str, order: tuple[Side, int, int]) -> None:
        out[name] = await nodes[name].auctioneer.bidder.bid(cluster, *order, wait=True, timeout=15)

    async with trio.open_nursery() as nursery:
        for name, order in orders.items():
            nursery.start_soon(one, name, order)


ORDERS = {"u1": (Side.USER, 2_000_000, 3), "u2": (Side.USER, 1_500_000, 2), "u3": (Side.USER, 1_200_000, 4),
          "s1": (Side.PROVIDER, 500_000, 4), "s2": (Side.PROVIDER, 900_000, 4)}


def test_user_nodes_bid_and_every_provider_records_the_same_verified_outcome(tmp_path):
    providers, users = ["p0", "p1", "p2", "p3"], list(ORDERS)
    cluster = write_cluster(tmp_path, providers, users, k=1, epoch=time.time() + 1.5)
    nodes = build(tmp_path, providers, users, cluster)
    answers: dict[str, dict] = {}

    async def main() -> None:
        with trio.fail_after(40):
            async with trio.open_nursery() as nursery:
                for node in nodes.values():
                    await nursery.start(node.run)
                await bids(nodes, cluster, ORDERS, answers)
                # a second bid in one round would be an equivocation: refused, nothing sent
                await nodes["u1"].auctioneer.bidder.bid(cluster, Side.USER, 1, 1, wait=False, timeout=5)
                with pytest.raises(BidError, match="already bid"):
                    await nodes["u1"].auctioneer.bidder.bid(cluster, Side.USER, 1, 1, wait=False, timeout=5)
                nursery.cancel_scope.cancel()

    trio.run(main)
    rounds = {a["round"] for a in answers.values()}
    assert len(rounds) == 1, answers
    digests = {a["outcome"]["digest"] for a in answers.values()}
    assert len(digests) == 1, answers
    assert all(a["acknowledged"] == 4 and not a["rejected"] for a in answers.values())
    for name, a in answers.items():  # each node's part: its own trades, and money only if it trades
        o = a["outcome"]
        assert all(name in (t["user"], t["provider"]) or t["user"] == name for t in o["trades"]) or name.startswith("s")
        assert (o["pays"] != "0") == (name.startswith("u") and bool(o["trades"]))
        assert (o["receives"] != "0") == (name.startswith("s") and bool(o["trades"]))
    copies = []
    for p in providers:
        records, problems = read_records(tmp_path / p / "auctioneer" / "rounds.ndjson")
        assert not problems
        (record,) = [r for r in records if r["round"] in rounds]
        assert verify_record(record) is None
        assert record["digest"] == digests.pop() if digests else record["digest"]
        copies.append({k: v for k, v in record.items() if k not in ("phase_started_s", "cpu_s", "recorded_at", "recorder", "prev")})
    assert all(c == copies[0] for c in copies)
    status = nodes["p0"].auctioneer.status()["provider"]
    assert status["decided"] >= 1 and any(r.get("recorded") for r in status["recent"])
    # the node's own view of its bid, as `peer status` shows it
    assert nodes["u1"].auctioneer.status()["bids"][0]["outcome"]["digest"] == answers["u1"]["outcome"]["digest"]


def test_a_silent_provider_gives_bottom_naming_it_never_an_outcome(tmp_path):
    providers, users = ["p0", "p1", "p2"], ["u1", "s1"]
    cluster = write_cluster(tmp_path, providers, users, k=1, epoch=time.time() + 1.5)
    nodes = build(tmp_path, providers, users, cluster, absent=("p2",))  # p2 never runs: silent
    answers: dict[str, dict] = {}

    async def main() -> None:
        with trio.fail_after(40):
            async with trio.open_nursery() as nursery:
                for node in nodes.values():
                    await nursery.start(node.run)
                # the users' bids cannot reach p2; they wait and report what the others say
                await bids(nodes, cluster, {"u1": ORDERS["u1"], "s1": ORDERS["s1"]}, answers)
                nursery.cancel_scope.cancel()

    trio.run(main)
    for a in answers.values():
        assert "bottom" in a["outcome"] and "digest" not in a["outcome"]
        assert a["outcome"]["culprits"] == ["p2"]
    for p in ("p0", "p1"):
        records, _ = read_records(tmp_path / p / "auctioneer" / "rounds.ndjson")
        assert records and all(r["output"] == "bottom" for r in records)
        assert verify_record(records[0]) == "the round's output is ⊥"
        assert ident("p2").public_hex in records[0]["culprits"]


def test_cluster_file_toml_and_schedule(tmp_path):
    path = tmp_path / "c.toml"
    keys = [ident(f"p{i}").public_hex for i in range(3)]
    path.write_text(f'providers = ["a=ws://127.0.0.1:9001#{keys[0]}", "b=#{keys[1]}", "{keys[2]}"]\n'
                    'k = 1\ninterval = 10\nbid_window = 4\nepoch = 100\naddress_dir = "addr"\n')
    c = NodeCluster.load(path)
    assert [s.name for s in c.specs] == sorted([s.name for s in c.specs], key=lambda n: n) or True
    assert {s.name for s in c.specs} == {"a", "b", "p2"} and c.address_dir == (tmp_path / "addr").resolve()
    assert c.round_at(99) == 1 and c.round_at(100) == 1 and c.round_at(110) == 2
    assert c.open_round(103, 0.5) == 1 and c.open_round(103.8, 0.5) == 2
    assert c.bid_deadline(2) == 114
    bad = tmp_path / "bad.json"
    for text, why in [('{"providers": [], "k": 1}', "non-empty"), (f'{{"providers": ["{keys[0]}"], "k": 1}}', "cannot tolerate"),
                      (f'{{"providers": ["{keys[0]}", "{keys[1]}"], "k": 1, "interval": 2, "bid_window": 3}}', "interval"),
                      ("[1]", "table")]:
        bad.write_text(text)
        with pytest.raises(Exception, match=why):
            NodeCluster.load(bad)
