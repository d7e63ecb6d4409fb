"""Long-lived in-memory nodes (no sale at start-up): sales are started by calling ``Node.sell``."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from peer.net.identity import Identity
from peer.net.websocket import MemoryHub
from peer.node.config import NeighbourSpec, NodeConfig
from peer.node.node import Node
from tests.node.harness import FAST_LINKS

M = 10**6


def ident(name: str) -> Identity:
    return Identity.from_seed(hashlib.sha256(f"live/{name}".encode()).digest())


def make_nodes(edges: list[tuple[str, str]], values: Mapping[str, int], root: Path, hub: MemoryHub,
               per_node: Mapping[str, Mapping[str, Any]] | None = None, **overrides: Any) -> dict[str, Node]:
    names = sorted({n for e in edges for n in e} | set(values))
    nbrs: dict[str, set[str]] = {n: set() for n in names}
    for a, b in edges:
        nbrs[a].add(b)
        nbrs[b].add(a)
    nodes = {}
    for name in names:
        settings = {**overrides, **(per_node or {}).get(name, {})}
        nodes[name] = make_node(name, sorted(nbrs[name]), values.get(name, 0), root, hub, **settings)
    return nodes


def make_node(name: str, neighbours: list[str], value: int, root: Path, hub: MemoryHub, **overrides: Any) -> Node:
    settings: dict[str, Any] = dict(
        key_path=root / f"{name}.key", port=0, value=value,
        neighbours=[NeighbourSpec(name=nb, pubkey=ident(nb).public_key, dial=nb) for nb in neighbours],
        name=name, seed=1, data_dir=root / name, log_json=root / f"{name}.ndjson", gather_window=0.05,
        reply_timeout=4.0, context_timeout=3.0, confirm_timeout=9.0, start_timeout=20.0, control=False,
    )
    settings.update(overrides)
    return Node(NodeConfig(**settings), ident(name), transport=hub.transport(name), link_config=FAST_LINKS)


@asynccontextmanager
async def running(nodes: Mapping[str, Node], limit: float = 60.0) -> AsyncIterator[trio.Nursery]:
    """Run every node, wait until all are linked; cancel them all on exit (bounded by ``limit``)."""
    with trio.fail_after(limit):
        async with trio.open_nursery() as nursery:
            for node in nodes.values():
                await nursery.start(node.run)
            for node in nodes.values():
                await node.all_linked.wait()
            yield nursery
            nursery.cancel_scope.cancel()


async def sell(node: Node, item: str) -> str:
    async with node._lock:
        return await node.sell(item)


async def wait_everywhere(nodes: Mapping[str, Node], auction: str, settle: float = 0.0) -> None:
    """Until no node hosts ``auction`` any more (each settled with a full ledger copy, or aborted)."""
    while any(n.instances.get(auction) is not None for n in nodes.values()):
        await trio.sleep(0.05)
    await trio.sleep(settle)


def chain_hashes(node: Node, auction: str) -> tuple[str, ...] | None:
    chain = node.store.chain(auction)
    return None if chain is None else tuple(e.hash for e in chain.entries)
