"""Verifiable coins on real node shells (links, signatures, fsync'd ledgers), in memory.

The nodes sign their coins with their identities (``SignerKeys``); the same
auction in the simulator's network, with the same node ids, keys and auction
id, must pick the same parents and end in the same hops.  A node whose Bid
names an inviter its coin does not pick is refused by that inviter.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import trio

from peer.node.config import NeighbourSpec, NodeConfig
from peer.node.eventlog import read_all
from peer.node.node import Node
from peer.net.websocket import MemoryHub
from peer.scenario.model import Scenario, explicit_scenario
from peer.sim.network import RoundDelays, SimNetwork
from peer.sra.behaviours import Behaviour
from peer.sra.coin_keys import SignerKeys
from peer.sra.coins import choose_parent, coin_message, parent_purpose
from peer.sra.config import SraConfig
from peer.sra.machine import SraNode
from tests.node.harness import FAST_LINKS, identity_for

M = 10**6
# d and g each have several inviters at the same depth, so their coins decide their parents.
EDGES = [("s", "a"), ("s", "b"), ("s", "c"), ("a", "d"), ("b", "d"), ("c", "d"), ("d", "e"), ("d", "f"),
         ("e", "g"), ("f", "g")]
VALUES = {"s": 0, "a": 2 * M, "b": 3 * M, "c": 4 * M, "d": 5 * M, "e": 7 * M, "f": 6 * M, "g": 9 * M}
AUCTION = "coins/1"


def scenario() -> Scenario:
    return explicit_scenario(EDGES, VALUES, seller="s", seed=1, name="coins")


def public_key(node: str) -> bytes | None:
    try:
        key = bytes.fromhex(node)
    except ValueError:
        return None
    return key if len(key) == 32 else None


def build(sc: Scenario, root: Path, *, behaviours: dict[str, Behaviour] | None = None) -> dict[str, Node]:
    hub = MemoryHub()
    ids = {n: identity_for(sc, n) for n in sc.graph.nodes}
    nodes = {}
    for name in sorted(sc.graph.nodes):
        config = NodeConfig(
            key_path=root / f"{name}.key", port=0, value=sc.values[name],
            neighbours=[NeighbourSpec(name=nb, pubkey=ids[nb].public_key, dial=nb) for nb in sc.neighbours(name)],
            name=name, sell="item" if name == sc.seller else None,
            auction_id=AUCTION if name == sc.seller else None, seed=sc.seed, data_dir=root / name,
            log_json=root / f"{name}.ndjson", gather_window=0.3, reply_timeout=8.0, context_timeout=8.0,
            confirm_timeout=30.0, start_timeout=20.0, verifiable_coins=True,
        )
        node = Node(config, ids[name], transport=hub.transport(name), link_config=FAST_LINKS)
        if behaviours and name in behaviours:
            _misbehave(node, behaviours[name])
        nodes[name] = node
    return nodes


def _misbehave(node: Node, behaviour: Behaviour) -> None:
    """The honest shell, but this node's machine deviates as ``behaviour`` says."""
    honest = node.sra.new_auction

    def new_auction(*args, **kwargs):  # type: ignore[no-untyped-def]
        inst = honest(*args, **kwargs)
        inst.machine.behaviour = behaviour
        return inst

    node.sra.new_auction = new_auction  # type: ignore[method-assign]


async def run(nodes: dict[str, Node], wait_for: list[str], limit: float = 40.0) -> None:
    with trio.fail_after(limit):
        async with trio.open_nursery() as nursery:
            for node in nodes.values():
                await nursery.start(node.run)
            for name in wait_for:
                await nodes[name].done.wait()
            nursery.cancel_scope.cancel()


def simulated(sc: Scenario, keys: dict[str, str]) -> SimNetwork:
    """The same auction in the simulator: node ids are the real public keys, coins signed by the real keys."""
    ids = {n: identity_for(sc, n) for n in sc.graph.nodes}
    config = SraConfig(gather_window=0.5, reply_timeout=20.0, context_timeout=20.0, confirm_timeout=400.0,
                       verifiable_coins=True)
    machines = {}
    for name in sorted(sc.graph.nodes):
        me = keys[name]
        machines[me] = SraNode(me, sorted(keys[nb] for nb in sc.neighbours(name)), sc.values[name],
                               auction=AUCTION, seed=sc.seed, seller=keys[sc.seller], item="item", config=config,
                               coin_keys=SignerKeys(ids[name].sign, public_key))
    network = SimNetwork(machines, RoundDelays())
    network.start(keys[sc.seller])
    network.run(until=10_000.0)
    return network


def coin_parent(sc: Scenario, name: str, inviters: list[str]) -> str:
    """The inviter (a name) that ``name``'s coin picks among ``inviters`` (names)."""
    keys = {n: identity_for(sc, n).public_hex for n in sc.graph.nodes}
    coin = identity_for(sc, name).sign(coin_message(AUCTION, parent_purpose()))
    chosen = choose_parent(coin, [keys[i] for i in inviters])
    return next(i for i in inviters if keys[i] == chosen)


async def test_a_verifiable_coin_auction_on_real_nodes_equals_the_simulators(tmp_path: Path) -> None:
    sc = scenario()
    nodes = build(sc, tmp_path)
    await run(nodes, list(nodes))
    keys = {n: node.me for n, node in nodes.items()}
    network = simulated(sc, keys)
    for name, node in nodes.items():
        assert node.config.verifiable_coins and node.machine.config.verifiable_coins
        sim = network.machines[keys[name]]
        assert sorted(node.machine.inviters) == sorted(sim.inviters), name
        assert node.machine.parents == sim.parents, name
        assert node.bad == 0, name
    # The coins, not the seed, chose: d's parent is the one its own signature picks.
    assert nodes["d"].machine.parents == [keys[coin_parent(sc, "d", ["a", "b", "c"])]]
    chain = nodes["s"].store.chain(AUCTION)
    assert chain is not None
    real_hops = [(h.body.seller, h.body.buyer, h.body.price) for h in chain.hops]
    assert real_hops, "somebody must have bought"
    assert real_hops == [(e.seller, e.buyer, e.price) for e in network.ledger.chain()]
    copies = {n: tuple(h.hash for h in node.store.chain(AUCTION).hops) for n, node in nodes.items()}  # type: ignore[union-attr]
    assert len(set(copies.values())) == 1


async def test_a_bid_to_a_parent_the_coin_does_not_pick_is_refused(tmp_path: Path) -> None:
    sc = scenario()
    honest_parent = coin_parent(sc, "d", ["a", "b", "c"])
    wrong = next(i for i in ["a", "b", "c"] if i != honest_parent)
    keys = {n: identity_for(sc, n).public_hex for n in sc.graph.nodes}
    nodes = build(sc, tmp_path, behaviours={"d": Behaviour(parent=keys[wrong])})
    await run(nodes, [n for n in nodes if n != "d"])
    assert nodes["d"].machine.parents == [keys[wrong]]  # it did bid to the wrong inviter ...
    refusals = [e for e in read_all(tmp_path / f"{wrong}.ndjson") if e.get("kind") == "bad"]
    assert any(e.get("peer") == "d" and "does not follow its coin" in e.get("reason", "") for e in refusals), refusals
    assert keys["d"] not in nodes[wrong].machine.children  # ... and was not counted as its child
    # Every refusal anywhere is of d (its other inviters may catch its Declines too), and the rest settle.
    for name in nodes:
        assert all(e.get("peer") == "d" for e in read_all(tmp_path / f"{name}.ndjson") if e.get("kind") == "bad"), name
    for name in ("s", "a", "b", "c"):
        assert nodes[name].machine.stage.value == "settled", name
