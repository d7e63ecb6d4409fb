"""``peer ledger show --json``: a node's ledger as one JSON document.

Amounts are written as ``peer sim --json`` writes them: whole units, exact
decimal JSON numbers (:func:`peer.result.dumps`).  Every key appears with the
display name it is known by (``names.json``, ``--names``, else the short name
derived from the key, as the node's own views and ``peer keygen`` show it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from peer.cli.qpq_chain import StreamReport
from peer.ledger.entries import Chain, FraudProof, find_culprits
from peer.ledger.records import Issue
from peer.result import amount_to_decimal

Namer = Callable[[str], str]


def _party(key: str, name: Namer) -> dict[str, str]:
    return {"key": key, "name": name(key)}


def chain_json(chain: Chain, name: Namer, fraud_at: set[int], damage: list[str]) -> dict[str, Any]:
    ann = chain.announcement
    return {
        "auction": ann.auction,
        "item": ann.item,
        "mechanism": ann.mechanism,
        "created_at_ms": ann.created_at_ms,
        "seller": _party(ann.seller, name),
        "announcement": {"hash": ann.hash, "signature_ok": ann.signature_ok(), "fraud": 0 in fraud_at},
        "hops": [
            {
                "hop": hop.body.hop,
                "seller": _party(hop.body.seller, name),
                "buyer": _party(hop.body.buyer, name),
                "price": amount_to_decimal(hop.body.price),
                "hash": hop.body.hash,
                "prev": hop.body.prev,
                "seller_signature_ok": hop.seller_sig_ok(),
                "buyer_signature_ok": hop.buyer_sig_ok(),
                "fraud": hop.body.hop in fraud_at,
            }
            for hop in chain.hops
        ],
        "damaged": damage,
    }


def proof_json(proof: FraudProof, name: Namer) -> dict[str, Any]:
    return {
        "auction": proof.auction,
        "position": proof.position,
        "culprits": [_party(k, name) for k in sorted(find_culprits(proof.first, proof.second))],
        "first": proof.first.digest,
        "second": proof.second.digest,
    }


def issue_json(issue: Issue) -> dict[str, Any]:
    return {"file": issue.file, "offset": issue.offset, "reason": issue.reason, "torn": issue.torn,
            "lost": bool(getattr(issue, "lost", False)), "auction": issue.auction}


def stream_json(report: StreamReport, name: Namer, *, rounds: bool = True) -> dict[str, Any]:
    out = {
        "file": report.file,
        "stream": report.stream,
        "allocations": len(report.entries),
        "head": report.head,
        "signers": [_party(k, name) for k in report.signers],
        "ok": report.ok,
        "problems": report.problems,
        "notes": report.notes,
    }
    if rounds:
        out["rounds"] = [{"round": e.round, "winner": e.winner, "cluster": e.cluster, "hash": e.hash}
                         for e in report.entries]
    return out


def verify_json(report: Any, streams: list[dict[str, Any]]) -> dict[str, Any]:
    """``peer ledger verify --json``: ``report`` is the store's VerifyReport (None: no SRA ledger)."""
    auctions = [] if report is None else [
        {"auction": a.auction, "file": a.file, "entries": a.entries, "problem": a.problem} for a in report.auctions]
    ok = (report is None or report.ok) and all(s["ok"] for s in streams)
    return {"ok": ok, "auctions": auctions, "fraud_proofs": 0 if report is None else report.fraud_proofs,
            "issues": [] if report is None else [issue_json(i) for i in report.issues], "qpq": streams}


def ledger_json(path: Path | None, chains: list[dict[str, Any]], proofs: list[dict[str, Any]],
                issues: list[Issue], streams: list[dict[str, Any]]) -> dict[str, Any]:
    damaged = any(not i.torn for i in issues) or any(not s["ok"] for s in streams)
    return {"ledger": None if path is None else str(path), "ok": not damaged, "auctions": chains,
            "fraud_proofs": proofs, "issues": [issue_json(i) for i in issues], "qpq": streams}
