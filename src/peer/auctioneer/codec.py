"""Compact, strict wire encoding of the auctioneer messages (MessagePack arrays).

A message is ``[kind, field1, field2, ...]`` with nested dataclasses as arrays
too: a bid is ~130 bytes, so a 60 KiB gossip payload carries ~400 of them.
Decoding checks every type exactly (an int field takes no bool, float or
string) and raises :class:`WireError` and nothing else, whatever the bytes.
"""

from __future__ import annotations

import dataclasses
import typing
from enum import IntEnum
from functools import cache
from typing import Any

import msgspec

from peer.auctioneer import messages as m
from peer.auctioneer.bids import Equivocation, SignedBid
from peer.errors import PeerError

KINDS: dict[str, type] = {
    "bids": m.BidBatch, "receipt": m.BidReceipt, "close": m.CloseBids, "view": m.ViewDigest,
    "chunk": m.ViewChunk, "vector": m.VectorDigest, "commit": m.CoinCommit, "reveal": m.CoinReveal,
    "task": m.TaskResult, "osig": m.OutcomeSig, "outcome": m.OutcomeNotice, "abort": m.AbortNotice,
    "mine": m.BidderOutcome,
}
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder()
MAX_STR = 256


class WireError(PeerError):
    """Bytes that are not a valid auctioneer message."""


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return [_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    if isinstance(obj, IntEnum):
        return int(obj)
    if isinstance(obj, tuple):
        return [_plain(x) for x in obj]
    return obj


def encode(msg: m.Message) -> bytes:
    kind = _KIND_OF.get(type(msg))
    if kind is None:
        raise TypeError(f"not an auctioneer message: {type(msg).__name__}")
    return _ENCODER.encode([kind, *_plain(msg)])


@cache
def _hints(cls: type) -> list[tuple[str, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(cls)]


def _build(tp: Any, raw: Any) -> Any:
    origin = typing.get_origin(tp)
    if tp is int:
        if type(raw) is not int:
            raise WireError(f"expected an int, got {type(raw).__name__}")
        return raw
    if tp is bytes:
        if type(raw) is not bytes:
            raise WireError(f"expected bytes, got {type(raw).__name__}")
        return raw
    if tp is str:
        if type(raw) is not str or len(raw) > MAX_STR:
            raise WireError("expected a short string")
        return raw
    if isinstance(tp, type) and issubclass(tp, IntEnum):
        try:
            return tp(_build(int, raw))
        except ValueError:
            raise WireError(f"not a {tp.__name__}: {raw!r}") from None
    if origin is tuple:
        args = typing.get_args(tp)
        if type(raw) is not list:
            raise WireError("expected an array")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], x) for x in raw)
        if len(raw) != len(args):
            raise WireError("wrong array length")
        return tuple(_build(a, x) for a, x in zip(args, raw, strict=True))
    if dataclasses.is_dataclass(tp):
        fields = _hints(tp)
        if type(raw) is not list or len(raw) != len(fields):
            raise WireError(f"malformed {tp.__name__}")
        return tp(*[_build(ftp, x) for (_, ftp), x in zip(fields, raw, strict=True)])
    raise WireError(f"unsupported type {tp!r}")  # pragma: no cover - a message schema bug


def decode(data: bytes) -> m.Message:
    try:
        raw = _DECODER.decode(data)
    except (msgspec.DecodeError, ValueError, TypeError) as exc:
        raise WireError(f"not MessagePack: {exc}") from None
    if type(raw) is not list or not raw or raw[0] not in KINDS:
        raise WireError("not a tagged auctioneer message")
    try:
        return _build(KINDS[raw[0]], raw[1:])
    except RecursionError:
        raise WireError("nested too deep") from None


__all__ = ["KINDS", "WireError", "decode", "encode", "SignedBid", "Equivocation"]
