"""What a provider keeps of a round, as JSON, and its offline check.

A decided round records the agreed vector's digest, the coin, every trade and
payment and every executing provider's signature on the outcome digest;
:func:`verify_record` recomputes the digest from the recorded fields and checks
every signature, so any honest copy verifies on its own, and two honest copies
hold identical outcome fields (the shell adds its own timings, ``phase_started_s``
and ``cpu_s``, which naturally differ).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from peer.auctioneer.effects import Aborted, Decided
from peer.auctioneer.outcome import Allocation, Outcome, SignedOutcome, Trade


def outcome_record(result: Decided | Aborted, providers: tuple[bytes, ...]) -> dict[str, Any]:
    if isinstance(result, Aborted):
        return {"output": "bottom", "reason": result.reason, "culprits": [c.hex() for c in result.culprits], "proved": result.proved}
    o = result.outcome.outcome
    return {
        "output": "outcome",
        "round": o.round,
        "auction": o.auction,
        "digest": o.digest().hex(),
        "vector_digest": o.vector_digest.hex(),
        "coin": o.coin.hex(),
        "bids": len(result.vector.bids),
        "excluded": [b.hex() for b in result.vector.excluded],
        "trades": [[t.user.hex(), t.provider.hex(), t.quantity] for t in o.allocation.trades],
        "charges": [[k.hex(), v] for k, v in o.allocation.charges],
        "credits": [[k.hex(), v] for k, v in o.allocation.credits],
        "providers": [p.hex() for p in providers],
        "signatures": [[p.hex(), s.hex()] for p, s in result.outcome.signatures],
    }


def verify_record(record: dict[str, Any]) -> str | None:
    """``None`` if the record's outcome is signed by every listed provider, else why not."""
    try:
        if record["output"] != "outcome":
            return "the round's output is ⊥"
        allocation = Allocation(
            tuple(Trade(bytes.fromhex(u), bytes.fromhex(p), int(q)) for u, p, q in record["trades"]),
            tuple((bytes.fromhex(k), int(v)) for k, v in record["charges"]),
            tuple((bytes.fromhex(k), int(v)) for k, v in record["credits"]),
        )
        outcome = Outcome(
            int(record["round"]), str(record["auction"]), bytes.fromhex(record["vector_digest"]),
            bytes.fromhex(record["coin"]), allocation,
        )
        signed = SignedOutcome(outcome, tuple((bytes.fromhex(p), bytes.fromhex(s)) for p, s in record["signatures"]))
        providers = tuple(bytes.fromhex(p) for p in record["providers"])
    except (KeyError, TypeError, ValueError) as exc:
        return f"malformed record ({exc!r})"
    try:
        digest = outcome.digest().hex()
    except (OverflowError, UnicodeEncodeError) as exc:  # a negative or huge number, an odd auction name
        return f"malformed record ({exc!r})"
    if digest != record["digest"]:
        return "the recorded digest is not the digest of the recorded outcome"
    return signed.problem(providers)


# --- a node's append-only record of its rounds: DATA_DIR/auctioneer/rounds.ndjson, one record a line
#
# Each line carries ``prev``, the SHA-256 of the line before it (exact bytes, no
# newline), and the first line the hash of GENESIS: a record removed or altered in
# the middle of the file breaks the chain and is reported offline.  (Removing the
# *last* records leaves a shorter valid chain; the other providers' copies of the
# same rounds are what shows that.)  Files written before the chain have lines
# without ``prev``; they are read as they are until the first chained line.

GENESIS = b"peer/auctioneer/rounds/v1"


def line_hash(line: str | bytes) -> str:
    return hashlib.sha256(line if isinstance(line, bytes) else line.encode("utf-8")).hexdigest()


GENESIS_HASH = line_hash(GENESIS)


def encode_record(record: dict[str, Any], prev: str) -> str:
    """The line for ``record`` chained to ``prev`` (no newline)."""
    return json.dumps({**record, "prev": prev}, sort_keys=True)


def append_record(path: Path, record: dict[str, Any], prev: str) -> str:
    """Append one round record chained to ``prev`` and fsync it; return the new head hash.

    Blocking: the node runs it in a worker thread.  A file that does not end in a
    newline (a torn tail that :func:`cut_torn_tail` did not get to) gets one first,
    so the new record never fuses with the torn bytes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    line = encode_record(record, prev)
    with open(path, "a+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size:
            handle.seek(size - 1)
            if handle.read(1) != b"\n":
                handle.write(b"\n")
        handle.write(line.encode("utf-8") + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return line_hash(line)


def cut_torn_tail(path: Path) -> int:
    """Drop a last line that does not parse and has no newline (a crash mid-append: never
    acknowledged to anyone).  Returns the bytes cut; run before a provider appends again."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    if not data or data.endswith(b"\n"):
        return 0
    start = data.rfind(b"\n") + 1
    try:
        json.loads(data[start:])
    except ValueError:
        with open(path, "r+b") as handle:
            handle.truncate(start)
            handle.flush()
            os.fsync(handle.fileno())
        return len(data) - start
    return 0


def read_records(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every record of a rounds file, and what is wrong with the file.

    A torn last line (a crash mid-append) is reported and skipped; rounds must
    strictly increase (the file is append-only, one line per round), and every
    chained line must name the hash of the line before it.
    """
    records, problems, _ = read_chain(path)
    return records, problems


def read_chain(path: Path) -> tuple[list[dict[str, Any]], list[str], str]:
    """:func:`read_records` plus the hash the next record must chain to."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path}: {getattr(exc, 'strerror', None) or exc}"], GENESIS_HASH
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    last = 0
    head = GENESIS_HASH
    chained = False
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or type(record.get("round")) is not int:
                raise ValueError("not a round record")
        except (ValueError, RecursionError) as exc:
            problems.append(f"line {number}: {'torn tail ignored' if number == len(lines) else 'unreadable'} ({exc})")
            continue
        if record["round"] <= last:
            problems.append(f"line {number}: round {record['round']} after round {last} (not append-only)")
        prev = record.get("prev")
        if prev is not None or chained:
            if prev != head:
                problems.append(f"line {number}: round {record['round']} does not chain to the line before it "
                                "(a record was removed or altered)")
            chained = True
        head = line_hash(line)
        last = max(last, record["round"])
        records.append(record)
    return records, problems, head
