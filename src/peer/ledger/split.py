"""Cutting a ledger payload into encoded payloads that each fit one gossip message.

A restarted node used to flood its entries 100 per envelope and all its
summaries in one payload; past ~60 KiB ``Gossip.publish`` refused it and the
node could never restart (#15.10).  :func:`split_payload` is the one way to
encode a payload for gossip: it packs whole items greedily, each piece at most
``limit`` bytes and ``MAX_BATCH`` items, and refuses (``PayloadTooLarge``) only
an item that cannot fit on its own, which no valid entry can: an announcement
is at most ~1.7 KiB.

Summaries are packed a bucket at a time, so a piece may claim a bucket as
*covered* (complete, see :mod:`peer.ledger.reconcile`) only when it holds all of
that bucket's summaries; a bucket too large for one piece (about a thousand
chains in one of 256 buckets) is sent across pieces without the claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from peer.ledger.codec import (
    MAX_BATCH,
    Digests,
    Entries,
    FraudProofs,
    Payload,
    Summaries,
    Summary,
    encode_payload,
)
from peer.ledger.entries import LedgerError
from peer.ledger.reconcile import bucket_of
from peer.net.codec import MAX_GOSSIP_PAYLOAD

#: What one gossip envelope may carry (the link frame adds the envelope around it).
PAYLOAD_LIMIT = MAX_GOSSIP_PAYLOAD


class PayloadTooLarge(LedgerError):
    """One item is larger than a whole gossip payload: it cannot be sent at all."""


def _wrap(kind: type, items: Sequence[Any], buckets: Sequence[int] = ()) -> Payload:
    if kind is Summaries:
        return Summaries(tuple(items), tuple(buckets))
    return kind(tuple(items))  # type: ignore[no-any-return]


def _pack(kind: type, items: Sequence[Any], limit: int) -> list[bytes]:
    """Greedy packing of ``items`` in order; each piece's exact size is checked after encoding."""
    empty = len(encode_payload(_wrap(kind, ())))
    out: list[bytes] = []
    start, size = 0, empty + 4  # 4: the list header grows from 1 to at most 5 bytes
    for i, item in enumerate(items):
        item_size = len(encode_payload(_wrap(kind, (item,)))) - empty
        if empty + 4 + item_size > limit:
            raise PayloadTooLarge(f"one {kind.__name__} item of {item_size} bytes exceeds the {limit}-byte payload "
                                  f"limit")
        if size + item_size > limit or i - start >= MAX_BATCH:
            out.append(encode_payload(_wrap(kind, items[start:i])))
            start, size = i, empty + 4
        size += item_size
    if start < len(items) or not out:
        out.append(encode_payload(_wrap(kind, items[start:])))
    assert all(len(p) <= limit for p in out)  # the size estimate above is an upper bound
    return out


def _pack_summaries(payload: Summaries, limit: int) -> list[bytes]:
    covered = set(payload.buckets)
    groups: dict[int, list[Summary]] = {b: [] for b in covered}
    for s in payload.summaries:
        groups.setdefault(bucket_of(s.auction), []).append(s)
    empty = len(encode_payload(Summaries((), ())))
    out: list[bytes] = []
    items: list[Summary] = []
    claims: list[int] = []
    size = empty + 4

    def flush() -> None:
        nonlocal items, claims, size
        if items or claims:
            out.append(encode_payload(Summaries(tuple(items), tuple(claims))))
        items, claims, size = [], [], empty + 4

    for bucket in sorted(groups):
        group = groups[bucket]
        claim = bucket in covered
        group_size = sum(len(encode_payload(Summaries((s,)))) - empty for s in group) + (3 if claim else 0)
        if empty + 4 + group_size > limit or len(group) > MAX_BATCH:
            # A bucket too large for one payload: its summaries go unclaimed, in their own pieces.
            flush()
            out.extend(p for p in _pack(Summaries, group, limit))
            continue
        if size + group_size > limit or len(items) + len(group) > MAX_BATCH:
            flush()
        items.extend(group)
        if claim:
            claims.append(bucket)
        size += group_size
    flush()
    if not out:
        out.append(encode_payload(Summaries(())))
    assert all(len(p) <= limit for p in out)
    return out


def split_payload(payload: Payload, limit: int = PAYLOAD_LIMIT) -> list[bytes]:
    """Encoded pieces of ``payload``, each at most ``limit`` bytes; together they carry every item.

    An empty payload gives one empty piece.  Raises ``PayloadTooLarge`` if one
    item alone does not fit.
    """
    if isinstance(payload, Entries):
        return _pack(Entries, payload.entries, limit)
    if isinstance(payload, FraudProofs):
        return _pack(FraudProofs, payload.proofs, limit)
    if isinstance(payload, Summaries):
        return _pack_summaries(payload, limit)
    if isinstance(payload, Digests):
        return _pack(Digests, payload.buckets, limit)
    raise TypeError(f"not a ledger payload: {type(payload).__name__}")
