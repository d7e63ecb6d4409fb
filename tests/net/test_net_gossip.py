"""Gossip: flooding delivers exactly once, relays cannot alter, expiry, and seq persistence."""

from __future__ import annotations

from collections import Counter, deque
from pathlib import Path

import msgspec
import networkx as nx
import pytest

from peer.net.codec import GossipEnvelope
from peer.net.codec import MAX_GOSSIP_PAYLOAD
from peer.net.gossip import (
    Deliver,
    Forward,
    Gossip,
    GossipError,
    GossipLimits,
    PayloadTooLarge,
    PublishError,
    RateLimiter,
    SeenCache,
    TokenBucket,
    sign_envelope,
    verify_envelope,
)
from peer.net.identity import Identity
from peer.net.seqstore import MemorySeqCounter, SeqFile, SeqFileError

NOW = 1_700_000_000.0


def ident(i: int) -> Identity:
    return Identity.from_seed(i.to_bytes(32, "big"))


def make_nodes(graph: nx.Graph) -> dict[str, Gossip]:
    ids = {n: ident(n + 1) for n in graph.nodes}
    return {
        ids[n].public_hex: Gossip(ids[n], MemorySeqCounter(), frozenset(ids[m].public_hex for m in graph[n]))
        for n in graph.nodes
    }


Queue = deque[tuple[str, str, GossipEnvelope]]  # (sender, receiver, envelope) in flight


def flood(nodes: dict[str, Gossip], queue: Queue, now: float) -> Counter[tuple[str, bytes, int]]:
    """Run the network to quiescence in FIFO order; count deliveries per (node, msg id)."""
    delivered: Counter[tuple[str, bytes, int]] = Counter()
    while queue:
        sender, receiver, env = queue.popleft()
        for effect in nodes[receiver].receive(sender, env, now):
            if isinstance(effect, Deliver):
                delivered[(receiver, env.origin, env.seq)] += 1
            else:
                queue.extend((receiver, to, effect.envelope) for to in effect.to)
    return delivered


def publish(nodes: dict[str, Gossip], origin: str, queue: Queue, payload: bytes) -> GossipEnvelope:
    env, effects = nodes[origin].publish("auction", payload, NOW)
    for effect in effects:
        assert isinstance(effect, Forward)
        queue.extend((origin, to, effect.envelope) for to in effect.to)
    return env


GRAPHS = [nx.petersen_graph(), nx.cycle_graph(7), nx.connected_watts_strogatz_graph(15, 4, 0.3, seed=3)]


@pytest.mark.parametrize("graph", GRAPHS)
def test_flood_delivers_each_message_exactly_once_to_every_other_node(graph: nx.Graph) -> None:
    nodes = make_nodes(graph)
    queue: Queue = deque()
    origins = list(nodes)[:3]
    envs = [publish(nodes, o, queue, f"m{i}".encode()) for i, o in enumerate(origins * 2)]
    delivered = flood(nodes, queue, NOW + 1)
    for env in envs:
        for name in nodes:
            expected = 0 if name == env.origin.hex() else 1
            assert delivered[(name, env.origin, env.seq)] == expected
    # Flooding cost: each node forwards each message at most once per neighbour.
    assert sum(g.stats.duplicates + g.stats.echoes for g in nodes.values()) <= len(envs) * 2 * graph.number_of_edges()


def test_forward_excludes_the_sender_and_the_origin() -> None:
    a, b, c, d = ident(1), ident(2), ident(3), ident(4)
    node = Gossip(b, MemorySeqCounter(), frozenset({a.public_hex, c.public_hex, d.public_hex}))
    env = sign_envelope(a, 1, int((NOW + 30) * 1000), "t", b"p")
    deliver, forward = node.receive(c.public_hex, env, NOW)
    assert deliver == Deliver(env, c.public_hex)
    assert isinstance(forward, Forward) and forward.to == {d.public_hex}
    assert forward.envelope is env  # forwarded unchanged


def test_a_relay_that_alters_the_message_is_detected() -> None:
    a, relay, c = ident(1), ident(2), ident(3)
    node = Gossip(c, MemorySeqCounter(), frozenset({relay.public_hex}))
    env = sign_envelope(a, 1, int((NOW + 30) * 1000), "bids", b"amount=5")
    for altered in (
        msgspec.structs.replace(env, payload=b"amount=9"),
        msgspec.structs.replace(env, topic="other"),
        msgspec.structs.replace(env, seq=2),
        msgspec.structs.replace(env, expires_ms=env.expires_ms + 1000),
        msgspec.structs.replace(env, origin=relay.public_key),
    ):
        assert not verify_envelope(altered)
        with pytest.raises(GossipError, match="bad origin signature") as info:
            node.receive(relay.public_hex, altered, NOW)
        assert info.value.sender == relay.public_hex
    assert node.stats.invalid == 5
    # The forgeries did not squat the id: the genuine message is still delivered.
    assert isinstance(node.receive(relay.public_hex, env, NOW)[0], Deliver)


def test_expired_and_far_future_messages_are_dropped() -> None:
    a, b = ident(1), ident(2)
    node = Gossip(b, MemorySeqCounter(), frozenset({a.public_hex}), max_ttl=60, max_skew=5)
    expired = sign_envelope(a, 1, int(NOW * 1000), "t", b"")
    assert node.receive(a.public_hex, expired, NOW) == []
    far = sign_envelope(a, 2, int((NOW + 120) * 1000), "t", b"")
    assert node.receive(a.public_hex, far, NOW) == []
    ok = sign_envelope(a, 3, int((NOW + 10) * 1000), "t", b"")
    assert node.receive(a.public_hex, ok, NOW)
    assert node.receive(a.public_hex, ok, NOW + 5) == []  # duplicate while cached
    assert node.receive(a.public_hex, ok, NOW + 11) == []  # after expiry: expired, never re-delivered
    node.seen.sweep(int((NOW + 11) * 1000))
    assert len(node.seen) == 0
    assert (node.stats.expired, node.stats.too_far_ahead, node.stats.duplicates, node.stats.delivered) == (2, 1, 1, 1)


def test_own_messages_coming_back_are_dropped() -> None:
    a, b = ident(1), ident(2)
    node = Gossip(a, MemorySeqCounter(), frozenset({b.public_hex}))
    env, effects = node.publish("t", b"x", NOW)
    assert effects == [Forward(frozenset({b.public_hex}), env)]
    assert node.receive(b.public_hex, env, NOW) == []
    assert node.stats.echoes == 1


def test_publish_checks_its_arguments() -> None:
    node = Gossip(ident(1), MemorySeqCounter())
    with pytest.raises(ValueError):
        node.publish("t", b"", NOW, ttl=0)
    with pytest.raises(ValueError):
        node.publish("t", b"", NOW, ttl=10_000)
    with pytest.raises(ValueError):
        node.publish("", b"", NOW)
    env, effects = node.publish("t", b"", NOW)
    assert effects == [] and env.seq == 1


def test_an_oversize_payload_is_refused_with_the_documented_error_and_uses_no_seq() -> None:
    """#15.10: publish used to raise a bare ValueError that nothing caught."""
    node = Gossip(ident(1), MemorySeqCounter(), frozenset({ident(2).public_hex}))
    with pytest.raises(PayloadTooLarge) as info:
        node.publish("ledger", b"x" * (MAX_GOSSIP_PAYLOAD + 1), NOW)
    assert isinstance(info.value, PublishError) and info.value.size == MAX_GOSSIP_PAYLOAD + 1
    for bad in (dict(ttl=0), dict(ttl=10_000)):
        with pytest.raises(PublishError):
            node.publish("t", b"", NOW, **bad)
    env, _ = node.publish("ledger", b"x" * MAX_GOSSIP_PAYLOAD, NOW)
    assert env.seq == 1 and node.stats.published == 1


def test_seen_cache_is_bounded_and_eviction_never_readmits() -> None:
    cache = SeenCache(capacity=3)
    origin = b"o" * 32
    now = 0
    for seq, expires in [(1, 500), (2, 100), (3, 900)]:
        cache.add((origin, seq), expires, now)
    cache.add((origin, 4), 800, now)  # evicts seq 2 (closest to expiry) and raises the floor to 2
    assert len(cache) == 3
    assert cache.floor(origin) == 2
    assert (origin, 2) in cache and (origin, 1) in cache  # floor covers anything at or below it
    assert (origin, 5) not in cache
    cache.sweep(600)
    assert len(cache) == 2  # seq 1 expired at 500


def test_evicted_message_is_not_delivered_again() -> None:
    a, b = ident(1), ident(2)
    node = Gossip(b, MemorySeqCounter(), frozenset({a.public_hex}), seen=SeenCache(capacity=2))
    envs = [sign_envelope(a, s, int((NOW + 10 + s) * 1000), "t", b"") for s in (1, 2, 3)]
    for env in envs:
        assert node.receive(a.public_hex, env, NOW)
    assert node.receive(a.public_hex, envs[0], NOW) == []
    assert node.stats.stale == 1


def test_seq_file_persists_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "gossip.seq"
    first = SeqFile(path, lease=4)
    assert [first.next() for _ in range(6)] == [1, 2, 3, 4, 5, 6]
    assert path.read_text() == "8\n"  # leases: reserved up to 4, then up to 8
    assert not (tmp_path / "gossip.seq.tmp").exists()
    second = SeqFile(path, lease=4)  # restart (or crash) after 6 numbers were used
    assert second.next() == 9
    third = SeqFile(path, lease=1)
    assert [third.next(), third.next()] == [13, 14]
    assert SeqFile(path).next() == 15


def test_seq_file_refuses_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "gossip.seq"
    path.write_text("garbage\n")
    with pytest.raises(SeqFileError, match="corrupt"):
        SeqFile(path)
    path.write_text("-5\n")
    with pytest.raises(SeqFileError, match="out of range"):
        SeqFile(path)


def test_restarted_origin_is_not_mistaken_for_a_duplicate(tmp_path: Path) -> None:
    a, b = ident(1), ident(2)
    path = tmp_path / "a.seq"
    receiver = Gossip(b, MemorySeqCounter(), frozenset({a.public_hex}))
    before, _ = Gossip(a, SeqFile(path), frozenset({b.public_hex})).publish("t", b"before", NOW)
    after, _ = Gossip(a, SeqFile(path), frozenset({b.public_hex})).publish("t", b"after", NOW + 1)
    assert after.seq > before.seq
    assert receiver.receive(a.public_hex, before, NOW + 1)
    assert receiver.receive(a.public_hex, after, NOW + 1)
    assert receiver.stats.delivered == 2


# ---------------------------------------------------- rate and quota (#16.1)

SMALL = GossipLimits(link_msgs=10, link_msgs_burst=20, link_bytes=10_000, link_bytes_burst=50_000,
                     origin_msgs=2, origin_msgs_burst=5, origin_bytes=10_000, origin_bytes_burst=50_000,
                     max_origins=8, max_links=4)


def _signed(origin: Identity, seq: int, payload: bytes = b"x", now: float = NOW) -> GossipEnvelope:
    return sign_envelope(origin, seq, int((now + 30) * 1000), "ledger", payload)


def _delivered(effects: list) -> int:
    return sum(isinstance(e, Deliver) for e in effects)


def test_one_neighbour_with_throwaway_origins_is_bounded_by_its_link_rate() -> None:
    me, spammer, honest = ident(1), ident(2), ident(3)
    node = Gossip(me, MemorySeqCounter(), frozenset({spammer.public_hex, honest.public_hex}), limits=SMALL)
    throwaway = [ident(100 + i) for i in range(60)]
    got = sum(_delivered(node.receive(spammer.public_hex, _signed(o, 1), NOW)) for o in throwaway)
    assert got == SMALL.link_msgs_burst and node.stats.link_limited == 60 - 20
    # The honest neighbour's link has its own bucket: it is still served.
    assert _delivered(node.receive(honest.public_hex, _signed(ident(99), 1), NOW)) == 1
    # One second later the spammer's link has refilled by its rate, no more.
    later = [ident(200 + i) for i in range(30)]
    got = sum(_delivered(node.receive(spammer.public_hex, _signed(o, 1, now=NOW + 1), NOW + 1)) for o in later)
    assert got == SMALL.link_msgs


def test_a_link_over_its_rate_is_refused_before_the_signature_is_checked() -> None:
    me, spammer = ident(1), ident(2)
    node = Gossip(me, MemorySeqCounter(), frozenset({spammer.public_hex}), limits=SMALL)
    forged = [msgspec.structs.replace(_signed(ident(100 + i), 1), sig=b"\0" * 64) for i in range(30)]
    errors = 0
    for env in forged:
        try:
            node.receive(spammer.public_hex, env, NOW)
        except GossipError:
            errors += 1
    assert errors == SMALL.link_msgs_burst and node.stats.link_limited == 10  # no CPU for the rest


def test_one_origin_is_bounded_whichever_links_bring_it() -> None:
    me, a, b, origin = ident(1), ident(2), ident(3), ident(4)
    node = Gossip(me, MemorySeqCounter(), frozenset({a.public_hex, b.public_hex}), limits=SMALL)
    envs = [_signed(origin, seq) for seq in range(1, 21)]
    got = 0
    for env in envs:  # each message arrives on both links: the second copy is a duplicate, not charged
        got += _delivered(node.receive(a.public_hex, env, NOW))
        got += _delivered(node.receive(b.public_hex, env, NOW))
    assert got == SMALL.origin_msgs_burst
    assert node.stats.origin_limited == 20 - 5 and node.stats.duplicates == 20
    assert _delivered(node.receive(a.public_hex, _signed(origin, 50, now=NOW + 1), NOW + 1)) == 1  # refilled


def test_bytes_are_bounded_too() -> None:
    me, a = ident(1), ident(2)
    node = Gossip(me, MemorySeqCounter(), frozenset({a.public_hex}), limits=SMALL)
    big = b"x" * 20_000
    got = sum(_delivered(node.receive(a.public_hex, _signed(ident(100 + i), 1, big), NOW)) for i in range(5))
    assert got == 2  # 50,000 bytes of burst: two 20 KB payloads, not a third


def test_origin_buckets_are_bounded_in_number() -> None:
    limiter = RateLimiter(SMALL)
    for i in range(100):
        limiter.origin(bytes([i]) * 32, NOW, 1)
    assert len(limiter._origins) == SMALL.max_origins


def test_token_bucket_refills_at_its_rate_and_caps_at_its_burst() -> None:
    bucket = TokenBucket(rate=2, burst=3, now=0)
    assert [bucket.take(0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5) and not bucket.take(0.5)
    assert not bucket.take(0.4)  # the clock going back refills nothing
    bucket_later = bucket.can(100, 3) and not bucket.can(100, 3.5)
    assert bucket_later


def test_without_limits_everything_is_relayed() -> None:
    me, spammer = ident(1), ident(2)
    node = Gossip(me, MemorySeqCounter(), frozenset({spammer.public_hex}), limits=None)
    assert sum(_delivered(node.receive(spammer.public_hex, _signed(ident(100 + i), 1), NOW)) for i in range(60)) == 60
