"""The link layer's reports and the outbox, as the node shell uses them.

* a failed handshake reaches ``--log-json`` as ``handshake_failed`` naming the
  configured neighbour dialled and the expected and presented keys (issue #9.4);
* a ban reaches it as ``banned`` (issue #16.2);
* refusals of one neighbour are logged rate-limited, with a summary line of the
  ones left out (issue #16.2);
* relayed foreign gossip queued for a down neighbour is dropped before this
  node's own protocol traffic (issue #17.3).

In-memory hub, real Node shells; every wait bounded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import trio

from peer.ledger import Entries
from peer.net.codec import GossipEnvelope
from peer.net.gossip import Forward, signed_bytes, to_ms
from peer.net.identity import Identity
from peer.net.link import LinkConfig
from peer.net.outbox import Priority
from peer.net.websocket import MemoryHub
from peer.node.config import NeighbourSpec, NodeConfig
from peer.node.node import LEDGER_TOPIC, Node
from peer.sra.messages import Settled
from tests.node.harness import FAST_LINKS
from tests.node.live import ident, make_node, make_nodes, running, sell, wait_everywhere

M = 10**6


def events_of(node: Node) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    node.log.listeners.append(seen.append)
    return seen


def node_with(name: str, neighbours: list[str], root: Path, hub: MemoryHub, links: LinkConfig) -> Node:
    """Like ``live.make_node``, with its own link settings."""
    config = NodeConfig(key_path=root / f"{name}.key", port=0, value=0, name=name, seed=1, data_dir=root / name,
                        log_json=root / f"{name}.ndjson", control=False,
                        neighbours=[NeighbourSpec(name=nb, pubkey=ident(nb).public_key, dial=nb) for nb in neighbours])
    return Node(config, ident(name), transport=hub.transport(name), link_config=links)


async def until(predicate: Any, limit: float = 20.0) -> None:
    with trio.fail_after(limit):
        while not predicate():
            await trio.sleep(0.02)


async def test_a_wrong_pinned_key_is_logged_naming_the_neighbour_and_both_keys(tmp_path: Path) -> None:
    hub = MemoryHub()
    wrong = ident("somebody-else").public_key
    a = Node(NodeConfig(key_path=tmp_path / "a.key", port=0, value=0, name="a", seed=1, data_dir=tmp_path / "a",
                        log_json=tmp_path / "a.ndjson", control=False,
                        neighbours=[NeighbourSpec(name="b", pubkey=wrong, dial="b")]),
             ident("a"), transport=hub.transport("a"), link_config=FAST_LINKS)
    b = make_node("b", ["a"], 0, tmp_path, hub)
    seen = events_of(a)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            await nursery.start(b.run)
            await until(lambda: any(e["kind"] == "handshake_failed" and not e["inbound"] for e in seen))
            nursery.cancel_scope.cancel()
    failure = next(e for e in seen if e["kind"] == "handshake_failed" and not e["inbound"])
    assert failure["neighbour"] == "b" and failure["neighbour_key"] == wrong.hex()
    assert failure["expected"] == wrong.hex()
    assert failure["presented"] == ident("b").public_key.hex()
    assert failure["failure"] in ("wrong-key", "refused") and wrong.hex() in failure["reason"]
    # The same line is in the --log-json file, not only in memory.
    lines = [json.loads(x) for x in (tmp_path / "a.ndjson").read_text().splitlines()]
    assert any(x["kind"] == "handshake_failed" and x["presented"] == failure["presented"] for x in lines)
    assert not a.linked


async def test_a_neighbour_banned_for_abuse_is_logged_and_can_be_unbanned(tmp_path: Path) -> None:
    hub = MemoryHub()
    strict = replace(FAST_LINKS, abuse_threshold=3, ban_after=1.0)
    a = node_with("a", ["b"], tmp_path, hub, strict)
    b = make_node("b", ["a"], 0, tmp_path, hub)
    seen = events_of(a)
    b_key = ident("b").public_key.hex()
    async with running({"a": a, "b": b}):
        for _ in range(3):
            a.reject(b_key, "junk for the test")
        await until(lambda: any(e["kind"] == "banned" for e in seen))
        banned = next(e for e in seen if e["kind"] == "banned")
        assert banned["peer"] == "b" and banned["key"] == b_key and "abuse" in banned["reason"]
        assert b_key in a.manager.bans()
        await trio.sleep(0.5)
        assert b_key not in a.linked  # b redials, and is refused while banned
        assert a.manager.unban(b_key)
        await until(lambda: b_key in a.linked)


async def test_refusals_of_one_neighbour_are_logged_rate_limited_then_summarised(tmp_path: Path) -> None:
    hub = MemoryHub()
    quick = replace(FAST_LINKS, report_interval=0.5)
    a = node_with("a", ["b"], tmp_path, hub, quick)
    b = make_node("b", ["a"], 0, tmp_path, hub)
    seen = events_of(a)
    b_key = ident("b").public_key.hex()
    async with running({"a": a, "b": b}):
        async with a._lock:
            for i in range(40):
                a.reject(b_key, "the same junk again")
            a.reject(b_key, "another kind of junk")
        assert a.bad == 41
        lines = [e for e in seen if e["kind"] == "bad"]
        # One line for the first refusal and one for the new reason; the 39 repeats are not.
        assert [e["reason"] for e in lines] == ["the same junk again", "another kind of junk"]
        await until(lambda: any(e["kind"] == "bad_suppressed" for e in seen))
    summary = next(e for e in seen if e["kind"] == "bad_suppressed")
    assert summary["counts"] == {"b": 39} and summary["total"] == 39
    assert sum(1 for e in seen if e["kind"] == "bad_suppressed") == 1


def foreign_envelope(author: Identity, seq: int, payload: bytes, now: float) -> GossipEnvelope:
    expires = to_ms(now) + 60_000
    sig = author.sign(signed_bytes(author.public_key, seq, expires, LEDGER_TOPIC, payload))
    return GossipEnvelope(origin=author.public_key, seq=seq, expires_ms=expires, topic=LEDGER_TOPIC,
                          payload=payload, sig=sig)


def test_relayed_junk_never_crowds_out_the_nodes_own_messages(tmp_path: Path) -> None:
    hub = MemoryHub()
    a = make_node("a", ["b"], 0, tmp_path, hub)  # b is never up: everything queues
    b_key = ident("b").public_key.hex()
    seen = events_of(a)
    stranger = Identity.from_seed(hashlib.sha256(b"stranger").digest())
    junk = bytes(50_000)
    now = a.wallclock()
    env = foreign_envelope(stranger, 1, junk, now)
    assert a._forward_priority(env) is Priority.RELAY
    # Far more relay traffic than the per-neighbour budget (8 MiB).
    for seq in range(1, 400):
        a._gossip_effects([Forward(frozenset({b_key}), foreign_envelope(stranger, seq, junk, now))])
    assert a.outbox.pending_bytes(b_key) <= a.outbox.max_bytes_per_neighbour
    assert a.outbox.dropped[Priority.RELAY] > 0
    # The node's own traffic still gets in, at the cost of relay messages, with no error line.
    claim = Settled(auction="x", winner=a.me, hops=0, price=0)
    a.send(b_key, claim)
    a.publish(Entries(()))
    assert a.outbox.pending(b_key, Priority.PROTOCOL) == 2
    assert not a.outbox.refused[Priority.PROTOCOL]
    assert not [e for e in seen if e["kind"] == "error"]
    # Once b's link takes messages, ours go first.
    sent: list[Any] = []
    a.outbox.flush(lambda to, msg: sent.append(msg) or True, budget=2)
    assert sent[0] == claim and isinstance(sent[1], GossipEnvelope) and sent[1].origin == a.identity.public_key
    # Removing the neighbour drops its queue; nothing more is queued for it.
    assert a.outbox.pending(b_key) > 0
    assert a.remove_neighbour("b") == b_key
    assert a.outbox.pending(b_key) == 0 and a.outbox.pending_bytes() == 0
    a.send(b_key, claim)
    assert a.outbox.pending() == 0
    a.store.close()
    a.log.close()


async def test_foreign_gossip_of_an_auction_this_node_is_in_is_protocol_traffic(tmp_path: Path) -> None:
    # s - b - c: b relays s's ledger envelopes to c while it takes part in s's auction.
    hub = MemoryHub()
    nodes = make_nodes([("s", "b"), ("b", "c")], {"s": 0, "b": 5 * M, "c": 7 * M}, tmp_path, hub)
    b = nodes["b"]
    relayed: list[tuple[bool, Priority]] = []
    original = b._send

    def spy(to: str, msg: Any, priority: Priority = Priority.PROTOCOL) -> None:
        if isinstance(msg, GossipEnvelope) and msg.origin == ident("s").public_key and msg.topic == LEDGER_TOPIC:
            relayed.append((b.instances.get(auction_box[0]) is not None if auction_box else False, priority))
        original(to, msg, priority)

    auction_box: list[str] = []
    b._send = spy  # type: ignore[method-assign]
    async with running(nodes):
        auction_box.append(await sell(nodes["s"], "lamp"))
        await wait_everywhere(nodes, auction_box[0])
    assert nodes["s"].outcomes[-1]["outcome"] == "completed"
    # While b took part, s's envelopes were its own auction's traffic; after, plain relay.
    assert (True, Priority.PROTOCOL) in relayed
    assert all(p is Priority.PROTOCOL for live, p in relayed if live)
    junk = foreign_envelope(ident("s"), 10**6, b"not a ledger payload", b.wallclock())
    assert b._forward_priority(junk) is Priority.RELAY
