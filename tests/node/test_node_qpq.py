"""QPQ rounds through the real node shell: gossip-carried commitments and reveals, signed allocations.

Members are mostly not neighbours, so every commitment and reveal crosses
several signed links as origin-signed gossip.  The allocations every node
records must be identical, verify offline, and equal the simulator's
(``run_machines``) round by round, since the shell names members as the
scenario does and derives the same secrets.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import trio
import trio.testing

from peer.net.identity import Identity
from peer.net.websocket import MemoryHub
from peer.node.config import NeighbourSpec, NodeConfig
from peer.node.node import Node
from peer.node.qpq_shell import QpqPlan, read_allocations, setup_for
from peer.qpq.router import run_machines
from tests.node.harness import FAST_LINKS

ROOT = Path(__file__).resolve().parents[2]
# On trio's autojump clock (the nodes' wall clock is trio's too): virtual time moves only when every
# node waits, so no reveal is ever late.  On the real clock, 1 s phases failed whenever the machine
# was loaded (late reveals change a node's allocation, so copies differed), which is a test of the
# load, not of the shell.
PHASE = 1.0


async def run_stream(scenario: Path, tmp_path: Path, *, rounds: int, phase: float) -> dict[str, Node]:
    ids = {}
    probe = QpqPlan(scenario=scenario, me="?", keys={}, rounds=rounds, phase=phase, coordinator="?")
    setup = setup_for(probe)
    assert setup.graph is not None
    for name in setup.membership.nodes:
        ids[name] = Identity.from_seed(hashlib.sha256(f"qpq-test/{name}".encode()).digest())
    keys = {n: i.public_hex for n, i in ids.items()}
    coordinator = min(setup.membership.nodes)
    hub = MemoryHub()
    nodes = {}
    for name in setup.membership.nodes:
        plan = QpqPlan(scenario=scenario, me=name, keys=keys, rounds=rounds, phase=phase,
                       coordinator=coordinator, lead=0.5)
        plan_path = tmp_path / f"{name}.plan.json"
        plan.dump(plan_path)
        config = NodeConfig(
            key_path=tmp_path / f"{name}.key", port=0, value=0,
            neighbours=[NeighbourSpec(name=nb, pubkey=ids[nb].public_key, dial=nb)
                        for nb in sorted(setup.graph.neighbors(name))],
            name=name, data_dir=tmp_path / name, log_json=tmp_path / f"{name}.ndjson", qpq_plan=plan_path,
            start_timeout=20.0,
        )
        nodes[name] = Node(config, ids[name], transport=hub.transport(name), link_config=FAST_LINKS,
                           clock=trio.current_time)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for node in nodes.values():
                await nursery.start(node.run)
            for node in nodes.values():
                await node.done.wait()
            nursery.cancel_scope.cancel()
    return nodes


async def test_qpq_rounds_over_real_links_match_the_simulator(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    scenario = ROOT / "scenarios" / "qpq-small.toml"
    rounds = 3
    nodes = await run_stream(scenario, tmp_path, rounds=rounds, phase=PHASE)
    setup = setup_for(QpqPlan(scenario=scenario, me="?", keys={}, rounds=rounds, phase=PHASE, coordinator="?"))
    expected = run_machines(setup, rounds=rounds).entries
    copies = {}
    for name, node in nodes.items():
        assert node.qpq is not None
        if node.qpq.machine is None:
            continue  # an absent member records nothing
        entries, problems = read_allocations(node.qpq.path, setup, node.identity.public_hex)
        assert problems == [], (name, problems)
        copies[name] = [e.hash for e in entries]
    assert len(set(map(tuple, copies.values()))) == 1, "every node recorded the same allocations"
    assert next(iter(copies.values())) == [e.hash for e in expected]
