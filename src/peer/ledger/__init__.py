"""The signed, hash-chained, persisted and replicated SRA ledger.

- :mod:`peer.ledger.keys`: the tiny sign/verify interface over PyNaCl.
- :mod:`peer.ledger.entries`: announcements, signed hops, chains, fraud proofs
  and the pure checks (``verify_hop``, ``verify_chain``, ``check_reserve``).
- :mod:`peer.ledger.codec`: msgspec wire/disk payloads; one ``DecodeError``.
- :mod:`peer.ledger.replicate`: summaries, what to send, the pure merge.
- :mod:`peer.ledger.reconcile`: bucket digests -> covering summaries -> entries (anti-entropy).
- :mod:`peer.ledger.split`: ``split_payload``, the one way to encode a payload for gossip.
- :mod:`peer.ledger.store`: one append-only, fsync'd file per auction, and its head file.
- :mod:`peer.ledger.admission`: the pending area and the admission policy.
- :mod:`peer.ledger.cli`: ``ledger_app`` (``show`` and ``verify``).

See ``docs/ledger.md`` for the byte layouts and the recovery rules.
"""

from __future__ import annotations

from peer.ledger.codec import (
    BucketDigest,
    DecodeError,
    Digests,
    Entries,
    FraudProofs,
    Summaries,
    Summary,
    decode_payload,
    encode_payload,
)
from peer.ledger.entries import (
    Announcement,
    Chain,
    Entry,
    FraudProof,
    InvalidEntry,
    LedgerError,
    ReserveError,
    SignedHop,
    check_reserve,
    find_culprits,
    sign_hop,
    verify_chain,
    verify_fraud_proof,
    verify_hop,
)
from peer.ledger.reconcile import SummariesAnswer, answer_digests, answer_summaries, bucket_digests
from peer.ledger.replicate import MergeResult, Rejection
from peer.ledger.split import PayloadTooLarge, split_payload
from peer.ledger.admission import AdmissionPolicy
from peer.ledger.store import (
    DiskFull,
    FraudDetected,
    IntegrityError,
    LedgerStore,
    StoreError,
    StoreUnavailable,
    VerifyReport,
)

__all__ = [
    "AdmissionPolicy",
    "DiskFull",
    "StoreUnavailable",
    "Announcement",
    "BucketDigest",
    "Digests",
    "PayloadTooLarge",
    "SummariesAnswer",
    "answer_digests",
    "answer_summaries",
    "bucket_digests",
    "split_payload",
    "Chain",
    "DecodeError",
    "Entries",
    "Entry",
    "FraudDetected",
    "FraudProof",
    "FraudProofs",
    "IntegrityError",
    "InvalidEntry",
    "LedgerError",
    "LedgerStore",
    "MergeResult",
    "Rejection",
    "ReserveError",
    "SignedHop",
    "StoreError",
    "Summaries",
    "Summary",
    "VerifyReport",
    "check_reserve",
    "decode_payload",
    "encode_payload",
    "find_culprits",
    "sign_hop",
    "verify_chain",
    "verify_fraud_proof",
    "verify_hop",
]
