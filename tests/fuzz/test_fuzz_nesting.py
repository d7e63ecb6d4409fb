"""Structured nesting and trailing elements, thrown at every decoder of untrusted bytes.

msgspec recurses (in C, bounded only by Python's recursion limit) while it
decodes or *skips* a value: an unknown trailing element of an array-like struct,
or a map entry placed before the tag.  A few kilobytes of ``0x91`` there used to
raise ``RecursionError`` out of ``decode_payload`` and the QPQ decoder
(issue #15.1, #17.4).  Each test starts from a genuine encoding of a real
message and grafts onto it, at the byte level (msgspec itself cannot encode a
value that deep), one of:

* a trailing element (array-like structs), shallow or nested 1..20,000 deep;
* an extra map entry before or after the tag (map structs), likewise;
* a field's value replaced by a deeply nested array or map;

and asserts each decoder raises its documented error and nothing else, and
that trailing elements are refused even when shallow (a peer must not be able
to smuggle data past the validator).  ``check_shape`` itself is checked against
msgspec on every value msgspec can encode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from peer.ledger.codec import (
    BucketDigest,
    DecodeError,
    Digests,
    Entries,
    FraudProofs,
    Summaries,
    Summary,
    decode_payload,
    decode_record,
    encode_payload,
    encode_record,
)
from peer.ledger.entries import FraudProof, SignedHop
from peer.net import codec as net
from peer.net.codec import GossipEnvelope, Heartbeat, Hello
from peer.net.msgpack_limits import ShapeError, check_shape
from peer.qpq import wire as qpq
from peer.qpq.decide import Level
from peer.qpq.messages import Commit, Reveal
from peer.sra.messages import Invite

from ..ledger._helpers import KEY_OF, announce, make_chain, sign_hop
from ._common import fuzz, msgpack_values

# ------------------------------------------------------------ genuine bytes

CHAIN = make_chain("a1", hops=2)
_hop = CHAIN.hops[0]


def _fork_proof() -> FraudProof:
    body = dataclasses.replace(_hop.body, price=_hop.body.price + 1)
    second = SignedHop(body=body, seller_sig=sign_hop(KEY_OF[body.seller], body),
                       buyer_sig=sign_hop(KEY_OF[body.buyer], body))
    return FraudProof(_hop, second)


LEDGER_PAYLOADS = [
    encode_payload(Entries(CHAIN.entries)),
    encode_payload(Summaries((Summary("a1", 3, CHAIN.head.digest),), (5,))),
    encode_payload(FraudProofs((_fork_proof(),))),
    encode_payload(Digests((BucketDigest(3, 2, b"\x01" * 32),))),
]
LEDGER_RECORDS = [encode_record(announce()), encode_record(_hop), encode_record(_fork_proof())]
NET_MESSAGES = [
    net.encode_message(Heartbeat(n=1)),
    net.encode_message(GossipEnvelope(origin=b"o" * 32, seq=1, expires_ms=5, topic="t", payload=b"p", sig=b"s" * 64)),
    net.encode_message(Invite(auction="a1", item="lamp", seller="s", genesis="ab" * 32)),
]
HANDSHAKES = [net.encode_handshake(Hello(v=1, pk=b"a" * 32, to=b"b" * 32, nonce=b"n" * 32))]
QPQ_PAYLOADS = [
    qpq.encode(Commit(stream="s", round=1, level=Level.CLUSTER, digest=b"d" * 32, support=0)),
    qpq.encode(Reveal(stream="s", round=1, level=Level.WINNER, value=5, nonce=b"n" * 16)),
    qpq.encode(qpq.KickoffWire(stream="s", start_ms=1)),
]


def _ledger_payload(b: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_payload(b)


def _ledger_record(b: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_record(b)


def _net_message(b: bytes) -> None:
    with pytest.raises(net.DecodeError):
        net.decode_message(b)


def _handshake(b: bytes) -> None:
    with pytest.raises(net.DecodeError):
        net.decode_handshake(b)


def _qpq(b: bytes) -> None:
    with pytest.raises(qpq.QpqDecodeError):
        qpq.decode(b)


#: (name, genuine encodings, assertion that bytes are refused with the documented error, decoder)
DECODERS: list[tuple[str, list[bytes], Callable[[bytes], None], Callable[[bytes], Any]]] = [
    ("ledger payload", LEDGER_PAYLOADS, _ledger_payload, decode_payload),
    ("ledger record", LEDGER_RECORDS, _ledger_record, decode_record),
    ("link message", NET_MESSAGES, _net_message, net.decode_message),
    ("handshake", HANDSHAKES, _handshake, net.decode_handshake),
    ("qpq payload", QPQ_PAYLOADS, _qpq, qpq.decode),
]
IDS = [d[0] for d in DECODERS]

# ------------------------------------------------------- byte-level grafting


def _header(raw: bytes) -> tuple[str, int, int]:
    """(kind, count, header length) of the container at the start of ``raw``."""
    b = raw[0]
    if 0x90 <= b <= 0x9F:
        return "array", b & 0x0F, 1
    if 0x80 <= b <= 0x8F:
        return "map", b & 0x0F, 1
    if b == 0xDC:
        return "array", int.from_bytes(raw[1:3], "big"), 3
    if b == 0xDE:
        return "map", int.from_bytes(raw[1:3], "big"), 3
    raise AssertionError(f"not a container: {raw[:1]!r}")


def _container(kind: str, count: int) -> bytes:
    if count <= 15:
        return bytes([(0x90 if kind == "array" else 0x80) | count])
    return bytes([0xDC if kind == "array" else 0xDE]) + count.to_bytes(2, "big")


def deep(depth: int, kind: str = "array", leaf: bytes = b"\xc0") -> bytes:
    """A value nested ``depth`` containers deep, built without recursion."""
    if kind == "array":
        return b"\x91" * depth + leaf
    return b"\x81\xa1k" * depth + leaf


def graft(raw: bytes, extra: bytes, *, first: bool) -> bytes:
    """``raw`` with one more element (array) or entry ``"zz": extra`` (map), first or last."""
    kind, count, size = _header(raw)
    body = raw[size:]
    if kind == "map":
        extra = msgspec.msgpack.encode("zz") + extra
    return _container(kind, count + 1) + (extra + body if first else body + extra)


def replace_field(raw: bytes, index: int, value: bytes) -> bytes:
    """``raw`` with its ``index``-th element (array) or value (map) replaced by ``value``."""
    doc = msgspec.msgpack.decode(raw)
    placeholder = "\x00placeholder\x00"
    if isinstance(doc, list):
        doc[index % len(doc)] = placeholder
    else:
        key = sorted(doc)[index % len(doc)]
        doc[key] = placeholder
    return msgspec.msgpack.encode(doc).replace(msgspec.msgpack.encode(placeholder), value)


depths = st.sampled_from([1, 2, 3, 5, 10, 100, 1_000, 5_000, 20_000]) | st.integers(1, 3_000)
kinds = st.sampled_from(["array", "map"])


def _any_other_error_fails(decoder: Callable[[bytes], Any], documented: type[Exception], raw: bytes) -> None:
    try:
        decoder(raw)
    except documented:
        pass
    # any other exception propagates and fails the test


DOCUMENTED = {"ledger payload": DecodeError, "ledger record": DecodeError, "link message": net.DecodeError,
              "handshake": net.DecodeError, "qpq payload": qpq.QpqDecodeError}

# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("name, genuine, refused, decoder", DECODERS, ids=IDS)
def test_the_genuine_encodings_decode(name: str, genuine: list[bytes], refused: Any, decoder: Any) -> None:
    for raw in genuine:
        decoder(raw)  # the grafts below start from bytes that are accepted


@pytest.mark.parametrize("name, genuine, refused, decoder", DECODERS, ids=IDS)
@fuzz(60)
@given(data=st.data(), depth=depths, kind=kinds, first=st.booleans())
def test_deep_nesting_grafted_anywhere_gives_only_the_documented_error(
    name: str, genuine: list[bytes], refused: Any, decoder: Any, data: st.DataObject, depth: int, kind: str,
    first: bool,
) -> None:
    raw = data.draw(st.sampled_from(genuine))
    # An extra element or entry (trailing, or before the tag) is refused at any depth.
    refused(graft(raw, deep(depth, kind), first=first))
    # A field's value replaced by nesting: refused unless the field takes it (none takes depth > 4).
    if depth > 4:
        refused(replace_field(raw, data.draw(st.integers(0, 20)), deep(depth, kind)))


@pytest.mark.parametrize("name, genuine, refused, decoder", DECODERS, ids=IDS)
@fuzz(60)
@given(data=st.data(), extra=msgpack_values, first=st.booleans())
def test_shallow_extra_elements_are_refused(
    name: str, genuine: list[bytes], refused: Any, decoder: Any, data: st.DataObject, extra: Any, first: bool,
) -> None:
    raw = data.draw(st.sampled_from(genuine))
    refused(graft(raw, msgspec.msgpack.encode(extra), first=first))


@pytest.mark.parametrize("name, genuine, refused, decoder", DECODERS, ids=IDS)
@fuzz(40)
@given(data=st.data(), depth=depths, kind=kinds)
def test_nesting_inside_a_nested_struct_is_refused(
    name: str, genuine: list[bytes], refused: Any, decoder: Any, data: st.DataObject, depth: int, kind: str,
) -> None:
    """One level down: a trailing element inside an entry of a batch, or in a proof's entry."""
    raw = data.draw(st.sampled_from(genuine))
    doc = msgspec.msgpack.decode(raw)
    if not isinstance(doc, list) or not any(isinstance(v, list) and v for v in doc):
        return
    i = next(i for i, v in enumerate(doc) if isinstance(v, list) and v)
    inner = doc[i][0] if isinstance(doc[i][0], list) else doc[i]
    marker = "\x00inner\x00"
    grafted = graft(msgspec.msgpack.encode(inner), deep(depth, kind), first=False)
    if inner is doc[i]:
        doc[i] = marker
    else:
        doc[i][0] = marker
    refused(msgspec.msgpack.encode(doc).replace(msgspec.msgpack.encode(marker), grafted))


@pytest.mark.parametrize("name, genuine, refused, decoder", DECODERS, ids=IDS)
@fuzz(80)
@given(noise=st.binary(max_size=600), depth=st.integers(0, 3_000), lead=st.sampled_from([b"\x91", b"\x81\xa1k",
                                                                                         b"\xdc\x00\x02", b"\x92\xc0"]))
def test_arbitrary_nested_prefixes_give_only_the_documented_error(
    name: str, genuine: list[bytes], refused: Any, decoder: Any, noise: bytes, depth: int, lead: bytes,
) -> None:
    _any_other_error_fails(decoder, DOCUMENTED[name], lead * depth + noise)


def test_regression_trailing_deep_array_in_a_ledger_payload() -> None:
    """The exact poison of #15.1: a valid batch with a trailing 100,000-deep array."""
    raw = graft(LEDGER_PAYLOADS[0], deep(100_000), first=False)
    with pytest.raises(DecodeError):
        decode_payload(raw)


def test_regression_deep_value_before_the_qpq_tag() -> None:
    """The exact poison of #17.4: nesting in a map entry that comes before ``type``."""
    raw = graft(QPQ_PAYLOADS[0], deep(100_000), first=True)
    with pytest.raises(qpq.QpqDecodeError):
        qpq.decode(raw)


# ------------------------------------------------------ check_shape itself


def _depth(value: Any) -> int:
    stack, best = [(value, 0)], 0
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            best = max(best, d + 1)
            stack.extend((c, d + 1) for c in (v if isinstance(v, list) else [*v.keys(), *v.values()]))
    return best


def _count(value: Any) -> int:
    if isinstance(value, list):
        return 1 + sum(_count(v) for v in value)
    if isinstance(value, dict):
        return 1 + sum(_count(k) + _count(v) for k, v in value.items())
    return 1


@fuzz(300)
@given(value=msgpack_values)
def test_check_shape_measures_depth_and_count_exactly(value: Any) -> None:
    raw = msgspec.msgpack.encode(value)
    d, n = _depth(value), _count(value)
    check_shape(raw, max_depth=d, max_items=n)
    with pytest.raises(ShapeError):
        check_shape(raw, max_depth=d - 1, max_items=n) if d else check_shape(raw, max_depth=9, max_items=n - 1)
    with pytest.raises(ShapeError):
        check_shape(raw + b"\xc0", max_depth=d, max_items=n + 1)  # trailing bytes
    if len(raw) > 1:
        with pytest.raises(ShapeError):
            check_shape(raw[:-1], max_depth=d, max_items=n)  # every value's last byte matters


@fuzz(300)
@given(raw=st.binary(max_size=200))
def test_check_shape_raises_only_shape_error(raw: bytes) -> None:
    try:
        check_shape(raw, max_depth=3, max_items=50)
    except ShapeError:
        return
    try:  # what it accepts is framed msgpack: msgspec may still refuse its contents (UTF-8), nothing more
        msgspec.msgpack.decode(raw)
    except msgspec.DecodeError as exc:
        assert "UTF-8" in str(exc) or "ext" in str(exc).lower(), exc


def test_check_shape_refuses_claims_larger_than_the_bytes() -> None:
    with pytest.raises(ShapeError, match="container"):
        check_shape(b"\xdd\xff\xff\xff\xff" + b"\xc0" * 10, max_depth=3, max_items=10**9)
    with pytest.raises(ShapeError):
        check_shape(b"\xc6\xff\xff\xff\xff", max_depth=3, max_items=10)


@fuzz(100)
@given(stream=st.text(max_size=12), rnd=st.integers(0, 2**40), level=st.sampled_from(list(Level)),
       blob=st.binary(max_size=40), value=st.integers(0, 2**32 - 1), support=st.integers(0, 100))
def test_qpq_wire_speaks_the_node_shells_format(stream: str, rnd: int, level: Level, blob: bytes, value: int,
                                                support: int) -> None:
    """peer.qpq.wire is the shell's decoder moved out: same bytes both ways, so nodes with either interoperate."""
    qpq_shell = pytest.importorskip("peer.node.qpq_shell")  # owned by the node shell, which may move it
    if not all(hasattr(qpq_shell, n) for n in ("encode", "decode", "KickoffWire")):
        pytest.skip("the node shell no longer has its own QPQ codec")

    msgs = [Commit(stream=stream, round=rnd, level=level, digest=blob, support=support),
            Reveal(stream=stream, round=rnd, level=level, value=value, nonce=blob)]
    for msg in msgs:
        raw = qpq.encode(msg)
        assert raw == qpq_shell.encode(msg)
        assert qpq.decode(raw) == qpq_shell.decode(raw) == msg
    kick = qpq.encode(qpq.KickoffWire(stream=stream, start_ms=rnd))
    assert kick == qpq_shell.encode(qpq_shell.KickoffWire(stream=stream, start_ms=rnd))
