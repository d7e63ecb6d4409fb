"""Anti-entropy that scales to thousands of chains: bucket digests, then summaries, then entries.

A summary per chain is ~60 bytes, so a node with thousands of chains cannot say
what it holds in one gossip payload, and most of it is the same on both sides
anyway.  So the exchange descends only where two nodes differ:

1. ``Digests``: every auction falls in one of ``BUCKETS`` (256) buckets, the
   first byte of a domain-separated sha256 of its id; per non-empty bucket a
   node sends (bucket, count, sha256 over its chains' summaries in auction
   order).  At most 256 x 40 bytes: one payload, whatever the ledger's size.
2. A neighbour compares with its own (:func:`answer_digests`) and answers, for
   every bucket whose digest differs (or that only one side has), its
   summaries of those buckets, marked as *covering* them (``Summaries.buckets``):
   an auction of a covered bucket that is not listed is one it lacks.
3. The first node (:func:`answer_summaries`) sends the entries the neighbour
   lacks: the tail after a common prefix, the whole chain where it diverged (so
   the receiver finds the fork and keeps the proof) or where the neighbour has
   nothing in a covered bucket.  Where the neighbour holds more than we do, we
   answer with our own covering summaries of those buckets, and it sends us
   the entries (step 3 on its side).  This ends: each step only answers a
   strict lack.

All functions here are pure; the node shell publishes what they return through
:func:`peer.ledger.split.split_payload`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from peer.ledger.codec import BUCKETS, BucketDigest, Digests, Summaries, Summary
from peer.ledger.entries import Chain, Entry
from peer.ledger.replicate import entries_to_send, summarize

_BUCKET_DOMAIN = b"peer/ledger/bucket\x00"
_DIGEST_DOMAIN = b"peer/ledger/bucket-digest/v1"


def bucket_of(auction: str) -> int:
    """The bucket of an auction id: stable, and spread evenly whatever the ids look like."""
    return hashlib.sha256(_BUCKET_DOMAIN + auction.encode()).digest()[0] % BUCKETS


def _digest(summaries: Iterable[Summary]) -> bytes:
    h = hashlib.sha256(_DIGEST_DOMAIN)
    for s in sorted(summaries, key=lambda s: s.auction):
        raw = s.auction.encode()
        h.update(len(raw).to_bytes(4, "big") + raw + s.length.to_bytes(8, "big") + bytes.fromhex(s.head))
    return h.digest()


def by_bucket(chains: Iterable[Chain]) -> dict[int, list[Chain]]:
    out: dict[int, list[Chain]] = {}
    for chain in chains:
        out.setdefault(bucket_of(chain.auction), []).append(chain)
    return out


def bucket_digests(chains: Iterable[Chain]) -> Digests:
    """One digest per non-empty bucket (step 1)."""
    return Digests(tuple(
        BucketDigest(bucket, len(group), _digest(summarize(c) for c in group))
        for bucket, group in sorted(by_bucket(chains).items())
    ))


def differing_buckets(mine: Digests, theirs: Digests) -> list[int]:
    """Buckets whose contents differ between the two sides (one side empty counts)."""
    a = {d.bucket: (d.count, d.digest) for d in mine.buckets}
    b = {d.bucket: (d.count, d.digest) for d in theirs.buckets}
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def covering_summaries(chains: Iterable[Chain], buckets: Iterable[int]) -> Summaries:
    """Our summaries of every chain in ``buckets``, claiming to cover them."""
    wanted = set(buckets)
    listed = sorted((summarize(c) for c in chains if bucket_of(c.auction) in wanted), key=lambda s: s.auction)
    return Summaries(tuple(listed), tuple(sorted(wanted)))


def answer_digests(chains: Iterable[Chain], theirs: Digests) -> Summaries | None:
    """Step 2: our covering summaries of the buckets where we differ; None when we agree."""
    chains = list(chains)
    differ = differing_buckets(bucket_digests(chains), theirs)
    return covering_summaries(chains, differ) if differ else None


@dataclass(slots=True)
class SummariesAnswer:
    """What to publish after a neighbour's summaries: ``entries`` it lacks, and ``summaries``
    (ours, covering the buckets where it holds more than we do) or None."""

    entries: list[Entry] = field(default_factory=list)
    summaries: Summaries | None = None


def answer_summaries(chains: Iterable[Chain], theirs: Summaries) -> SummariesAnswer:
    """Step 3 (see the module doc)."""
    chains = list(chains)
    known = {s.auction: s for s in theirs.summaries}
    covered = set(theirs.buckets)
    answer = SummariesAnswer()
    for chain in sorted(chains, key=lambda c: c.auction):
        peer = known.get(chain.auction)
        if peer is not None:
            answer.entries.extend(entries_to_send(chain, peer))
        elif bucket_of(chain.auction) in covered:
            answer.entries.extend(chain.entries)
    ours = {c.auction: c for c in chains}
    lacking = {bucket_of(s.auction) for s in theirs.summaries
               if (c := ours.get(s.auction)) is None or s.length > c.length}
    if lacking:
        answer.summaries = covering_summaries(chains, lacking)
    return answer
