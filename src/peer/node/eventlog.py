"""NDJSON event log (``peer run --log-json FILE``) and its reader.

One JSON object per line: ``{"t": seconds since the node started, "node":
name, "kind": ..., ...}``.  Kinds: ``started``, ``link`` (up/down),
``stage``, ``send``/``recv`` (one per protocol message), ``bad`` (a rejected
frame or message, with the neighbour's name and the reason), ``held`` (a
settlement ahead of our ledger), ``ledger`` (an entry appended), ``fraud``,
``settled``, ``final`` (the node's end state, what ``tools/launch`` assembles
the run from), ``error``; after faults ``aborted``, ``recovered``, ``ignored``,
``catchup``, ``adversary``; for QPQ ``qpq_kickoff``, ``qpq_round``,
``qpq_alloc``, ``qpq_flag``; from the link layer ``handshake_failed`` (which
configured neighbour, the key expected and the key presented), ``banned``,
``unbanned`` and ``bad_suppressed`` (refusals counted instead of logged one by
one).  Amounts are decimal
strings in whole units, never floats.

Lines are encoded by msgspec (a tenth of ``json.dumps``'s CPU; the same
compact JSON, but non-ASCII text is written as UTF-8 rather than ``\\u``
escapes) and written unbuffered, one ``write`` per line, so a reader sees
whole lines as soon as they happen, as before.  A value msgspec does not
encode (a subclass of a builtin, a string with a lone surrogate) falls back to
``json.dumps`` for that line: the log never says less than it used to.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

_encode = msgspec.json.Encoder().encode


def encode_line(event: dict[str, Any]) -> bytes:
    """One event as one JSON line (bytes, newline included).

    Raises:
        TypeError, ValueError: a value JSON cannot carry (as ``json.dumps`` would).
    """
    try:
        return _encode(event) + b"\n"
    except (TypeError, UnicodeEncodeError, msgspec.EncodeError):
        return (json.dumps(event, separators=(",", ":")) + "\n").encode()


class EventLog:
    """Appends events to a file, one unbuffered write per line so a reader sees whole lines."""

    def __init__(self, path: str | Path | None, node: str, clock_origin: float) -> None:
        self.node = node
        self.origin = clock_origin
        self._file: BinaryIO | None = open(path, "ab", buffering=0) if path else None  # noqa: SIM115
        self.listeners: list[Any] = []

    def emit(self, now: float, kind: str, **fields: Any) -> None:
        event = {"t": round(now - self.origin, 6), "node": self.node, "kind": kind, **fields}
        for listener in self.listeners:
            listener(event)
        if self._file is not None:
            data = memoryview(encode_line(event))
            while data:  # an unbuffered write may be short (a huge ``final`` line)
                written = self._file.write(data)
                if not written:  # pragma: no cover - a regular file always takes some
                    break
                data = data[written:]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class Tail:
    """Incrementally reads complete lines appended to an NDJSON file.

    Lines containing any of ``skip`` are dropped unparsed (a dashboard that
    never needs the bulk of a log, its send/recv lines, saves their parsing).
    """

    path: Path
    offset: int = 0
    partial: bytes = b""
    bad_lines: int = field(default=0)
    skip: tuple[bytes, ...] = ()

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        data = self.partial + chunk
        lines = data.split(b"\n")
        self.partial = lines.pop()  # an incomplete last line waits for the rest
        events = []
        for line in lines:
            if not line.strip() or any(s in line for s in self.skip):
                continue
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
                self.bad_lines += 1
                continue
            if isinstance(event, dict):
                events.append(event)
        return events


def read_all(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    return Tail(Path(path)).read_new()
