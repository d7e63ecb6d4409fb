"""Fuzzing ``Tail.read_new``: it must never raise, whatever bytes the log holds.

The launcher's monitor tails every node's NDJSON event log while the nodes
write it, so the reader sees partial lines, and a crashed or hostile node can
leave anything in its file.  Inputs: arbitrary bytes, and lines built from the
log's own grammar (valid events, truncated JSON, JSON that is not an object,
invalid UTF-8, UTF-16 text, NUL bytes, CRLF, huge numbers, nesting), appended
in arbitrary chunks with reads in between.  Properties:

* ``read_new`` never raises and returns only dicts;
* chunking does not matter: reading as the file grows gives the same events
  and the same ``bad_lines`` count as one read of the whole file;
* every complete line is either an event or counted in ``bad_lines``
  (blank lines and JSON values that are not objects are skipped silently).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from peer.node.eventlog import Tail

from ._common import fuzz, msgpack_scalars

events = st.fixed_dictionaries(
    {"t": st.floats(0, 1e6), "node": st.text(max_size=8), "kind": st.sampled_from(["send", "recv", "bad", "final"])},
    optional={"amount": st.text(max_size=6), "peer": st.text(max_size=6), "n": st.integers()},
)
json_values = st.recursive(
    msgpack_scalars.filter(lambda v: not isinstance(v, bytes)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)

#: Deep enough for json.loads to raise RecursionError, which read_new must absorb.
MAX_DEPTH = 2000


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["event", "event", "value", "cut", "utf8", "utf16", "nul", "number", "nested",
                                 "blank", "bytes"]))
    if kind == "event":
        return json.dumps(draw(events)).encode()
    if kind == "value":
        return json.dumps(draw(json_values)).encode()
    if kind == "cut":
        text = json.dumps(draw(events)).encode()
        return text[: draw(st.integers(0, len(text)))]
    if kind == "utf8":
        return b'{"kind": "' + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf"])) + b'"}'
    if kind == "utf16":
        return json.dumps(draw(events)).encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32"])))
    if kind == "nul":
        return b'{"kind":"x"}\x00' + draw(st.binary(max_size=4))
    if kind == "number":
        return b'{"n": ' + b"9" * draw(st.sampled_from([1, 20, 4300, 4301, 6000])) + b"}"
    if kind == "nested":
        depth = draw(st.integers(1, MAX_DEPTH))
        return b"[" * depth + b"]" * draw(st.integers(0, depth))
    if kind == "blank":
        return draw(st.sampled_from([b"", b" ", b"\t", b"\r", b" \r "]))
    return draw(st.binary(max_size=40))


@st.composite
def log_files(draw: st.DrawFn) -> bytes:
    body = draw(st.lists(lines(), max_size=8))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = ending.join(body)
    if draw(st.booleans()):
        data += ending  # otherwise the last line is partial and must wait
    return data


def read_in_chunks(data: bytes, cuts: list[int]) -> tuple[list[dict[str, Any]], Tail]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.ndjson"
        tail = Tail(path)
        assert tail.read_new() == []  # no file yet: nothing, no error
        path.write_bytes(b"")
        got: list[dict[str, Any]] = []
        start = 0
        for cut in [*sorted(cuts), len(data)]:
            with open(path, "ab") as fh:
                fh.write(data[start:cut])
            start = max(start, cut)
            batch = tail.read_new()
            assert all(isinstance(e, dict) for e in batch)
            got += batch
        return got, tail


def check(data: bytes, cuts: list[int]) -> None:
    whole, whole_tail = read_in_chunks(data, [])
    chunked, chunked_tail = read_in_chunks(data, cuts)
    assert chunked == whole
    assert chunked_tail.bad_lines == whole_tail.bad_lines
    assert chunked_tail.partial == whole_tail.partial == data.split(b"\n")[-1]
    complete = [line for line in data.split(b"\n")[:-1] if line.strip()]
    assert len(whole) + whole_tail.bad_lines <= len(complete)


@fuzz(250)
@given(log_files(), st.lists(st.integers(0, 400), max_size=5))
def test_grammar_aware_logs_never_raise_and_chunking_does_not_matter(data: bytes, cuts: list[int]) -> None:
    check(data, [min(c, len(data)) for c in cuts])


@fuzz(150)
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=5))
def test_random_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    check(data, [min(c, len(data)) for c in cuts])


def test_regression_deeply_nested_json_line_no_longer_crashes_read_new() -> None:
    """Regression, found by fuzzing; fixed.  It used to go like this: ``read_new`` catches ValueError from json.loads but not RecursionError,
    which a line of ~1000 "[" raises (CPython's JSON decoder recurses once per
    level), so one such line in a node's log crashes the launcher's monitor."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.ndjson"
        path.write_bytes(b"[" * 100_000 + b"\n" + b'{"kind": "final"}\n')
        tail = Tail(path)
        assert tail.read_new() == [{"kind": "final"}]
        assert tail.bad_lines == 1
