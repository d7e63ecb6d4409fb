"""Grammar-aware fuzzing of the ledger codec (``decode_payload``, ``decode_record``).

tests/ledger/test_ledger_codec.py throws random bytes and byte-mutated valid
encodings at both decoders.  Here the inputs are well-formed msgpack arrays in
the codec's own grammar (tagged, array-like announcements, hops, fraud proofs,
summaries and the three payload wrappers) whose fields are valid, one step out
of range (an id of 257 UTF-8 bytes in 129 characters, hop 0, hop 2**32, a 31-byte
key, ...), of the wrong type, missing or extra.  An independent oracle, a
plain-Python reading of the limits in codec.py and entries.py, says whether the
input must be accepted, and an accepted value must round-trip through the encoder.
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import event, given
from hypothesis import strategies as st

from peer.ledger.codec import (
    DecodeError,
    Entries,
    FraudProofs,
    Summaries,
    decode_payload,
    decode_record,
    encode_payload,
    encode_record,
)
from peer.ledger.entries import MAX_HOP, MAX_PRICE, MAX_TIME_MS, Announcement, FraudProof, SignedHop

from ._common import fuzz, msgpack_values

KEY_A, KEY_B = b"\x0a" * 32, b"\x0b" * 32

# ----------------------------------------------------------------- the oracle


def _int(low: int, high: int) -> Any:
    return lambda v: type(v) is int and low <= v <= high


def _utf8(low: int, high: int) -> Any:
    return lambda v: type(v) is str and low <= len(v.encode()) <= high


def _blob(size: int) -> Any:
    return lambda v: type(v) is bytes and len(v) == size


ANN = [("auction", _utf8(1, 256)), ("item", _utf8(0, 1024)), ("seller", _blob(32)), ("mechanism", _utf8(1, 256)),
       ("created_at_ms", _int(0, MAX_TIME_MS)), ("signature", _blob(64))]
HOP = [("auction", _utf8(1, 256)), ("hop", _int(1, MAX_HOP)), ("seller", _blob(32)), ("buyer", _blob(32)),
       ("price", _int(0, MAX_PRICE)), ("prev", _blob(32)), ("seller_sig", _blob(64)), ("buyer_sig", _blob(64))]
SUMMARY = [("auction", _utf8(1, 256)), ("length", _int(1, MAX_HOP + 1)), ("head", _blob(32))]


def entry_ok(v: Any) -> bool:
    if type(v) is not list or not v:
        return False
    tag, fields = v[0], v[1:]
    spec = {"ann": ANN, "hop": HOP}.get(tag) if type(tag) is str else None
    if spec is None or len(fields) != len(spec):  # forbid_unknown_fields: no extra elements
        return False
    if not all(check(x) for (_, check), x in zip(spec, fields, strict=True)):
        return False
    return tag == "ann" or fields[2] != fields[3]  # a seller never buys from itself


def proof_ok(v: Any) -> bool:
    return type(v) is list and len(v) == 3 and v[0] == "fraud" and entry_ok(v[1]) and entry_ok(v[2])


def summary_ok(v: Any) -> bool:
    return (type(v) is list and len(v) == len(SUMMARY)
            and all(check(x) for (_, check), x in zip(SUMMARY, v, strict=True)))


def record_verdict(v: Any) -> bool:
    return entry_ok(v) or proof_ok(v)


def payload_verdict(v: Any) -> bool | None:
    """True/False, or None where either answer is acceptable."""
    if type(v) is not list or len(v) < 2:
        return False
    item_ok = {"ledger-summaries": summary_ok, "ledger-entries": entry_ok, "ledger-fraud": proof_ok}.get(v[0]) \
        if type(v[0]) is str else None
    if item_ok is None or type(v[1]) is not list or len(v[1]) > 4096:
        return False
    if not all(item_ok(x) for x in v[1]):
        return False
    # The wrappers do not forbid unknown fields: msgspec ignores extra trailing
    # elements.  Lenient, harmless (nothing reads them); either answer is fine.
    return True if len(v) == 2 else None


# ------------------------------------------------------------- the generators

VALID: dict[str, st.SearchStrategy[Any]] = {
    "auction": st.sampled_from(["a1", "é" * 128, "x" * 256]) | st.text(min_size=1, max_size=12),
    "mechanism": st.sampled_from(["sra/v1", "m" * 256]) | st.text(min_size=1, max_size=8),
    "item": st.sampled_from(["", "lamp", "é" * 512]) | st.text(max_size=12),
    "seller": st.sampled_from([KEY_A, KEY_B]) | st.binary(min_size=32, max_size=32),
    "buyer": st.sampled_from([KEY_B, KEY_A]) | st.binary(min_size=32, max_size=32),
    "prev": st.binary(min_size=32, max_size=32),
    "head": st.binary(min_size=32, max_size=32),
    "created_at_ms": st.sampled_from([0, 1_700_000_000_000, MAX_TIME_MS]) | st.integers(0, MAX_TIME_MS),
    "hop": st.sampled_from([1, 2, MAX_HOP]) | st.integers(1, MAX_HOP),
    "length": st.sampled_from([1, 2, MAX_HOP + 1]) | st.integers(1, MAX_HOP + 1),
    "price": st.sampled_from([0, MAX_PRICE]) | st.integers(0, MAX_PRICE),
    "signature": st.binary(min_size=64, max_size=64),
    "seller_sig": st.binary(min_size=64, max_size=64),
    "buyer_sig": st.binary(min_size=64, max_size=64),
}
COMMON_WRONG = [None, True, 1.0, [], {}]
NEAR: dict[str, list[Any]] = {
    "auction": ["", "é" * 129, "x" * 257, b"a1", 1, *COMMON_WRONG],
    "mechanism": ["", "é" * 129, b"sra/v1", *COMMON_WRONG],
    "item": ["é" * 513, "x" * 1025, b"lamp", *COMMON_WRONG],
    "seller": [b"\x0a" * 31, b"\x0a" * 33, "0a" * 32, *COMMON_WRONG],
    "buyer": [b"\x0b" * 31, b"\x0b" * 33, "0b" * 32, *COMMON_WRONG],
    "prev": [b"", b"\x00" * 33, "00" * 32, *COMMON_WRONG],
    "head": [b"", b"\x00" * 31, "00" * 32, *COMMON_WRONG],
    "created_at_ms": [-1, MAX_TIME_MS + 1, 2**64 - 1, 1.5, "0", *COMMON_WRONG],
    "hop": [0, -1, MAX_HOP + 1, 2**63, 1.0, "1", *COMMON_WRONG],
    "length": [0, -1, MAX_HOP + 2, 1.0, *COMMON_WRONG],
    "price": [-1, MAX_PRICE + 1, 2**64 - 1, 0.5, "0", *COMMON_WRONG],
    "signature": [b"\x00" * 63, b"\x00" * 65, b"", *COMMON_WRONG],
    "seller_sig": [b"\x00" * 63, b"\x00" * 65, *COMMON_WRONG],
    "buyer_sig": [b"\x00" * 63, b"", *COMMON_WRONG],
}


@st.composite
def fields(draw: st.DrawFn, spec: list[tuple[str, Any]], strict: bool = False) -> list[Any]:
    """Values for ``spec``: all valid, one corrupted, or several; maybe one too few or too many."""
    names = [name for name, _ in spec]
    plan = "clean" if strict else draw(st.sampled_from(["one", "clean", "one", "clean", "many", "shape"]))
    bad = set()
    if plan == "one":
        bad = {draw(st.sampled_from(names))}
    elif plan == "many":
        bad = set(draw(st.lists(st.sampled_from(names), min_size=2, unique=True)))
    out = []
    for name in names:
        if name not in bad:
            out.append(draw(VALID[name]))
        elif draw(st.integers(0, 3)) == 0:
            out.append(draw(msgpack_values))
        else:
            out.append(draw(st.sampled_from(NEAR[name])))
    if strict and spec is HOP and out[2] == out[3]:
        out[3] = KEY_B if out[2] != KEY_B else KEY_A  # a seller never buys from itself
    if plan == "shape":
        if draw(st.booleans()) and out:
            out.pop(draw(st.integers(0, len(out) - 1)))
        else:
            out.insert(draw(st.integers(0, len(out))), draw(msgpack_values))
    return out


def entries(strict: bool = False) -> st.SearchStrategy[list[Any]]:
    tags = ["ann", "hop"] if strict else ["ann", "hop"] * 3 + ["fraud", "Hop", ""]
    tag = st.sampled_from(tags)
    return tag.flatmap(lambda t: fields(ANN if t == "ann" else HOP, strict).map(lambda f: [t, *f]))


def proofs(strict: bool = False) -> st.SearchStrategy[list[Any]]:
    return st.tuples(entries(strict), entries(strict)).map(lambda p: ["fraud", *p])


def payloads(strict: bool = False) -> st.SearchStrategy[list[Any]]:
    def mostly_clean(strategy: Any) -> st.SearchStrategy[Any]:
        return strategy(True) if strict else st.one_of(strategy(True), strategy(False), strategy(True))

    kinds = {
        "ledger-summaries": mostly_clean(lambda s: fields(SUMMARY, s)),
        "ledger-entries": mostly_clean(entries),
        "ledger-fraud": mostly_clean(proofs),
    }
    wrapper = st.sampled_from(sorted(kinds)).flatmap(
        lambda k: st.lists(kinds[k], max_size=3).map(lambda items: [k, items]))
    if strict:
        return wrapper
    return st.one_of(
        wrapper,
        wrapper.map(lambda w: [*w, "trailing"]),
        st.tuples(st.sampled_from(["ledger-entries", "ledger-nonsense", "fraud", "ann", 0]),
                  st.lists(st.one_of(entries(), proofs(), fields(SUMMARY)), max_size=2)).map(list),
        st.lists(msgpack_values, max_size=3),
    )


def _round_trip(value: Any) -> None:
    if isinstance(value, (Announcement, SignedHop, FraudProof)):
        assert decode_record(encode_record(value)) == value
    else:
        assert decode_payload(encode_payload(value)) == value


def check(decoder: Any, verdict: bool | None, doc: Any) -> None:
    raw = msgspec.msgpack.encode(doc)
    try:
        value = decoder(raw)
    except DecodeError as exc:
        assert str(exc), "a rejection must say why"
        assert verdict is not True, f"valid input refused: {exc}"
        event("refused")
        return
    assert verdict is not False, f"invalid input accepted as {value!r}"
    event("accepted")
    _round_trip(value)


@fuzz(300)
@given(st.one_of(entries(), entries(True), proofs(), payloads()))
def test_decode_record_accepts_exactly_the_record_grammar(doc: Any) -> None:
    check(decode_record, record_verdict(doc), doc)


@fuzz(400)
@given(st.one_of(payloads(), entries(), proofs()))
def test_decode_payload_accepts_exactly_the_payload_grammar(doc: Any) -> None:
    check(decode_payload, payload_verdict(doc), doc)


@fuzz(100)
@given(payloads(strict=True))
def test_well_formed_payloads_decode_to_domain_objects(doc: list[Any]) -> None:
    value = decode_payload(msgspec.msgpack.encode(doc))
    items = {Summaries: "summaries", Entries: "entries", FraudProofs: "proofs"}[type(value)]
    assert len(getattr(value, items)) == len(doc[1])
    _round_trip(value)
