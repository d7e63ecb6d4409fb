"""The node's auctioneer collaborator against a fake node: routing, refusals, the schedule (no network, no sleeps)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from peer.auctioneer import codec
from peer.auctioneer import messages as m
from peer.auctioneer.bids import Side, sign_bid
from peer.auctioneer.node_shell import AUCTIONEER_TOPIC, AuctioneerHost
from peer.auctioneer.provider_host import ProviderRoleError
from peer.net.gossip import sign_envelope
from tests.auctioneer._helpers import ident

EPOCH = 1_000_000.0


@dataclass
class FakeConfig:
    provider_cluster: Path | None


@dataclass
class FakeNode:
    """What AuctioneerHost uses of a node, recording what it is asked to do."""

    config: FakeConfig
    identity: Any
    data_dir: Path
    neighbours: list[str]
    sent: list[tuple[str, Any]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    events: list[tuple[str, dict]] = field(default_factory=list)
    messages_out: int = 0
    messages_in: int = 0
    address: Any = ("127.0.0.1", 1)
    manager: Any = None

    @property
    def me(self) -> str:
        return self.identity.public_hex

    def send(self, to: str, msg: Any) -> None:
        self.sent.append((to, msg))

    def reject(self, peer: str, reason: str, **_: Any) -> None:
        self.rejected.append((peer, reason))

    def emit(self, kind: str, **fields: Any) -> None:
        self.events.append((kind, fields))

    def note(self, line: str) -> None:
        pass

    def n(self, key: str) -> str:
        return key[:8]

    async def run_sync(self, fn: Any, *args: Any) -> Any:
        return fn(*args)


PROVIDERS = [ident("provider", i) for i in range(3)]
CLIENT = ident("client", 0)
STRANGER = ident("stranger", 0)


def make(tmp_path: Path, me: int = 0) -> tuple[AuctioneerHost, FakeNode, list[float]]:
    cluster = tmp_path / "cluster.json"
    cluster.write_text(json.dumps({
        "providers": [f"p{i}=#{p.public_hex}" for i, p in enumerate(PROVIDERS)], "clients": [CLIENT.public_hex],
        "k": 1, "interval": 10, "bid_window": 4, "phase_timeout": 2, "epoch": EPOCH,
    }))
    node = FakeNode(FakeConfig(cluster), PROVIDERS[me], tmp_path / f"d{me}",
                    [p.public_hex for p in PROVIDERS if p is not PROVIDERS[me]] + [CLIENT.public_hex])
    clock = [EPOCH + 0.5]
    host = AuctioneerHost(node, trio.Lock(), lambda: clock[0])
    assert host.provider is not None
    host.provider.started()
    return host, node, clock


def frame(sender: Any, msg: m.Message, origin: Any = None):
    return sign_envelope(origin or sender, 1, 2**40, AUCTIONEER_TOPIC, codec.encode(msg))


def deliver(host: AuctioneerHost, peer: Any, env: Any) -> None:
    trio.run(host.on_envelope, peer.public_hex, env)


def test_bad_frames_are_refused_and_open_nothing(tmp_path):
    host, node, _ = make(tmp_path)
    bids = m.BidBatch(1, (sign_bid(ident("user", 1), 1, Side.USER, 5, 1),))
    deliver(host, CLIENT, frame(CLIENT, bids, origin=STRANGER))  # relayed: origin is not the link peer
    deliver(host, STRANGER, frame(STRANGER, bids))  # not a member of the cluster
    bad = sign_envelope(CLIENT, 2, 2**40, AUCTIONEER_TOPIC, b"\x93\x01\x02")  # not an auctioneer message
    deliver(host, CLIENT, bad)
    assert [r for _, r in node.rejected] == [
        "auctioneer frames go point to point; this one was relayed",
        "BidBatch from a key that is neither a provider nor a client",
        node.rejected[2][1],
    ] and node.rejected[2][1].startswith("malformed auctioneer message")
    assert len(host.provider.table) == 0 and not node.sent
    # an answer meant for a bidder, to a node that never bid: dropped quietly
    deliver(host, PROVIDERS[1], frame(PROVIDERS[1], m.BidReceipt(1, 1, ())))
    assert len(node.rejected) == 3 and not node.sent


def test_a_far_round_is_ignored_and_the_current_one_opens_on_its_bids(tmp_path):
    host, node, _ = make(tmp_path)
    user = ident("user", 1)
    deliver(host, CLIENT, frame(CLIENT, m.BidBatch(9, (sign_bid(user, 9, Side.USER, 5, 1),))))
    assert len(host.provider.table) == 0 and node.events[-1][0] == "ignored"
    deliver(host, CLIENT, frame(CLIENT, m.BidBatch(1, (sign_bid(user, 1, Side.USER, 5, 1),))))
    (inst,) = list(host.provider.table)
    assert inst.round == 1 and inst.next_deadline() == EPOCH + 4  # the schedule's deadline, not arrival + window
    (to, env), = node.sent
    assert to == CLIENT.public_hex and codec.decode(env.payload) == m.BidReceipt(1, 1, ())


def test_rounds_open_on_schedule_and_close_at_their_deadline(tmp_path):
    host, node, clock = make(tmp_path)
    assert host.next_deadline() == EPOCH  # round 1 starts at the epoch: due now
    trio.run(host.provider.on_timer, clock[0])
    assert [i.round for i in host.provider.table] == [1] and host.provider.next_round == 2
    assert host.next_deadline() == EPOCH + 4
    clock[0] = EPOCH + 4
    trio.run(host.provider.on_timer, clock[0])
    views = [(to, codec.decode(env.payload)) for to, env in node.sent]
    assert {to for to, _ in views} == {p.public_hex for p in PROVIDERS[1:]}
    assert all(isinstance(msg, m.ViewDigest) and msg.round == 1 for _, msg in views)
    # the others never answer: ⊥ at the phase timeout, naming them; a ⊥ of a round without bids is not recorded
    clock[0] = EPOCH + 6.5
    trio.run(host.provider.on_timer, clock[0])
    assert host.provider.aborted == 1 and host.provider.empty == 1 and len(host.provider.table) == 0
    assert not (node.data_dir / "auctioneer" / "rounds.ndjson").exists()
    assert host.status()["provider"]["recent"][0]["output"] == "bottom"


def test_a_node_that_is_not_a_provider_cannot_take_the_role(tmp_path):
    host, node, _ = make(tmp_path)
    with pytest.raises(ProviderRoleError, match="not one of the cluster's providers"):
        AuctioneerHost(FakeNode(node.config, CLIENT, tmp_path / "c", []), trio.Lock(), lambda: EPOCH)
