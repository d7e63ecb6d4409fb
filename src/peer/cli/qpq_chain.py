"""Offline checks of a node's QPQ allocation files (``DATA_DIR/qpq/<stream>.ndjson``).

A QPQ node records each allocation as one JSON line, signed with its own key
and hash-chained per stream from a genesis bound to the stream and its cluster
membership (:mod:`peer.qpq.ledger`).  Without the node's plan we cannot know
the scenario's membership, so the chain is checked against the membership
digest its own first entry names; every later entry must name the same stream
and membership, chain to the one before it, and carry a valid signature by the
same key as the others (a node signs only its own copy).

A last line that does not parse is a torn tail (a crash mid-append): a note,
not damage, as for the SRA ledger.  Pure: bytes in, a report out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from peer.qpq.ledger import AllocationEntry, SignedAllocation, stream_genesis, verify_allocation, verify_allocation_chain

QPQ_DIR = "qpq"
SUFFIX = ".ndjson"
_FIELDS = ("stream", "round", "winner", "cluster", "value", "transcript", "membership", "prev")


@dataclass
class StreamReport:
    """One allocation file: what it holds and what is wrong with it."""

    file: str
    stream: str | None = None
    entries: list[AllocationEntry] = field(default_factory=list)
    signers: list[str] = field(default_factory=list)  # distinct signing keys, in order of appearance
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def head(self) -> str | None:
        return self.entries[-1].hash if self.entries else None


def _entry(data: object) -> tuple[AllocationEntry, str, bytes]:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    missing = [k for k in (*_FIELDS, "signer", "signature") if k not in data]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    for key in ("round", "value"):
        if isinstance(data[key], bool) or not isinstance(data[key], int) or data[key] < 0:
            raise ValueError(f"{key} is not a non-negative integer")
    for key in ("stream", "winner", "cluster", "transcript", "membership", "prev", "signer", "signature"):
        if not isinstance(data[key], str):
            raise ValueError(f"{key} is not a string")
    entry = AllocationEntry(**{k: data[k] for k in _FIELDS})
    entry.signed_bytes()  # hex fields and the value's width are checked here (ValueError/OverflowError)
    return entry, data["signer"], bytes.fromhex(data["signature"])


def check_stream(text: str, file: str) -> StreamReport:
    """Check one allocation file's text."""
    report = StreamReport(file=file)
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        try:
            entry, signer, signature = _entry(json.loads(line))
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            if number == len(lines) and not text.endswith("\n"):
                report.notes.append(f"line {number}: torn tail ignored (a crash mid-append): {exc}")
            else:
                report.problems.append(f"line {number}: unreadable: {exc}")
            continue
        if signer not in report.signers:
            report.signers.append(signer)
        if not verify_allocation(SignedAllocation(entry, signer, signature)):
            report.problems.append(f"round {entry.round}: signature does not verify")
        report.entries.append(entry)
    if len(report.signers) > 1:
        report.problems.append(f"signed by {len(report.signers)} different keys (a node signs only its own copy)")
    if report.entries:
        first = report.entries[0]
        report.stream = first.stream
        strays = [e.round for e in report.entries if (e.stream, e.membership) != (first.stream, first.membership)]
        if strays:
            report.problems.append(f"round {strays[0]}: another stream or membership than round 0's")
        problem = verify_allocation_chain(stream_genesis(first.stream, first.membership), report.entries)
        if problem:
            report.problems.append(problem)
    return report


def qpq_dir(data_dir: Path) -> Path | None:
    """``DATA_DIR/qpq`` (or DATA_DIR itself when it is that directory), if it exists."""
    for candidate in (data_dir / QPQ_DIR, data_dir):
        if candidate.is_dir() and any(candidate.glob("*" + SUFFIX)):
            return candidate
    return None


def check_data_dir(data_dir: Path) -> list[StreamReport]:
    """Every allocation file of a node's data directory (none: an empty list).  Raises OSError."""
    directory = qpq_dir(data_dir)
    if directory is None:
        return []
    reports = []
    for path in sorted(directory.glob("*" + SUFFIX)):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            reports.append(StreamReport(file=path.name, problems=["not UTF-8 text"]))
            continue
        reports.append(check_stream(text, path.name))
    return reports


def summary_line(report: StreamReport, name: object = None) -> str:
    """One line for ``peer ledger verify``."""
    who = ""
    if report.signers:
        signer = report.signers[0]
        who = f", signed by {name(signer) if callable(name) else signer[:16]}"
    rounds = f"rounds 0..{len(report.entries) - 1}" if report.entries else "no entries"
    head = f", head {report.head[:16]}" if report.head else ""  # compare copies across nodes by it
    return (f"qpq stream {report.stream or '?'} ({report.file}): {len(report.entries)} allocation(s), "
            f"{rounds}{who}{head}")
