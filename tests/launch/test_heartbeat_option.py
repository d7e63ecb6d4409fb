"""peer run --heartbeat, and the launcher's choice of it for large launches."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from peer.cli.app import app
from peer.launch.plan import LARGE_LAUNCH, LARGE_LAUNCH_HEARTBEAT, launch_heartbeat, plan_nodes
from peer.net.websocket import MemoryHub
from peer.scenario.load import load_scenario
from peer.node.config import NeighbourSpec, NodeConfig
from peer.node.node import Node
from tests.node.live import ident

ROOT = Path(__file__).resolve().parents[2]


def test_the_launcher_slows_heartbeats_only_for_large_fault_free_single_host_launches() -> None:
    assert launch_heartbeat(LARGE_LAUNCH, faults=False, hosts=False) == LARGE_LAUNCH_HEARTBEAT
    assert launch_heartbeat(LARGE_LAUNCH - 1, faults=False, hosts=False) is None
    assert launch_heartbeat(1_000, faults=True, hosts=False) is None  # a hung peer is noticed sooner
    assert launch_heartbeat(1_000, faults=False, hosts=True) is None  # partitions are silent


def test_a_planned_node_gets_the_option_and_a_node_builds_its_links_from_it(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "small-tree.toml")
    plans = plan_nodes(scenario, tmp_path / "run", seed=1, gather_window=0.2, reply_timeout=60, context_timeout=30,
                       heartbeat=15.0)
    assert all(p.argv[p.argv.index("--heartbeat") + 1] == "15.0" for p in plans)
    assert all("--heartbeat" not in p.argv for p in plan_nodes(
        scenario, tmp_path / "run2", seed=1, gather_window=0.2, reply_timeout=60, context_timeout=30))
    config = NodeConfig(key_path=tmp_path / "x.key", port=0, value=0, name="x", data_dir=tmp_path / "x",
                        neighbours=[NeighbourSpec(name="y", pubkey=ident("y").public_key, dial="y")],
                        control=False, heartbeat=2.0)
    node = Node(config, ident("x"), transport=MemoryHub().transport("x"))
    try:
        assert node.manager.config.heartbeat_interval == 2.0 and node.manager.config.idle_timeout == 6.0
    finally:
        node.store.close()
        node.log.close()


def test_peer_run_refuses_a_heartbeat_out_of_range(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["run", "--port", "0", "--key", str(tmp_path / "k"), "--heartbeat", "0.1"])
    assert out.exit_code == 2 and "--heartbeat" in out.output and "Traceback" not in out.output
