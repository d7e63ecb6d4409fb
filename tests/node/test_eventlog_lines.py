"""The event log's lines: msgspec-encoded, one whole line per event, read back unchanged."""

from __future__ import annotations

import json
from decimal import Decimal
from enum import Enum
from pathlib import Path

from peer.node.eventlog import EventLog, Tail, encode_line, read_all


class Kind(str, Enum):
    BID = "bid"


class Name(str):
    """A str subclass: msgspec refuses it, json.dumps takes it (the fallback path)."""


def test_lines_read_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "n.ndjson"
    log = EventLog(path, "n1", 100.0)
    seen: list[dict] = []
    log.listeners.append(seen.append)
    log.emit(101.5, "send", auction="A0", peer="n2", type="Bid", stage=Kind.BID)
    log.emit(102.0, "final", ledger=[{"hop": 1, "price": "3"}], sold_at=None, note="naïve", who=Name("x"))
    log.emit(102.5, "bad", reason="surrogate \udc80 in a path")
    log.close()
    events = read_all(path)
    assert [e["kind"] for e in events] == ["send", "final", "bad"] == [e["kind"] for e in seen]
    assert events[0] == {"t": 1.5, "node": "n1", "kind": "send", "auction": "A0", "peer": "n2", "type": "Bid",
                         "stage": "bid"}
    assert events[1]["ledger"] == [{"hop": 1, "price": "3"}] and events[1]["note"] == "naïve"
    assert events[1]["who"] == "x" and events[2]["reason"] == "surrogate \udc80 in a path"
    # The stream monitor skips send/recv lines by this exact spelling, unparsed.
    assert b'"kind":"send"' in path.read_bytes().splitlines()[0]
    assert Tail(path, skip=(b'"kind":"send"',)).read_new() == events[1:]


def test_encode_line_is_compact_json_and_refuses_what_json_refuses() -> None:
    line = encode_line({"t": 0.25, "kind": "x", "n": [1, 2]})
    assert line == b'{"t":0.25,"kind":"x","n":[1,2]}\n' and json.loads(line) == {"t": 0.25, "kind": "x", "n": [1, 2]}
    assert json.loads(encode_line({"amount": Decimal("1.50")})) == {"amount": "1.50"}
    try:
        encode_line({"x": object()})
    except TypeError:
        pass
    else:
        raise AssertionError("an object JSON cannot carry was written")
