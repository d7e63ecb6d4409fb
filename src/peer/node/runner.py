"""Run one node in trio, with its compact live view (what ``peer run`` runs)."""

from __future__ import annotations

import functools

import trio
from rich.console import Console
from rich.live import Live

from peer.net.identity import Identity
from peer.node.config import NodeConfig
from peer.node.node import Node
from peer.tui.views import node_view


async def _dashboard(node: Node, console: Console, fps: float = 4.0) -> None:
    # auto_refresh=False: rich's refresh thread would read node state from another OS thread.
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while True:
            live.update(node_view(node.snapshot(), events=list(node.recent)), refresh=True)
            await trio.sleep(1 / fps)


async def serve_node(config: NodeConfig, identity: Identity, *, tui: bool, console: Console | None = None) -> Node:
    """Run the node until it is done (``exit_when_done``) or cancelled; return it."""
    node = Node(config, identity)
    async with trio.open_nursery() as nursery:
        if tui:
            nursery.start_soon(_dashboard, node, console or Console())
        await node.run()
        nursery.cancel_scope.cancel()
    if tui and console is not None:
        console.print(node_view(node.snapshot(), events=list(node.recent)))
    return node


def run_node_blocking(config: NodeConfig, identity: Identity, *, tui: bool) -> Node:
    return trio.run(functools.partial(serve_node, config, identity, tui=tui))
