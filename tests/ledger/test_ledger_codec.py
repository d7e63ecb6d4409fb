"""Wire and record encodings: round trips, and decoders that only ever raise DecodeError."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peer.ledger.codec import (
    MAX_PAYLOAD_BYTES,
    DecodeError,
    Entries,
    FraudProofs,
    Summaries,
    Summary,
    decode_payload,
    decode_record,
    encode_payload,
    encode_record,
)
from peer.ledger.entries import FraudProof
from peer.ledger.replicate import summarize

from ._helpers import PK, countersign, make_chain

CHAIN = make_chain(hops=3)
TWIN = countersign(dataclasses.replace(CHAIN.hops[1].body, buyer=PK[8]))
PROOF = FraudProof(CHAIN.hops[1], TWIN)
SAMPLES = [
    encode_payload(Entries(CHAIN.entries)),
    encode_payload(Summaries((summarize(CHAIN),))),
    encode_payload(FraudProofs((PROOF,))),
]
RECORDS = [encode_record(e) for e in CHAIN.entries] + [encode_record(PROOF)]


def test_payload_round_trips() -> None:
    assert decode_payload(SAMPLES[0]) == Entries(CHAIN.entries)
    assert decode_payload(SAMPLES[1]) == Summaries((Summary("a1", 4, CHAIN.head.digest),))
    assert decode_payload(SAMPLES[2]) == FraudProofs((PROOF,))


def test_record_round_trips() -> None:
    assert [decode_record(r) for r in RECORDS] == [*CHAIN.entries, PROOF]


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\xc1",
        msgspec.msgpack.encode(["ledger-entries", [["hop", "a1", 1]]]),  # short array
        msgspec.msgpack.encode(["ledger-nonsense", []]),  # unknown tag
        msgspec.msgpack.encode(["ledger-summaries", [["a1", 0, b"\x00" * 32]]]),  # length 0
        msgspec.msgpack.encode(["ledger-summaries", [["a1", 1, b"\x00" * 31]]]),  # short head
        msgspec.msgpack.encode(["ledger-entries", [["ann", "a1", "", b"\x01" * 32, "sra/v1", -1, b"\x00" * 64]]]),
        # a seller buying from itself is well-typed but not a valid entry
        msgspec.msgpack.encode(["ledger-entries", [["hop", "a1", 1, b"\x01" * 32, b"\x01" * 32, 5,
                                                    b"\x00" * 32, b"\x00" * 64, b"\x00" * 64]]]),
        # multibyte id within the char limit but over the byte limit
        msgspec.msgpack.encode(["ledger-summaries", [["é" * 200, 1, b"\x00" * 32]]]),
        b"\x00" * (MAX_PAYLOAD_BYTES + 1),
    ],
)
def test_bad_payloads_raise_decode_error(bad: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_payload(bad)


def test_non_bytes_and_records_as_payloads() -> None:
    with pytest.raises(DecodeError):
        decode_payload("text")  # type: ignore[arg-type]
    with pytest.raises(DecodeError):
        decode_payload(RECORDS[0])  # a record is not a payload
    with pytest.raises(DecodeError):
        decode_record(SAMPLES[0])


def _only_decode_error(decoder: object, data: bytes) -> None:
    try:
        decoder(data)  # type: ignore[operator]
    except DecodeError:
        pass


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(data: bytes) -> None:
    _only_decode_error(decode_payload, data)
    _only_decode_error(decode_record, data)


@FUZZ
@given(st.sampled_from(SAMPLES + RECORDS), st.data())
def test_fuzz_mutated_valid_encodings(sample: bytes, data: st.DataObject) -> None:
    raw = bytearray(sample)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[at] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del raw[at:]
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    _only_decode_error(decode_payload, bytes(raw))
    _only_decode_error(decode_record, bytes(raw))
