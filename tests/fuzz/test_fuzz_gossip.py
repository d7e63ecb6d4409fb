"""Grammar-aware fuzzing of ``Gossip.receive`` with malformed and forged envelopes.

tests/net/test_net_gossip.py checks flooding, one altered relay, expiry and the
seen cache.  Here every forged envelope starts from a genuine, signed one and
has one or more fields replaced (origin, seq, expiry, topic, payload, sig: by
noise, by a neighbour's or our own key, by a signature of the same bytes by
another key, by one of another message), or comes from decoding a mutated
wire encoding.  Whatever the receiver does, it must be one of:

* a cheap drop (``[]``: echo, expired, too far ahead, duplicate or stale),
  counted in exactly one statistic, seen cache unchanged;
* GossipError (bad origin signature), ``stats.invalid`` + 1, seen cache unchanged;
* Deliver/Forward only for an envelope whose signature really verifies;

and a forgery never "squats" an id: the genuine message is still delivered after it.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import msgspec
from hypothesis import event, given
from hypothesis import strategies as st

from peer.net.codec import MAX_U63, DecodeError, GossipEnvelope, decode_message, encode_message
from peer.net.gossip import (
    DEFAULT_MAX_SKEW,
    DEFAULT_MAX_TTL,
    Deliver,
    Forward,
    Gossip,
    GossipError,
    SeenCache,
    sign_envelope,
    signed_bytes,
    to_ms,
    verify_envelope,
)
from peer.net.identity import Identity
from peer.net.seqstore import MemorySeqCounter

from ._common import fuzz, mutate_bytes

NOW = 1_700_000_000.0
NOW_MS = to_ms(NOW)
HORIZON_MS = to_ms(DEFAULT_MAX_TTL + DEFAULT_MAX_SKEW)
ME = Identity.from_seed(b"r" * 32)
ORIGIN = Identity.from_seed(b"o" * 32)
OTHER = Identity.from_seed(b"p" * 32)
NEIGHBOURS = frozenset({ORIGIN.public_hex, OTHER.public_hex, "ab" * 32})

expiries = st.one_of(
    st.integers(NOW_MS + 1, NOW_MS + HORIZON_MS),
    st.sampled_from([0, NOW_MS - 1, NOW_MS, NOW_MS + 1, NOW_MS + HORIZON_MS, NOW_MS + HORIZON_MS + 1, MAX_U63]),
)
good_expiries = st.integers(NOW_MS + 1, NOW_MS + HORIZON_MS)
topics = st.text(min_size=1, max_size=64)
payloads = st.binary(max_size=200)
seqs = st.integers(1, 40) | st.sampled_from([MAX_U63])


def genuine(seq: int, expires_ms: int, topic: str, payload: bytes, who: Identity = ORIGIN) -> GossipEnvelope:
    return sign_envelope(who, seq, expires_ms, topic, payload)


def receiver(history: list[GossipEnvelope]) -> Gossip:
    """A node that has already delivered ``history`` (so the seen cache is not empty)."""
    node = Gossip(ME, MemorySeqCounter(), NEIGHBOURS, seen=SeenCache(capacity=4, max_origins=2))
    for env in history:
        node.receive(OTHER.public_hex, env, NOW)
    return node


def snapshot(node: Gossip) -> tuple[dict[str, Any], dict[str, int]]:
    return copy.deepcopy(node.seen.__dict__), dataclasses.asdict(node.stats)


@st.composite
def forged(draw: st.DrawFn, env: GossipEnvelope) -> GossipEnvelope:
    """``env`` with 1..3 fields replaced by plausible wrong values (always a change)."""
    replacements: dict[str, st.SearchStrategy[Any]] = {
        "origin": st.sampled_from([OTHER.public_key, ME.public_key, bytes(32), b"\xff" * 32])
        | st.binary(min_size=32, max_size=32),
        "seq": seqs | st.integers(1, MAX_U63),
        "expires_ms": expiries,
        "topic": topics,
        "payload": payloads,
        "sig": st.one_of(
            st.binary(min_size=64, max_size=64),
            st.just(OTHER.sign(signed_bytes(env.origin, env.seq, env.expires_ms, env.topic, env.payload))),
            st.builds(lambda s, e: ORIGIN.sign(signed_bytes(ORIGIN.public_key, s, e, "t", b"")), seqs, expiries),
            st.integers(0, 63).map(lambda i: env.sig[:i] + bytes([env.sig[i] ^ 1]) + env.sig[i + 1:]),
        ),
    }
    changed = draw(st.lists(st.sampled_from(sorted(replacements)), min_size=1, max_size=3, unique=True))
    values = {name: draw(replacements[name]) for name in changed}
    out = msgspec.structs.replace(env, **values)
    if out == env:  # the draw happened to reproduce a field: flip one payload bit instead
        out = msgspec.structs.replace(env, payload=env.payload + b"\x00")
    return out


def classify(node: Gossip, env: GossipEnvelope) -> str:
    """What the receiver must do with ``env``, by the rules in gossip.py, cheapest first."""
    if env.origin == ME.public_key:
        return "echoes"
    if env.expires_ms <= NOW_MS:
        return "expired"
    if env.expires_ms > NOW_MS + HORIZON_MS:
        return "too_far_ahead"
    if (env.origin, env.seq) in node.seen:
        return "stale" if env.seq <= node.seen.floor(env.origin) else "duplicates"
    return "delivered" if verify_envelope(env) else "invalid"


def check_receive(node: Gossip, env: GossipEnvelope, sender: str) -> str:
    expected = classify(node, env)
    seen_before, stats_before = snapshot(node)
    try:
        effects = node.receive(sender, env, NOW)
    except GossipError as exc:
        assert expected == "invalid", f"GossipError for a message that should be {expected}"
        assert exc.sender == sender and exc.reason
        outcome = "invalid"
    else:
        if expected == "delivered":
            assert effects and effects[0] == Deliver(env, sender)
            assert all(isinstance(e, Forward) and sender not in e.to for e in effects[1:])
            assert (env.origin, env.seq) in node.seen
        else:
            assert effects == [], f"{expected} message produced {effects}"
        outcome = expected
    seen_after, stats_after = snapshot(node)
    stats_before[outcome] += 1
    assert stats_after == stats_before, "exactly one statistic moves"
    if outcome != "delivered":
        assert seen_after == seen_before, "a refused envelope must not touch the seen cache"
    event(outcome)
    return outcome


@fuzz(400)
@given(seqs, good_expiries, topics, payloads, st.lists(st.tuples(seqs, good_expiries), max_size=10), st.data())
def test_forged_envelopes_are_refused_and_never_squat_the_real_id(
    seq: int, expires: int, topic: str, payload: bytes, earlier: list[tuple[int, int]], data: st.DataObject
) -> None:
    node = receiver([genuine(s, e, "old", b"") for s, e in earlier])
    real = genuine(seq, expires, topic, payload)
    fake = data.draw(forged(real))
    if check_receive(node, fake, OTHER.public_hex) == "delivered":
        return  # not a forgery after all: the origin really signed these fields
    # The forgery did not suppress the genuine message (go-libp2p-pubsub#406).
    outcome = check_receive(node, real, OTHER.public_hex)
    if seq not in {s for s, _ in earlier}:
        assert outcome in ("delivered", "stale"), outcome


@fuzz(300)
@given(seqs, good_expiries, topics, payloads, st.data())
def test_envelopes_decoded_from_mutated_wire_bytes(
    seq: int, expires: int, topic: str, payload: bytes, data: st.DataObject
) -> None:
    node = receiver([])
    real = genuine(seq, expires, topic, payload)
    raw = mutate_bytes(data.draw, encode_message(real))
    try:
        env = decode_message(raw)
    except DecodeError:
        return
    if not isinstance(env, GossipEnvelope):
        return
    outcome = check_receive(node, env, ORIGIN.public_hex)
    if outcome == "delivered":
        assert env == real, "only the genuine envelope verifies"


@fuzz(200)
@given(st.builds(GossipEnvelope, origin=st.binary(min_size=32, max_size=32), seq=st.integers(1, MAX_U63),
                 expires_ms=expiries, topic=topics, payload=payloads, sig=st.binary(min_size=64, max_size=64)),
       st.sampled_from(sorted(NEIGHBOURS) + ["", "not-a-neighbour"]))
def test_random_wire_valid_envelopes(env: GossipEnvelope, sender: str) -> None:
    """Every value inside the codec's limits: keys that are not curve points, seq 2**63-1, ..."""
    assert check_receive(receiver([]), env, sender) != "delivered"
