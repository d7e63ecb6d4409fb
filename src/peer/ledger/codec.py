"""msgspec encodings of ledger entries: the disk record bodies and the gossip payloads.

One codec for disk and wire, MessagePack with array-like tagged structs: the
first array element names the kind.  These bytes are NOT what is hashed or
signed (that is each entry's ``signed_bytes``), so this encoding may evolve
without breaking a signature.  Every decode either returns fully validated
domain objects or raises ``DecodeError``; signatures are checked later, by
whoever puts the entries on a chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
from msgspec import Meta

from peer.ledger.entries import (
    MAX_HOP,
    MAX_ID_BYTES,
    MAX_ITEM_BYTES,
    MAX_PRICE,
    MAX_TIME_MS,
    Announcement,
    Entry,
    FraudProof,
    InvalidEntry,
    LedgerError,
    SignedHop,
    validate_auction,
)
from peer.ledger.keys import is_public_hex
from peer.net.msgpack_limits import check_shape
from peer.sra.equivocation import BidReceipt  # its ReceiptError is a ValueError: caught as one below
from peer.sra.ledger_entry import HopEntry

#: Bound on one payload or record: what a gossip message carries (60 KiB) and
#: what a disk record holds (64 KiB); ``split_payload`` cuts anything larger.
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_BATCH = 4096
#: Shape bounds checked before msgspec sees the bytes (see ``peer.net.msgpack_limits``):
#: the deepest payload is a fraud-proof batch, [tag, [[tag, [tag, ...], ...]]], 4 levels.
#: The densest is a batch of summaries with 1-byte ids, 4 values in 38 bytes: about
#: 6,900 values in 64 KiB.  The bound keeps the guard's own walk short (~4 ms at worst).
MAX_DEPTH = 4
MAX_VALUES = 8192
#: Buckets of the summary digests: an auction's bucket is the first byte of a hash of its id.
BUCKETS = 256

Key = Annotated[bytes, Meta(min_length=32, max_length=32)]
Sig = Annotated[bytes, Meta(min_length=64, max_length=64)]
Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID_BYTES)]


class DecodeError(LedgerError, ValueError):
    """Bytes that are not a well-formed ledger payload or record.  The only error decoders raise."""


class AnnouncementMsg(msgspec.Struct, tag="ann", array_like=True, frozen=True, forbid_unknown_fields=True):
    auction: Id
    item: Annotated[str, Meta(max_length=MAX_ITEM_BYTES)]
    seller: Key
    mechanism: Id
    created_at_ms: Annotated[int, Meta(ge=0, le=MAX_TIME_MS)]
    signature: Sig


class HopMsg(msgspec.Struct, tag="hop", array_like=True, frozen=True, forbid_unknown_fields=True):
    auction: Id
    hop: Annotated[int, Meta(ge=1, le=MAX_HOP)]
    seller: Key
    buyer: Key
    price: Annotated[int, Meta(ge=0, le=MAX_PRICE)]
    prev: Key
    seller_sig: Sig
    buyer_sig: Sig


EntryMsg = AnnouncementMsg | HopMsg


class BidReceiptMsg(msgspec.Struct, tag="bid", array_like=True, frozen=True, forbid_unknown_fields=True):
    """A bidder's signed stage-2 bid commitment (``peer.sra.equivocation``): only ever half of a proof."""

    auction: Id
    bidder: Key
    commitment: Key  # sha256, 32 bytes
    sig: Sig


# What a proof may pair.  Not EntryMsg: a bid receipt is never a ledger entry.
ProofPartMsg = AnnouncementMsg | HopMsg | BidReceiptMsg


class FraudProofMsg(msgspec.Struct, tag="fraud", array_like=True, frozen=True, forbid_unknown_fields=True):
    first: ProofPartMsg
    second: ProofPartMsg


class SummaryMsg(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    auction: Id
    length: Annotated[int, Meta(ge=1, le=MAX_HOP + 1)]
    head: Key  # digest of the head entry, 32 bytes


class SummariesMsg(msgspec.Struct, tag="ledger-summaries", array_like=True, frozen=True,
                   forbid_unknown_fields=True):
    summaries: Annotated[list[SummaryMsg], Meta(max_length=MAX_BATCH)]
    # Buckets this payload covers completely (see Summaries); omitted when empty.
    buckets: Annotated[list[Annotated[int, Meta(ge=0, lt=BUCKETS)]], Meta(max_length=BUCKETS)] = []


class BucketDigestMsg(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    bucket: Annotated[int, Meta(ge=0, lt=BUCKETS)]
    count: Annotated[int, Meta(ge=1, le=2**32)]
    digest: Key


class DigestsMsg(msgspec.Struct, tag="ledger-digests", array_like=True, frozen=True,
                 forbid_unknown_fields=True):
    buckets: Annotated[list[BucketDigestMsg], Meta(max_length=BUCKETS)]


class EntriesMsg(msgspec.Struct, tag="ledger-entries", array_like=True, frozen=True,
                   forbid_unknown_fields=True):
    entries: Annotated[list[EntryMsg], Meta(max_length=MAX_BATCH)]


class FraudProofsMsg(msgspec.Struct, tag="ledger-fraud", array_like=True, frozen=True,
                   forbid_unknown_fields=True):
    proofs: Annotated[list[FraudProofMsg], Meta(max_length=MAX_BATCH)]


RecordMsg = AnnouncementMsg | HopMsg | FraudProofMsg
PayloadMsg = SummariesMsg | EntriesMsg | FraudProofsMsg | DigestsMsg


# ------------------------------------------------------------- domain side


@dataclass(frozen=True, slots=True)
class Summary:
    """What a node has of one auction: ``length`` entries (genesis included), ending in ``head`` (a digest)."""

    auction: str
    length: int
    head: str

    def __post_init__(self) -> None:
        validate_auction(self.auction)
        if not isinstance(self.length, int) or isinstance(self.length, bool) or not 1 <= self.length <= MAX_HOP + 1:
            raise InvalidEntry("summary length must be at least 1 (the announcement)")
        if not is_public_hex(self.head):  # a sha256 in hex has the spelling of a key
            raise InvalidEntry("summary head must be 64 lowercase hex chars")


@dataclass(frozen=True, slots=True)
class Summaries:
    """Summaries of some of a node's chains.

    ``buckets`` names the buckets (see ``peer.ledger.reconcile``) for which
    ``summaries`` is complete: an auction of a covered bucket that is not listed
    is one the sender does not have.  Empty: only the listed auctions are meant.
    """

    summaries: tuple[Summary, ...]
    buckets: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if any(not isinstance(b, int) or isinstance(b, bool) or not 0 <= b < BUCKETS for b in self.buckets):
            raise InvalidEntry(f"a bucket is an integer in 0..{BUCKETS - 1}")


@dataclass(frozen=True, slots=True)
class BucketDigest:
    """``count`` chains whose summaries hash to ``digest`` (32 bytes) in bucket ``bucket``."""

    bucket: int
    count: int
    digest: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.bucket, int) or not 0 <= self.bucket < BUCKETS:
            raise InvalidEntry(f"a bucket is an integer in 0..{BUCKETS - 1}")
        if not isinstance(self.count, int) or not 1 <= self.count <= 2**32:
            raise InvalidEntry("a bucket digest covers at least one chain")
        if not isinstance(self.digest, bytes) or len(self.digest) != 32:
            raise InvalidEntry("a bucket digest is 32 bytes")


@dataclass(frozen=True, slots=True)
class Digests:
    """One digest per non-empty bucket: a node's whole ledger in at most 256 x 40 bytes."""

    buckets: tuple[BucketDigest, ...]


@dataclass(frozen=True, slots=True)
class Entries:
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class FraudProofs:
    proofs: tuple[FraudProof, ...]


Payload = Summaries | Entries | FraudProofs | Digests


def _entry_msg(entry: Entry) -> EntryMsg:
    if isinstance(entry, Announcement):
        return AnnouncementMsg(entry.auction, entry.item, bytes.fromhex(entry.seller), entry.mechanism,
                               entry.created_at_ms, entry.signature)
    b = entry.body
    return HopMsg(b.auction, b.hop, bytes.fromhex(b.seller), bytes.fromhex(b.buyer), b.price,
                  bytes.fromhex(b.prev), entry.seller_sig, entry.buyer_sig)


def _entry(msg: EntryMsg) -> Entry:
    if isinstance(msg, AnnouncementMsg):
        return Announcement(auction=msg.auction, item=msg.item, seller=msg.seller.hex(),
                            mechanism=msg.mechanism, created_at_ms=msg.created_at_ms,
                            signature=msg.signature)
    body = HopEntry(auction=msg.auction, hop=msg.hop, seller=msg.seller.hex(), buyer=msg.buyer.hex(),
                    price=msg.price, prev=msg.prev.hex())
    return SignedHop(body=body, seller_sig=msg.seller_sig, buyer_sig=msg.buyer_sig)


def _part_msg(part: Entry | BidReceipt) -> ProofPartMsg:
    if isinstance(part, BidReceipt):
        return BidReceiptMsg(part.auction, bytes.fromhex(part.bidder), bytes.fromhex(part.commitment), part.sig)
    return _entry_msg(part)


def _part(msg: ProofPartMsg) -> Entry | BidReceipt:
    if isinstance(msg, BidReceiptMsg):
        return BidReceipt(auction=msg.auction, bidder=msg.bidder.hex(), commitment=msg.commitment.hex(), sig=msg.sig)
    return _entry(msg)


def _proof_msg(proof: FraudProof) -> FraudProofMsg:
    return FraudProofMsg(_part_msg(proof.first), _part_msg(proof.second))


def _proof(msg: FraudProofMsg) -> FraudProof:
    return FraudProof(_part(msg.first), _part(msg.second))


_record_encoder = msgspec.msgpack.Encoder()
_record_decoder = msgspec.msgpack.Decoder(RecordMsg)
_payload_decoder = msgspec.msgpack.Decoder(PayloadMsg)


def _guard(data: object) -> bytes:
    """Type, size and shape checks before msgspec runs (it recurses while skipping values)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise DecodeError(f"payload of {len(data)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    raw = bytes(data)
    try:
        check_shape(raw, max_depth=MAX_DEPTH, max_items=MAX_VALUES)
    except ValueError as exc:
        raise DecodeError(f"not a ledger payload: {exc}") from None
    return raw


# ------------------------------------------------------------ disk records


def encode_record(item: Entry | FraudProof) -> bytes:
    """The body of one on-disk record."""
    msg = _proof_msg(item) if isinstance(item, FraudProof) else _entry_msg(item)
    return _record_encoder.encode(msg)


def decode_record(data: bytes) -> Entry | FraudProof:
    raw = _guard(data)
    try:
        msg = _record_decoder.decode(raw)
        return _proof(msg) if isinstance(msg, FraudProofMsg) else _entry(msg)
    except (msgspec.MsgspecError, ValueError, LedgerError) as exc:  # ValueError: bad UTF-8 in a tag
        raise DecodeError(f"bad ledger record: {exc}") from None
    except Exception as exc:  # the contract is "DecodeError and nothing else", whatever the bytes
        raise DecodeError(f"undecodable ledger record: {type(exc).__name__}") from None


# ----------------------------------------------------------- gossip payloads


def encode_payload(payload: Payload) -> bytes:
    """Bytes for the gossip layer to carry (topic/kind framing is its business)."""
    msg: PayloadMsg
    if isinstance(payload, Summaries):
        msg = SummariesMsg([SummaryMsg(s.auction, s.length, bytes.fromhex(s.head)) for s in payload.summaries],
                           sorted(set(payload.buckets)))
    elif isinstance(payload, Digests):
        msg = DigestsMsg([BucketDigestMsg(d.bucket, d.count, d.digest) for d in payload.buckets])
    elif isinstance(payload, Entries):
        msg = EntriesMsg([_entry_msg(e) for e in payload.entries])
    else:
        msg = FraudProofsMsg([_proof_msg(p) for p in payload.proofs])
    return _record_encoder.encode(msg)


def decode_payload(data: bytes) -> Payload:
    """Parse a gossip payload.  Raises ``DecodeError`` and nothing else on bad input."""
    raw = _guard(data)
    try:
        msg = _payload_decoder.decode(raw)
        if isinstance(msg, SummariesMsg):
            return Summaries(tuple(Summary(s.auction, s.length, s.head.hex()) for s in msg.summaries),
                             tuple(msg.buckets))
        if isinstance(msg, EntriesMsg):
            return Entries(tuple(_entry(e) for e in msg.entries))
        if isinstance(msg, DigestsMsg):
            return Digests(tuple(BucketDigest(d.bucket, d.count, d.digest) for d in msg.buckets))
        return FraudProofs(tuple(_proof(p) for p in msg.proofs))
    except (msgspec.MsgspecError, ValueError, LedgerError) as exc:  # ValueError: bad UTF-8 in a tag
        raise DecodeError(f"bad ledger payload: {exc}") from None
    except Exception as exc:  # the contract is "DecodeError and nothing else", whatever the bytes
        raise DecodeError(f"undecodable ledger payload: {type(exc).__name__}") from None
