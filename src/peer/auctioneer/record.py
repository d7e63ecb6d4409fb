"""What a provider keeps of a round, as JSON, and its offline check.

A decided round records the agreed vector's digest, the coin, every trade and
payment and every executing provider's signature on the outcome digest;
:func:`verify_record` recomputes the digest from the recorded fields and checks
every signature, so any honest copy verifies on its own, and two honest copies
hold identical outcome fields (the shell adds its own timings, ``phase_started_s``
and ``cpu_s``, which naturally differ).
"""

from __future__ import annotations

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


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one round record and fsync it (blocking: the node runs it in a worker thread)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_records(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every record of a rounds file, and what is wrong with the file.

    A torn last line (a crash mid-append) is reported and skipped; rounds must
    strictly increase (the file is append-only, one line per round).
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path}: {getattr(exc, 'strerror', None) or exc}"]
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    last = 0
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or type(record.get("round")) is not int:
                raise ValueError("not a round record")
        except ValueError as exc:
            problems.append(f"line {number}: {'torn tail ignored' if number == len(lines) else 'unreadable'} ({exc})")
            continue
        if record["round"] <= last:
            problems.append(f"line {number}: round {record['round']} after round {last} (not append-only)")
        last = max(last, record["round"])
        records.append(record)
    return records, problems
