"""QPQ gossip payloads on the wire: msgspec maps tagged by ``type``, and their one decoder.

Moved out of the node shell so that the decoder of untrusted bytes lives with
the messages and is fuzzed with them.  :func:`decode` raises
:class:`QpqDecodeError` (a ``ValueError``, which is what the shell catches) and
nothing else, whatever the bytes: before msgspec runs, the shape of the
MessagePack is bounded (:mod:`peer.net.msgpack_limits`), because msgspec
recurses while it skips a value, and a deeply nested value placed before the
``type`` key used to raise ``RecursionError`` out of the decoder.

The field types are deliberately those of the original shell (no extra bounds
here): what a value means, and whether a digest or nonce has the right length,
is the machine's judgement, which flags a cheating member rather than dropping
its message.
"""

from __future__ import annotations

import msgspec

from peer.net.msgpack_limits import check_shape
from peer.qpq.decide import Level
from peer.qpq.messages import Commit, Message, Reveal

#: A QPQ payload is one flat map (depth 1) of at most six fields.
MAX_DEPTH = 1
MAX_VALUES = 32


class QpqDecodeError(ValueError):
    """Bytes that are not a well-formed QPQ payload.  The only error :func:`decode` raises."""


class KickoffWire(msgspec.Struct, tag="kickoff", frozen=True, forbid_unknown_fields=True):
    stream: str
    start_ms: int


class CommitWire(msgspec.Struct, tag="commit", frozen=True, forbid_unknown_fields=True):
    stream: str
    round: int
    level: int
    digest: bytes
    support: int


class RevealWire(msgspec.Struct, tag="reveal", frozen=True, forbid_unknown_fields=True):
    stream: str
    round: int
    level: int
    value: int
    nonce: bytes


QpqWire = KickoffWire | CommitWire | RevealWire
_decoder = msgspec.msgpack.Decoder(QpqWire)
_encoder = msgspec.msgpack.Encoder()
_LEVELS = {int(Level.CLUSTER): Level.CLUSTER, int(Level.WINNER): Level.WINNER}


def encode(msg: Message | KickoffWire) -> bytes:
    if isinstance(msg, Commit):
        return _encoder.encode(CommitWire(msg.stream, msg.round, int(msg.level), msg.digest, msg.support))
    if isinstance(msg, Reveal):
        return _encoder.encode(RevealWire(msg.stream, msg.round, int(msg.level), msg.value, msg.nonce))
    return _encoder.encode(msg)


def decode(payload: object) -> Message | KickoffWire:
    """Parse a QPQ gossip payload.  Raises :class:`QpqDecodeError` and nothing else."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise QpqDecodeError(f"not a QPQ payload: expected bytes, got {type(payload).__name__}")
    try:
        check_shape(payload, max_depth=MAX_DEPTH, max_items=MAX_VALUES)
        wire = _decoder.decode(payload)
    except (msgspec.MsgspecError, ValueError) as exc:  # ShapeError and bad UTF-8 are ValueErrors
        raise QpqDecodeError(f"not a QPQ payload: {exc}") from None
    except Exception as exc:  # the contract is "QpqDecodeError and nothing else", whatever the bytes
        raise QpqDecodeError(f"not a QPQ payload: {type(exc).__name__}") from None
    if isinstance(wire, KickoffWire):
        return wire
    level = _LEVELS.get(wire.level)
    if level is None:
        raise QpqDecodeError(f"unknown level {wire.level}")
    if isinstance(wire, CommitWire):
        return Commit(stream=wire.stream, round=wire.round, level=level, digest=wire.digest, support=wire.support)
    return Reveal(stream=wire.stream, round=wire.round, level=level, value=wire.value, nonce=wire.nonce)
