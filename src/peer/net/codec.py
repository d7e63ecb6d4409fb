"""The typed wire codec: msgspec structs encoded as MessagePack.

Why MessagePack (not JSON): keys, nonces, signatures and gossip payloads are raw
bytes, which msgpack carries natively where JSON would need base64 (a third
bigger and one more parser); msgspec's msgpack decoder is strict about types
(an int field never accepts a float, a string or a bool) and checks the
``Meta`` constraints below while decoding, so validation happens in one pass in
C.  Canonical form does not matter: nothing here is signed as msgpack.  Frames
are signed over the exact bytes received (``frames.py``), handshakes and gossip
over fixed binary layouts (``handshake.py``, ``gossip.py``).

Every struct is tagged (field ``"t"``) so one decoder handles a union, and
forbids unknown fields, so a peer cannot smuggle data past the validator.  The
SRA structs mirror :mod:`peer.sra.messages` field by field; the node shell never
sees them: :func:`encode_message` takes and :func:`decode_message` returns the
SRA dataclasses themselves.

:func:`decode_message` and :func:`decode_handshake` raise :class:`DecodeError`
and nothing else, whatever the bytes: receive paths need a single ``except``.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, TypeAlias

import msgspec
from msgspec import Meta

from peer.errors import LocalProtocolError, PeerError
from peer.net.msgpack_limits import check_shape
from peer.sra import messages as sra

MAX_U63 = 2**63 - 1  # msgpack ints are 64-bit; one sign bit of headroom for every consumer
MAX_TEXT = 128  # auction ids, item names, node names (a 64-char hex key fits)
MAX_TOPIC = 64
MAX_GOSSIP_PAYLOAD = 60 * 1024  # leaves room for the envelope and frame header in a 64 KiB frame
#: 2: a frame body may be a batch of messages (:func:`encode_batch`); a v1 peer would
#: count every batch as a garbage frame, so the handshake refuses the mix instead.
PROTOCOL_VERSION = 2
#: Every link and handshake message is one flat map of at most a dozen fields: any
#: nesting is refused before msgspec runs (it recurses while skipping a value).
MAX_MESSAGE_DEPTH = 1
MAX_MESSAGE_VALUES = 64

U63 = Annotated[int, Meta(ge=0, le=MAX_U63)]
Seq = Annotated[int, Meta(ge=1, le=MAX_U63)]
U16 = Annotated[int, Meta(ge=0, le=0xFFFF)]
Text = Annotated[str, Meta(max_length=MAX_TEXT)]
Topic = Annotated[str, Meta(min_length=1, max_length=MAX_TOPIC)]
Hash = Annotated[str, Meta(pattern="^[0-9a-f]{64}\\Z")]  # sha256 hex: one spelling per hash
Key32 = Annotated[bytes, Meta(min_length=32, max_length=32)]
Sig64 = Annotated[bytes, Meta(min_length=64, max_length=64)]
Payload = Annotated[bytes, Meta(max_length=MAX_GOSSIP_PAYLOAD)]
Budget = Annotated[float, Meta(ge=0, lt=1e9)]  # seconds; the SRA machine's own bound
OptSig = Annotated[bytes, Meta(max_length=64)]  # empty until the node shell signs
OptHash = Annotated[str, Meta(pattern="^([0-9a-f]{64})?\\Z")]  # a hash, or empty (hop 1's Open)


class DecodeError(PeerError):
    """Bytes from the network are not a valid message.  ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EncodeError(LocalProtocolError):
    """This node tried to send something its peers would reject (our bug, not theirs)."""


class _Wire(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="t"):
    pass


# --- SRA messages (mirror peer.sra.messages) --------------------------------


class InviteWire(_Wire, tag="invite", frozen=True):
    auction: Text
    item: Text
    seller: Text
    genesis: Hash
    budget: Budget | None = None


# Bid equivocation (#15.7, peer.sra.equivocation): the bidder's salt and signature on its
# commitment; empty only in tests of the link layer (a node refuses an unsigned Bid).
BidSalt = Annotated[bytes, Meta(max_length=32)]
BidSig = Annotated[bytes, Meta(max_length=64)]
MAX_RECEIPT_BYTES = 320 * 128  # peer.sra.equivocation.RECEIPTS_PER_MESSAGE receipts of 128 bytes


class BidWire(_Wire, tag="bid", frozen=True):
    auction: Text
    amount: U63
    salt: BidSalt = b""
    sig: BidSig = b""


class BidReceiptsWire(_Wire, tag="bid_receipts", frozen=True):
    auction: Text
    receipts: Annotated[bytes, Meta(max_length=MAX_RECEIPT_BYTES)]


class DeclineWire(_Wire, tag="decline", frozen=True):
    auction: Text


#: Verifiable coins (peer.sra.coins): the inviters a Bid counted travel as one comma-joined
#: string of public keys (hex has no commas), so a link message stays one flat map.
MAX_COIN_INVITERS = 256
Inviters = Annotated[str, Meta(max_length=MAX_COIN_INVITERS * (MAX_TEXT + 1))]


class CoinBidWire(_Wire, tag="coin_bid", frozen=True, kw_only=True):
    auction: Text
    amount: U63
    salt: BidSalt = b""  # before coin, as in sra.CoinBid (a subclass of Bid)
    sig: BidSig = b""
    coin: Sig64
    inviters: Inviters


class CoinDeclineWire(_Wire, tag="coin_decline", frozen=True):
    auction: Text
    coin: Sig64
    parent: Annotated[str, Meta(max_length=MAX_TEXT)]


class OpenWire(_Wire, tag="open", frozen=True):
    auction: Text
    hop: U63
    reserve: U63
    prev: Hash
    budget: Budget | None = None
    bought_from: Text = ""
    bought_prev: OptHash = ""


class ContextRequestWire(_Wire, tag="ctx_req", frozen=True):
    auction: Text
    hop: U63
    host: Text
    budget: Budget | None = None


class ContextReplyWire(_Wire, tag="ctx_reply", frozen=True):
    auction: Text
    hop: U63
    amount: U63 | None


class ContextBidWire(_Wire, tag="ctx_bid", frozen=True):
    auction: Text
    hop: U63
    amount: U63


class OfferWire(_Wire, tag="offer", frozen=True):
    auction: Text
    hop: U63
    price: U63
    entry: Hash
    budget: Budget | None = None
    tie_coin: OptSig = b""  # verifiable coins: the host's tie coin (peer.sra.coins)
    tied: Inviters = ""  # and the bidders tied for first place, comma-joined like CoinBid's inviters


class BuyConfirmWire(_Wire, tag="buy_confirm", frozen=True):
    auction: Text
    hop: U63
    buyer_sig: OptSig = b""


class RefuseWire(_Wire, tag="refuse", frozen=True):
    auction: Text
    hop: U63
    amount: U63


class AwardWire(_Wire, tag="award", frozen=True):
    auction: Text
    hop: U63
    price: U63
    entry: Hash
    seller_sig: OptSig = b""
    tie_coin: OptSig = b""  # as OfferWire's (the paper's rule sells by Award)
    tied: Inviters = ""


class SettledWire(_Wire, tag="settled", frozen=True):
    auction: Text
    winner: Text
    hops: U63
    price: U63
    sig: OptSig = b""  # the winner's signature (sra.messages.settled_signed_bytes)


# --- link-level messages -----------------------------------------------------


class Heartbeat(_Wire, tag="hb", frozen=True):
    """Keep-alive: proves the peer is alive and reading (see link.py)."""

    n: U63


class GossipEnvelope(_Wire, tag="gossip", frozen=True):
    """An origin-signed flooded message.  See gossip.py for what ``sig`` covers."""

    origin: Key32
    seq: Seq
    expires_ms: U63  # unix time in milliseconds
    topic: Topic
    payload: Payload
    sig: Sig64


# --- handshake ---------------------------------------------------------------


class Hello(_Wire, tag="hello", frozen=True):
    """Dialer -> listener: who I am, whom I expect, my fresh nonce."""

    v: U16
    pk: Key32
    to: Key32
    nonce: Key32


class HelloAck(_Wire, tag="hello_ack", frozen=True):
    """Listener -> dialer: who I am, my fresh nonce, my signature over the transcript."""

    v: U16
    pk: Key32
    nonce: Key32
    sig: Sig64


class Confirm(_Wire, tag="confirm", frozen=True):
    """Dialer -> listener: the dialer's signature over the transcript."""

    sig: Sig64


SraMessage: TypeAlias = sra.Message
LinkMessage: TypeAlias = SraMessage | GossipEnvelope | Heartbeat
HandshakeMessage: TypeAlias = Hello | HelloAck | Confirm

_SRA_WIRE: dict[type, type[_Wire]] = {
    sra.Invite: InviteWire,
    sra.Bid: BidWire,
    sra.BidReceipts: BidReceiptsWire,
    sra.Decline: DeclineWire,
    sra.CoinBid: CoinBidWire,
    sra.CoinDecline: CoinDeclineWire,
    sra.Open: OpenWire,
    sra.ContextRequest: ContextRequestWire,
    sra.ContextReply: ContextReplyWire,
    sra.ContextBid: ContextBidWire,
    sra.Offer: OfferWire,
    sra.Confirm: BuyConfirmWire,
    sra.Refuse: RefuseWire,
    sra.Award: AwardWire,
    sra.Settled: SettledWire,
}
_SRA_FROM_WIRE: dict[type[_Wire], type] = {w: d for d, w in _SRA_WIRE.items()}
#: Fields that hold a tuple of names in peer.sra.messages and one comma-joined string on the wire.
_NAME_LISTS: dict[type[_Wire], str] = {CoinBidWire: "inviters", OfferWire: "tied", AwardWire: "tied"}

_LinkWire = (
    InviteWire | BidWire | BidReceiptsWire | DeclineWire | CoinBidWire | CoinDeclineWire | OpenWire | ContextRequestWire | ContextReplyWire
    | ContextBidWire | OfferWire | BuyConfirmWire | RefuseWire | AwardWire | SettledWire | Heartbeat
    | GossipEnvelope
)
_encoder = msgspec.msgpack.Encoder()
_link_decoder = msgspec.msgpack.Decoder(_LinkWire)
_handshake_decoder = msgspec.msgpack.Decoder(HandshakeMessage)


def to_wire(msg: LinkMessage) -> _Wire:
    """The wire struct for ``msg`` (SRA dataclasses are converted field by field)."""
    if isinstance(msg, (GossipEnvelope, Heartbeat)):
        return msg
    wire_type = _SRA_WIRE.get(type(msg))
    if wire_type is None:
        raise EncodeError(f"not a link message: {type(msg).__name__}")
    fields = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}
    listed = _NAME_LISTS.get(wire_type)
    if listed is not None:
        names = fields[listed]
        if len(names) > MAX_COIN_INVITERS or any("," in name for name in names):
            raise EncodeError(f"{type(msg).__name__}: too many names in {listed}, or a name with a comma")
        fields[listed] = ",".join(names)
    try:
        return wire_type(**fields)
    except TypeError as exc:  # peer.sra.messages gained a field this codec does not mirror yet
        raise EncodeError(f"{type(msg).__name__} has no wire form for its fields: {exc}") from None


def from_wire(wire: Any) -> LinkMessage:
    """The inverse of :func:`to_wire`."""
    sra_type = _SRA_FROM_WIRE.get(type(wire))
    if sra_type is None:
        return wire  # type: ignore[no-any-return]  # GossipEnvelope / Heartbeat are their own form
    fields = {name: getattr(wire, name) for name in wire.__struct_fields__}
    listed = _NAME_LISTS.get(type(wire))
    if listed is not None:
        fields[listed] = tuple(fields[listed].split(",")) if fields[listed] else ()
    return sra_type(**fields)  # type: ignore[no-any-return]


def _encode_checked(wire: _Wire, decoder: msgspec.msgpack.Decoder[Any]) -> bytes:
    # msgspec checks Meta constraints only when decoding, so decode what we
    # encoded: this node never sends anything its peers would refuse.
    try:
        data = _encoder.encode(wire)
        decoder.decode(data)
    except (msgspec.MsgspecError, OverflowError, TypeError, ValueError) as exc:
        raise EncodeError(f"cannot send {type(wire).__name__}: {exc}") from None
    return data


#: The last message encoded and its bytes.  Every link message is immutable (frozen
#: dataclasses and structs of str, int and bytes), so the same object always encodes the
#: same way, and a message is often encoded several times in a row: the node sizes it for
#: its outbox, then the link encodes it, and a flood sends one envelope to every neighbour.
_last_encoded: tuple[object, bytes] = (None, b"")


def encode_message(msg: LinkMessage) -> bytes:
    """Encode an SRA message, a gossip envelope or a heartbeat as a frame body.

    Raises:
        EncodeError: the message breaks a wire limit (negative amount, text too long, ...).
    """
    global _last_encoded
    last, data = _last_encoded
    if last is msg:
        return data
    data = _encode_checked(to_wire(msg), _link_decoder)
    _last_encoded = (msg, data)
    return data


def _decode(data: object, decoder: msgspec.msgpack.Decoder[Any]) -> Any:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    try:
        check_shape(data, max_depth=MAX_MESSAGE_DEPTH, max_items=MAX_MESSAGE_VALUES)
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"invalid message: {exc}") from None
    except msgspec.DecodeError as exc:
        raise DecodeError(f"malformed msgpack: {exc}") from None
    except ValueError as exc:  # ShapeError included
        raise DecodeError(f"malformed msgpack: {exc}") from None
    except Exception as exc:
        # Not expected from msgspec, but the contract is "DecodeError and nothing else".
        raise DecodeError(f"undecodable: {type(exc).__name__}: {exc}") from None


def decode_message(data: object) -> LinkMessage:
    """Decode a frame body into an SRA dataclass, a :class:`GossipEnvelope` or a :class:`Heartbeat`.

    Raises:
        DecodeError: anything else (the only exception this function raises).
    """
    return from_wire(_decode(data, _link_decoder))


# --- batches: several messages in one frame body ---------------------------------
#
# A frame body is either one message (a MessagePack *map*, above) or a batch: a MessagePack
# *array* of 2 to MAX_BATCH *binary strings*, each one message's body exactly as
# encode_message makes it.  No message is an array, so the first byte tells the two apart;
# a batch element is decoded by decode_message, which refuses an array, so batches do not
# nest.  The frame signature covers the whole batch (frames.py).  Why binaries rather than
# an array of maps: the shape guard skips a binary in O(1), so the batch costs one short
# walk on top of each element's own (the per-message limits apply to every element
# unchanged), and each element's size is known without a second walk.

MAX_BATCH = 1024
_ARRAY_FIRST = frozenset(range(0x90, 0xA0)) | {0xDC, 0xDD}
_bodies_decoder = msgspec.msgpack.Decoder(list[bytes])


def is_batch(body: bytes) -> bool:
    """True if ``body`` is a batch (a MessagePack array), not a single message."""
    return bool(body) and body[0] in _ARRAY_FIRST


def batch_overhead(count: int) -> int:
    """Bytes of the array header of a batch of ``count`` elements."""
    return 1 if count < 16 else 3 if count < 0x10000 else 5


def element_overhead(size: int) -> int:
    """Bytes of the binary header of one ``size``-byte element."""
    return 2 if size < 0x100 else 3 if size < 0x10000 else 5


def encode_batch(bodies: list[bytes]) -> bytes:
    """One frame body carrying ``bodies`` (each from :func:`encode_message`), in order.

    Raises:
        EncodeError: fewer than 2 or more than MAX_BATCH bodies, or one that is itself a batch.
    """
    if not 2 <= len(bodies) <= MAX_BATCH:
        raise EncodeError(f"a batch holds 2 to {MAX_BATCH} messages, not {len(bodies)}")
    if any(is_batch(body) for body in bodies):
        raise EncodeError("batches do not nest")
    return _encoder.encode(bodies)


def decode_batch(data: bytes) -> list[tuple[LinkMessage, int]]:
    """Decode a batch body into its messages, in order, each with its body's size.

    Raises:
        DecodeError: anything else, including any element that is not one valid message
            (the only exception this function raises).
    """
    try:
        check_shape(data, max_depth=1, max_items=1 + MAX_BATCH)
        bodies = _bodies_decoder.decode(data)
    except (msgspec.MsgspecError, ValueError) as exc:
        raise DecodeError(f"malformed batch: {exc}") from None
    if len(bodies) < 2:
        raise DecodeError(f"a batch of {len(bodies)} message(s): one is sent plain, none not at all")
    out = []
    for i, body in enumerate(bodies):
        try:
            out.append((decode_message(body), len(body)))
        except DecodeError as exc:
            raise DecodeError(f"batch element {i}: {exc.reason}") from None
    return out


def encode_handshake(msg: HandshakeMessage) -> bytes:
    return _encode_checked(msg, _handshake_decoder)


def decode_handshake(data: object) -> HandshakeMessage:
    """Decode one handshake message.

    Raises:
        DecodeError: anything else (the only exception this function raises).
    """
    return _decode(data, _handshake_decoder)  # type: ignore[no-any-return]
