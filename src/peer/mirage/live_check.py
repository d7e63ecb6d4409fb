"""The end-of-run check of a live Mirage market: every provider's copy verifies, and all copies are identical.

A copy is one provider's ``round-N.json`` files.  Each is verified on its own
(:func:`peer.mirage.live.verify_records`: signatures, vector digests, every
round recomputed); then the copies are compared on what a record asserts (the
outcome, the bids, the allocations, payments and balances), leaving out each
shell's own timings and a ⊥'s wording (who a provider blames depends on what it
saw first).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peer.mirage.live import verify_records
from peer.mirage.live_config import LiveCluster

_OWN = ("phase_started_s", "cpu_s", "reason", "culprits", "proved")


def read_copy(directory: Path, rounds: int) -> list[dict[str, Any]]:
    out = []
    for r in range(1, rounds + 1):
        try:
            record = json.loads((directory / f"round-{r}.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _OWN}


def check_copies(live: LiveCluster, directories: list[Path]) -> dict[str, Any]:
    problems: list[str] = []
    copies = {str(d): read_copy(d, live.rounds) for d in directories}
    verified = 0
    for name, records in copies.items():
        issues = verify_records(records, live.setup(), live.providers, live.k, live.rounds)
        if issues:
            problems += [f"{Path(name).name}: {i}" for i in issues]
        else:
            verified += 1
    shapes = {json.dumps([comparable(r) for r in records], sort_keys=True) for records in copies.values()}
    identical = len(shapes) == 1 and bool(copies)
    if not identical:
        problems.append("the providers' copies differ")
    first = next(iter(copies.values()), [])
    names = {u.key: u.name for u in live.users}
    rounds = []
    for r in first:
        s = r.get("mirage", {})
        rounds.append({
            "round": s.get("round"), "hour": s.get("hour"), "output": r.get("output"),
            "bids": len(s.get("bids", [])), "algorithm": s.get("algorithm"),
            "allocations": [{"user": names.get(a[1], a[1][:12]), "start": a[2], "nodes": a[3], "hours": a[4],
                             "price": a[5]} for a in s.get("allocations", [])],
            "reason": r.get("reason"),
        })
    balances = {names.get(k, k[:12]): v for k, v in (first[-1].get("mirage", {}).get("balances", {}) if first else {}).items()}
    return {"ok": not problems and verified == len(directories) and len(first) == live.rounds,
            "copies": len(directories), "verified": verified, "identical": identical,
            "rounds": rounds, "balances": balances, "problems": problems}
