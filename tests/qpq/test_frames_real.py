"""QPQ frame counts on real node shells (in memory): what each node hands its links, own and relayed.

A node's own message goes once to each neighbour, so its own frames are
exactly its degree times its publishes (read back from its ``send`` events).
A relay forwards a flooded envelope, the first time it sees it, to every
neighbour but the one it came from and the origin, so one flood of plain QPQ
costs between sum_{v != o} (deg v - 1) - deg o and sum_{v != o} (deg v - 1)
relay frames, whatever the timing.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import networkx as nx

from peer.node.eventlog import read_all
from peer.qpq.frames import FrameTally, frame_kind
from peer.qpq.messages import Commit, Reveal
from peer.qpq.decide import Level
from peer.qpq.wire import KickoffWire, encode
from tests.node.test_node_qpq import PHASE, run_stream

ROUNDS = 2


def scenario(tmp_path: Path, k: int) -> Path:
    path = tmp_path / f"frames-k{k}.toml"
    path.write_text(f'''name = "frames-k{k}"
seed = 3
[graph]
generator = "watts_strogatz"
n = 8
k = 4
p = 0.2
[qpq]
rounds = {ROUNDS}
clusters = "auto"
k = {k}
test = "off"
''', encoding="utf-8")
    return path


def test_frame_kinds_are_read_from_the_payload() -> None:
    commit = Commit(stream="s", round=0, level=Level.CLUSTER, digest=b"d" * 32, support=0)
    reveal = Reveal(stream="s", round=0, level=Level.WINNER, value=5, nonce=b"n" * 16)
    assert frame_kind(encode(commit)) == "cluster/commit"
    assert frame_kind(encode(reveal)) == "winner/reveal"
    assert frame_kind(encode(KickoffWire("s", 1))) == "kickoff"
    assert frame_kind(b"\xff") == "invalid"
    tally = FrameTally()
    tally.sent(encode(commit), 3, own=True)
    tally.sent(encode(reveal), 2, own=False)
    tally.sent(encode(reveal), 0, own=False)  # nobody to forward to: nothing sent
    assert tally.snapshot() == {"own/cluster/commit": 3, "relay/winner/reveal": 2}
    assert (tally.own, tally.relay) == (3, 2)


async def _run(tmp_path: Path, k: int) -> tuple[nx.Graph, dict, dict[str, Counter[str]]]:
    from peer.node.qpq_shell import QpqPlan, setup_for

    path = scenario(tmp_path, k)
    nodes = await run_stream(path, tmp_path, rounds=ROUNDS, phase=PHASE)
    setup = setup_for(QpqPlan(scenario=path, me="?", keys={}, rounds=ROUNDS, phase=PHASE, coordinator="?"))
    assert setup.graph is not None
    publishes: dict[str, Counter[str]] = {}
    for name in nodes:
        sends = [e for e in read_all(tmp_path / f"{name}.ndjson") if e.get("kind") == "send"]
        publishes[name] = Counter(
            f"{'winner' if e['peer'] == 'all' else 'cluster'}/{e['type'].lower()}" for e in sends)
    return setup.graph, nodes, publishes


async def test_plain_qpq_frames_on_real_nodes(tmp_path: Path) -> None:
    graph, nodes, publishes = await _run(tmp_path, 1)
    relay = Counter[str]()
    for name, node in nodes.items():
        stream = node._qpq
        assert stream is not None
        counts = stream.frames.snapshot()
        deg = graph.degree(name)
        assert publishes[name] == {"cluster/commit": ROUNDS, "cluster/reveal": ROUNDS}  # no winner level
        for kind in ("cluster/commit", "cluster/reveal"):
            assert counts.get(f"own/{kind}") == deg * ROUNDS, (name, counts)
            relay[kind] += counts.get(f"relay/{kind}", 0)
        assert not any("winner" in key for key in counts)
        assert stream.link_frames is not None and stream.link_frames() >= stream.frames.own + stream.frames.relay
    # Every message floods the whole graph: n per kind and round.
    upper = sum(sum(graph.degree(v) - 1 for v in graph if v != o) for o in graph)
    lower = upper - sum(graph.degree(o) for o in graph)
    for kind, frames in relay.items():
        assert ROUNDS * lower <= frames <= ROUNDS * upper, (kind, frames, lower, upper)
    # Round 0's frames, logged with each node's round-1 event, are one round of the same.
    round0 = Counter[str]()
    for name in nodes:
        (event,) = [e for e in read_all(tmp_path / f"{name}.ndjson") if e.get("kind") == "qpq_round" and e["round"] == 1]
        round0.update(event["round_frames"])
    assert round0["own/cluster/commit"] == round0["own/cluster/reveal"] == 2 * graph.number_of_edges()
    assert lower <= round0["relay/cluster/commit"] <= upper and lower <= round0["relay/cluster/reveal"] <= upper


async def test_multilevel_own_frames_are_degree_times_publishes(tmp_path: Path) -> None:
    graph, nodes, publishes = await _run(tmp_path, 2)
    winner_publishes = 0
    for name, node in nodes.items():
        assert node._qpq is not None
        counts = node._qpq.frames.snapshot()
        deg = graph.degree(name)
        for kind, times in publishes[name].items():
            assert counts.get(f"own/{kind}") == deg * times, (name, kind, counts)
        winner_publishes += publishes[name]["winner/commit"]
    assert winner_publishes == 2 * ROUNDS  # one cluster winner per cluster and round commits at the top level
    assert sum(node._qpq.frames.relay for node in nodes.values()) > 0  # type: ignore[union-attr]


def test_frames_are_kept_per_round_and_taken_once() -> None:
    tally = FrameTally()
    for round_, frames in ((0, 2), (1, 3), (1, 1)):
        tally.sent(encode(Commit(stream="s", round=round_, level=Level.CLUSTER, digest=b"d" * 32, support=0)),
                   frames, own=False)
    tally.sent(encode(KickoffWire("s", 1)), 4, own=True)  # no round: totals only
    assert tally.take_round(1) == {"relay/cluster/commit": 4}
    assert tally.take_round(1) == {}
    assert tally.by_round == {}  # round 0, older than the round taken, is dropped unlogged
    assert tally.snapshot() == {"own/kickoff": 4, "relay/cluster/commit": 6}
