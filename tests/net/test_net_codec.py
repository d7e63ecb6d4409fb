"""Codec: round trips for every message kind, and fuzzing: bad bytes only ever raise DecodeError."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peer.net import codec
from peer.net.codec import (
    MAX_GOSSIP_PAYLOAD,
    MAX_TEXT,
    MAX_U63,
    Confirm,
    DecodeError,
    EncodeError,
    GossipEnvelope,
    Heartbeat,
    Hello,
    HelloAck,
    decode_handshake,
    decode_message,
    encode_handshake,
    encode_message,
)
from peer.sra import messages as sra

texts = st.text(max_size=MAX_TEXT)
u63 = st.integers(0, MAX_U63)
hashes = st.binary(min_size=32, max_size=32).map(bytes.hex)
keys = st.binary(min_size=32, max_size=32)
sigs = st.binary(min_size=64, max_size=64)
budgets = st.none() | st.floats(0, 1e9, exclude_max=True, allow_nan=False)

sra_messages = st.one_of(
    st.builds(sra.Invite, auction=texts, item=texts, seller=texts, genesis=hashes, budget=budgets),
    st.builds(sra.Bid, auction=texts, amount=u63),
    st.builds(sra.Decline, auction=texts),
    st.builds(sra.Open, auction=texts, hop=u63, reserve=u63, prev=hashes, budget=budgets),
    st.builds(sra.ContextRequest, auction=texts, hop=u63, host=texts, budget=budgets),
    st.builds(sra.ContextReply, auction=texts, hop=u63, amount=st.none() | u63),
    st.builds(sra.ContextBid, auction=texts, hop=u63, amount=u63),
    st.builds(sra.Award, auction=texts, hop=u63, price=u63, entry=hashes, seller_sig=st.just(b"") | sigs),
    st.builds(sra.Settled, auction=texts, winner=texts, hops=u63, price=u63),
)
envelopes = st.builds(
    GossipEnvelope,
    origin=keys, seq=st.integers(1, MAX_U63), expires_ms=u63,
    topic=st.text(min_size=1, max_size=codec.MAX_TOPIC), payload=st.binary(max_size=2048), sig=sigs,
)
link_messages = st.one_of(sra_messages, envelopes, st.builds(Heartbeat, n=u63))
handshake_messages = st.one_of(
    st.builds(Hello, v=st.integers(0, 0xFFFF), pk=keys, to=keys, nonce=keys),
    st.builds(HelloAck, v=st.integers(0, 0xFFFF), pk=keys, nonce=keys, sig=sigs),
    st.builds(Confirm, sig=sigs),
)


def _only_decode_error(fn, data: object) -> None:
    try:
        fn(data)
    except DecodeError as exc:
        assert exc.reason
    # anything else propagates and fails the test


@given(link_messages)
def test_link_messages_round_trip(msg: codec.LinkMessage) -> None:
    data = encode_message(msg)
    assert isinstance(data, bytes)
    assert decode_message(data) == msg


@given(handshake_messages)
def test_handshake_messages_round_trip(msg: codec.HandshakeMessage) -> None:
    assert decode_handshake(encode_handshake(msg)) == msg


def test_sra_messages_come_back_as_the_sra_dataclasses() -> None:
    msg = sra.ContextReply(auction="a1", hop=2, amount=None)
    back = decode_message(encode_message(msg))
    assert type(back) is sra.ContextReply and back == msg


def test_every_sra_message_kind_and_field_has_a_wire_form() -> None:
    """Fails when peer.sra.messages changes without this codec following."""
    # STAGE_OF names base classes; the verifiable-coin subclasses have wire forms of their own.
    assert set(codec._SRA_WIRE) == set(sra.STAGE_OF) | {sra.CoinBid, sra.CoinDecline}
    for dc, wire in codec._SRA_WIRE.items():
        assert tuple(f.name for f in dataclasses.fields(dc)) == wire.__struct_fields__, dc.__name__
        # A tuple of names travels comma-joined (codec._NAME_LISTS): its empty default is "".
        listed = codec._NAME_LISTS.get(wire)
        dc_defaults = tuple("" if f.name == listed and f.default == () else f.default
                            for f in dataclasses.fields(dc) if f.default is not dataclasses.MISSING)
        # (kw_only wire structs list NODEFAULT for required fields that follow defaulted ones)
        wire_defaults = tuple(d for d in wire.__struct_defaults__ if d is not msgspec.NODEFAULT)
        assert dc_defaults == wire_defaults, dc.__name__


def test_verifiable_coin_messages_round_trip_as_flat_maps() -> None:
    keys = tuple(f"{i:064x}" for i in range(3))
    for msg in (sra.CoinBid(auction="a", amount=7, coin=b"c" * 64, inviters=keys),
                sra.CoinBid(auction="a", amount=7, coin=b"c" * 64, inviters=()),
                sra.CoinDecline(auction="a", coin=b"c" * 64, parent=keys[0]),
                sra.CoinDecline(auction="a", coin=b"c" * 64, parent="")):
        assert decode_message(encode_message(msg)) == msg
    with pytest.raises(EncodeError):
        encode_message(sra.CoinBid(auction="a", amount=7, coin=b"c" * 64, inviters=("x,y",)))


def test_tie_coins_on_offers_and_awards_round_trip() -> None:
    keys = tuple(f"{i:064x}" for i in range(3))
    h = "ab" * 32
    for msg in (sra.Offer(auction="a", hop=2, price=5, entry=h, budget=1.0, tie_coin=b"c" * 64, tied=keys),
                sra.Offer(auction="a", hop=2, price=5, entry=h),
                sra.Award(auction="a", hop=2, price=5, entry=h, tie_coin=b"c" * 64, tied=keys[:1]),
                sra.Award(auction="a", hop=2, price=5, entry=h)):
        assert decode_message(encode_message(msg)) == msg
    with pytest.raises(EncodeError):
        encode_message(sra.Offer(auction="a", hop=2, price=5, entry=h, tie_coin=b"c" * 64, tied=("x,y",)))
    # A peer that predates tie coins sends Offers without them: they still decode.
    old = msgspec.msgpack.encode({"t": "offer", "auction": "a", "hop": 2, "price": 5, "entry": h})
    assert decode_message(old) == sra.Offer(auction="a", hop=2, price=5, entry=h)


def test_old_peers_without_optional_fields_still_decode() -> None:
    data = msgspec.msgpack.encode({"t": "invite", "auction": "a", "item": "i", "seller": "s", "genesis": "ab" * 32})
    assert decode_message(data) == sra.Invite(auction="a", item="i", seller="s", genesis="ab" * 32)


@settings(max_examples=400)
@given(st.binary(max_size=512))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    _only_decode_error(decode_message, data)
    _only_decode_error(decode_handshake, data)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(link_messages, st.data())
def test_truncated_and_mutated_frames_raise_only_decode_error(msg: codec.LinkMessage, data: st.DataObject) -> None:
    encoded = encode_message(msg)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(DecodeError):
        decode_message(encoded[:cut])
    pos = data.draw(st.integers(0, len(encoded) - 1))
    flipped = bytearray(encoded)
    flipped[pos] ^= data.draw(st.integers(1, 255))
    _only_decode_error(decode_message, bytes(flipped))


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(json_like)
def test_arbitrary_msgpack_values_raise_only_decode_error(value: object) -> None:
    data = msgspec.msgpack.encode(value)
    _only_decode_error(decode_message, data)
    _only_decode_error(decode_handshake, data)


@given(
    st.sampled_from(["bid", "ctx_reply", "award", "gossip", "hello"]),
    st.dictionaries(st.sampled_from(["auction", "amount", "hop", "price", "entry", "pk", "x"]), json_like, max_size=5),
)
def test_wrong_field_types_raise_only_decode_error(tag: str, fields: dict[str, object]) -> None:
    data = msgspec.msgpack.encode({"t": tag, **fields})
    _only_decode_error(decode_message, data)
    _only_decode_error(decode_handshake, data)


def _raw(**fields: object) -> bytes:
    return msgspec.msgpack.encode(fields)


@pytest.mark.parametrize(
    "data",
    [
        _raw(t="bid", auction="a", amount=-1),  # negative money
        _raw(t="bid", auction="a", amount=True),  # a bool is not an int on our wire
        _raw(t="bid", auction="a", amount=1.5),
        _raw(t="bid", auction="a", amount="5"),
        _raw(t="bid", auction="a" * (MAX_TEXT + 1), amount=1),  # string too long
        _raw(t="bid", auction="a", amount=1, extra=1),  # unknown field
        _raw(t="bid", auction="a"),  # missing field
        _raw(t="nope", auction="a"),  # unknown tag
        _raw(auction="a", amount=1),  # no tag
        _raw(t="award", auction="a", hop=1, price=1, entry="ABC"),  # not a sha256 hex
        _raw(t="hb", n=2**64 - 1),  # beyond our 63-bit range
        _raw(t="ctx_req", auction="a", hop=1, host="h", budget=-1.0),  # negative budget
        _raw(t="ctx_req", auction="a", hop=1, host="h", budget=float("nan")),
        _raw(t="ctx_req", auction="a", hop=1, host="h", budget=float("inf")),
        _raw(t="award", auction="a", hop=1, price=1, entry="ab" * 32, seller_sig=b"s" * 65),
        _raw(t="gossip", origin=b"x" * 31, seq=1, expires_ms=1, topic="t", payload=b"", sig=b"s" * 64),
        _raw(t="gossip", origin=b"x" * 32, seq=0, expires_ms=1, topic="t", payload=b"", sig=b"s" * 64),
        _raw(t="gossip", origin=b"x" * 32, seq=1, expires_ms=1, topic="", payload=b"", sig=b"s" * 64),
        _raw(t="gossip", origin=b"x" * 32, seq=1, expires_ms=1, topic="t",
             payload=b"p" * (MAX_GOSSIP_PAYLOAD + 1), sig=b"s" * 64),
        _raw(t="hello", v=1, pk=b"k" * 32, to=b"k" * 32, nonce=b"n" * 32),  # a handshake message is not a link message
        b"",
        b"\xc1",  # never-used msgpack byte
        b"\x92\x01",  # truncated array
        b"\x91" * 10_000 + b"\x01",  # deep nesting
    ],
)
def test_specific_bad_inputs_are_decode_errors(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(data)


@pytest.mark.parametrize("data", ["text", None, 5, ["list"], object()])
def test_non_bytes_input_is_a_decode_error(data: object) -> None:
    with pytest.raises(DecodeError, match="expected bytes"):
        decode_message(data)
    with pytest.raises(DecodeError, match="expected bytes"):
        decode_handshake(data)


@pytest.mark.parametrize(
    "msg",
    [
        sra.Bid(auction="a", amount=-1),
        sra.Bid(auction="a", amount=2**70),
        sra.Bid(auction="a" * 200, amount=1),
        sra.Award(auction="a", hop=1, price=1, entry="not-a-hash"),
        sra.Bid(auction="a", amount=True),
    ],
)
def test_encoding_refuses_what_peers_would_reject(msg: codec.LinkMessage) -> None:
    with pytest.raises(EncodeError):
        encode_message(msg)


def test_encoding_refuses_non_messages() -> None:
    with pytest.raises(EncodeError):
        encode_message("hello")  # type: ignore[arg-type]


@pytest.mark.parametrize("depth", [2, 50, 100_000])
@pytest.mark.parametrize("decode", [codec.decode_message, codec.decode_handshake])
def test_nesting_before_the_tag_is_refused_by_the_shape_bound(depth: int, decode: object) -> None:
    """msgspec skips map entries before the tag recursively; the guard refuses any nesting first.

    Before the guard, 100,000 levels raised RecursionError inside msgspec (caught late, as
    "undecodable"), and how deep was too deep depended on the caller's own stack.
    """
    hb = msgspec.msgpack.encode({"t": "hb", "n": 1})
    raw = b"\x83" + msgspec.msgpack.encode("x") + b"\x91" * depth + b"\xc0" + hb[1:]
    with pytest.raises(DecodeError, match="nested deeper than 1 levels"):
        decode(raw)  # type: ignore[operator]


def test_a_flat_message_with_too_many_values_is_refused_before_msgspec() -> None:
    doc = {"t": "hb", "n": 1, **{f"k{i}": i for i in range(40)}}
    with pytest.raises(DecodeError, match="more than 64 values"):
        codec.decode_message(msgspec.msgpack.encode(doc))
