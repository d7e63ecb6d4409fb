"""peer run --heartbeat: the link heartbeat interval, with an idle timeout of three intervals."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from peer.cli.app import app
from peer.net.websocket import MemoryHub
from peer.node.config import NeighbourSpec, NodeConfig
from peer.node.node import Node
from tests.node.live import ident


def make(tmp_path: Path, heartbeat: float | None) -> Node:
    config = NodeConfig(key_path=tmp_path / "x.key", port=0, value=0, name="x", data_dir=tmp_path / "x",
                        neighbours=[NeighbourSpec(name="y", pubkey=ident("y").public_key, dial="y")],
                        control=False, heartbeat=heartbeat)
    return Node(config, ident("x"), transport=MemoryHub().transport("x"))


def test_a_node_builds_its_links_from_the_option(tmp_path: Path) -> None:
    for heartbeat, interval, idle in ((2.0, 2.0, 6.0), (None, 5.0, 15.0)):
        node = make(tmp_path / str(heartbeat), heartbeat)
        try:
            assert (node.manager.config.heartbeat_interval, node.manager.config.idle_timeout) == (interval, idle)
        finally:
            node.store.close()
            node.log.close()


def test_peer_run_refuses_a_heartbeat_out_of_range(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["run", "--port", "0", "--key", str(tmp_path / "k"), "--heartbeat", "0.1"])
    assert out.exit_code == 2 and "--heartbeat" in out.output and "Traceback" not in out.output
