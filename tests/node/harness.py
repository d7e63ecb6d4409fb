"""Run a scenario's nodes as real ``Node`` shells in one trio process, over the in-memory hub.

The links, handshakes, signatures, gossip and fsync'd ledgers are all real;
only the byte transport is a memory stream.  Bounded on the real clock: the
ledger writes go through worker threads, which a mock clock would race.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import trio

from peer.launch.check import LaunchCheck
from peer.net.identity import Identity
from peer.net.link import LinkConfig
from peer.net.websocket import MemoryHub
from peer.node.config import NeighbourSpec, NodeConfig
from peer.node.node import Node
from peer.reference.replay import replay_run
from peer.result import Hop, NodeReport, RunResult
from peer.scenario.model import Scenario

FAST_LINKS = LinkConfig(heartbeat_interval=1.0, idle_timeout=5.0, defer_dial=0.05, backoff_base=0.02, backoff_cap=0.2)


def identity_for(scenario: Scenario, node: str) -> Identity:
    return Identity.from_seed(hashlib.sha256(f"test/{scenario.name}/{node}".encode()).digest())


@dataclass
class Cluster:
    scenario: Scenario
    nodes: dict[str, Node]
    keys: dict[str, str]  # name -> public key hex

    @property
    def auction(self) -> str:
        return f"{self.scenario.name}/{self.scenario.seed}"


def build(scenario: Scenario, root: Path, *, gather_window: float = 0.05) -> Cluster:
    hub = MemoryHub()
    ids = {n: identity_for(scenario, n) for n in scenario.graph.nodes}
    nodes = {}
    for name in sorted(scenario.graph.nodes):
        config = NodeConfig(
            key_path=root / f"{name}.key",
            port=0,
            value=scenario.values[name],
            neighbours=[
                NeighbourSpec(name=nb, pubkey=ids[nb].public_key, dial=nb) for nb in scenario.neighbours(name)
            ],
            name=name,
            sell="item" if name == scenario.seller else None,
            auction_id=f"{scenario.name}/{scenario.seed}" if name == scenario.seller else None,
            seed=scenario.seed,
            data_dir=root / name,
            log_json=root / f"{name}.ndjson",
            gather_window=gather_window,
            reply_timeout=20.0,
            context_timeout=10.0,
            start_timeout=20.0,
        )
        nodes[name] = Node(config, ids[name], transport=hub.transport(name), link_config=FAST_LINKS)
    return Cluster(scenario, nodes, {n: ids[n].public_hex for n in ids})


async def run_until_done(cluster: Cluster, limit: float = 30.0) -> None:
    with trio.fail_after(limit):
        async with trio.open_nursery() as nursery:
            for node in cluster.nodes.values():
                await nursery.start(node.run)
            for node in cluster.nodes.values():
                await node.done.wait()
            nursery.cancel_scope.cancel()


def outcome(cluster: Cluster) -> tuple[RunResult, LaunchCheck]:
    """The run in key space, its replay check and the ledger copies' agreement."""
    check = LaunchCheck()
    sc = cluster.scenario
    key_nodes = {}
    for name, node in cluster.nodes.items():
        m = node.machine
        assert m is not None, f"{name} never joined the auction"
        key_nodes[cluster.keys[name]] = NodeReport(
            value=m.value, inviters=sorted(m.inviters), invitees=sorted(m.children.keys() | m.declined),
            parent=m.parents[0] if len(m.parents) == 1 else None,
        )
    seller_chain = cluster.nodes[sc.seller].store.chain(cluster.auction)
    assert seller_chain is not None
    hops = [Hop(h.body.hop, h.body.seller, h.body.buyer, h.body.price) for h in seller_chain.hops]
    winner = hops[-1].buyer if hops else cluster.keys[sc.seller]
    run = RunResult("sra", cluster.keys[sc.seller], sc.seed, key_nodes, hops, winner, {}, 0)
    replayed = replay_run(run, {cluster.keys[n]: v for n, v in sc.values.items()})
    check.replay_matches = replayed.hops == hops and replayed.winner == winner
    digests = {name: tuple(h.hash for h in node.store.chain(cluster.auction).hops)  # type: ignore[union-attr]
               for name, node in cluster.nodes.items()}
    check.ledger_identical = len(set(digests.values())) == 1
    check.ledger_verified = sum(1 for n in cluster.nodes.values() if n.store.verify_all().ok)
    return run, check
