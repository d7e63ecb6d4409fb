"""Signed link frames: what travels on a link after the handshake.

Wire layout of one frame (one binary websocket message)::

    seq  u64 big-endian   (8 bytes)   per direction, 1, 2, 3, ... with no gaps
    sig  Ed25519          (64 bytes)  sender's signature over signed_bytes(...)
    body msgpack          (rest)      one LinkMessage (codec.encode_message), or a batch:
                                      an array of 2+ such bodies (codec.encode_batch)

    signed_bytes = lp(DOMAIN) || session_id (32) || direction (1) || seq (u64 BE) || lp(body)

Why: the session id binds a frame to one handshake, so frames cannot be
replayed into another session; the direction byte and the sender's key stop a
frame from being reflected back to its sender; ``seq == last + 1`` exactly
rejects replays and reorderings inside a session (the websocket is a reliable,
ordered pipe, so any gap is an attack or a bug).  The signature covers the
*body bytes as received*, never a re-encoding of the decoded message, so no
canonical-encoding question arises (the libp2p pubsub lesson).

Why batches: a frame's fixed costs (one Ed25519 signature and one verification,
one websocket message, one send timeout) were most of a message's CPU on a busy
node, and a busy node's outbox to a neighbour often holds several messages at
once.  The writer sends all of them as one frame; the signature covers the
whole batch, and the receiver delivers its messages in order.  A batch that
does not decode is one garbage frame, like any body that does not decode.

The receiver checks, cheapest first: size, header shape, replay, signature,
sequence gap, then decodes the body.  A frame that skips ahead is refused either
way, but whether its signature verifies matters: a genuine one means the peer's
frames in between were lost, so every later frame would be refused as well and
the link must be closed (``ReorderedFrame.genuine``; issue 17.5), while a forged
one is only injected noise.  A rejected frame leaves the opener's state
unchanged, except a validly signed, in-order frame whose body does not decode:
its sequence number is consumed (it *was* the peer's frame N), then it is
reported as garbage.  Nothing here touches I/O.
"""

from __future__ import annotations

from collections import Counter
from enum import Enum, IntEnum

from peer.errors import LocalProtocolError, PeerError
from peer.net.codec import DecodeError, LinkMessage, decode_batch, decode_message, encode_batch, encode_message, is_batch
from peer.net.handshake import Role, Session, lp
from peer.net.identity import SIGNATURE_BYTES, Identity, verify

DOMAIN = b"peer/net/frame/v1"
SEQ_BYTES = 8
HEADER_BYTES = SEQ_BYTES + SIGNATURE_BYTES
DEFAULT_MAX_FRAME = 64 * 1024
MAX_SEQ = 2**64 - 1
DEFAULT_ABUSE_THRESHOLD = 8


class Direction(IntEnum):
    DIALER_TO_LISTENER = 1
    LISTENER_TO_DIALER = 2

    @classmethod
    def sent_by(cls, role: Role) -> Direction:
        return cls.DIALER_TO_LISTENER if role is Role.DIALER else cls.LISTENER_TO_DIALER


def signed_bytes(session_id: bytes, direction: Direction, seq: int, body: bytes) -> bytes:
    return lp(DOMAIN) + session_id + bytes([direction]) + seq.to_bytes(SEQ_BYTES, "big") + lp(body)


class FrameErrorKind(str, Enum):
    FORGED = "forged"
    REPLAYED = "replayed"
    REORDERED = "reordered"
    OVERSIZED = "oversized"
    GARBAGE = "garbage"


class FrameError(PeerError):
    """A received frame was refused.  Subclasses name the kind; ``kind`` carries it too."""

    kind: FrameErrorKind

    def __init__(self, reason: str) -> None:
        super().__init__(f"{self.kind.value} frame: {reason}")
        self.reason = reason


class ForgedFrame(FrameError):
    kind = FrameErrorKind.FORGED


class ReplayedFrame(FrameError):
    kind = FrameErrorKind.REPLAYED


class ReorderedFrame(FrameError):
    """A frame that skips ahead.  ``genuine`` when its signature verifies: the peer
    really sent it, so the frames in between are lost and every later frame would
    be refused too (the link is deaf: the shell must close it)."""

    kind = FrameErrorKind.REORDERED

    def __init__(self, reason: str, *, genuine: bool = False) -> None:
        super().__init__(reason)
        self.genuine = genuine


class OversizedFrame(FrameError):
    kind = FrameErrorKind.OVERSIZED


class GarbageFrame(FrameError):
    kind = FrameErrorKind.GARBAGE


class FrameTooLarge(LocalProtocolError):
    """This node tried to send a frame over the limit.  trio-websocket enforces
    its limit on receive only (trio-websocket#82), so the sender checks too."""


class FrameSealer:
    """Signs this side's outgoing frames for one session."""

    def __init__(self, session: Session, identity: Identity, *, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if identity.public_key != session.local:
            raise ValueError("the sealing identity is not this session's local key")
        self._session = session
        self._identity = identity
        self._direction = Direction.sent_by(session.role)
        self.max_frame = max_frame
        self.last_seq = 0

    def seal_body(self, body: bytes) -> bytes:
        """Frame an already-encoded body; takes the next sequence number."""
        size = HEADER_BYTES + len(body)
        if size > self.max_frame:
            raise FrameTooLarge(f"frame of {size} bytes exceeds the {self.max_frame}-byte limit")
        if self.last_seq >= MAX_SEQ:
            raise LocalProtocolError("sequence numbers exhausted: reconnect for a new session")
        seq = self.last_seq + 1
        sig = self._identity.sign(signed_bytes(self._session.session_id, self._direction, seq, body))
        self.last_seq = seq
        return seq.to_bytes(SEQ_BYTES, "big") + sig + body

    def seal(self, msg: LinkMessage) -> bytes:
        return self.seal_body(encode_message(msg))

    def seal_bodies(self, bodies: list[bytes]) -> bytes:
        """One frame carrying ``bodies`` in order: the plain form for one, a batch for more.

        Raises:
            FrameTooLarge: together they do not fit in ``max_frame`` (nothing is consumed).
        """
        return self.seal_body(bodies[0] if len(bodies) == 1 else encode_batch(bodies))


class FrameOpener:
    """Verifies the peer's incoming frames for one session and counts what it refuses."""

    def __init__(self, session: Session, *, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._session = session
        self._direction = Direction.sent_by(session.role.other)
        self.max_frame = max_frame
        self.last_seq = 0
        self.frames_in = 0
        self.rejected: Counter[FrameErrorKind] = Counter()

    def open_body(self, data: object) -> bytes:
        """Check one frame and return its body bytes (not yet decoded).

        Raises:
            FrameError: the frame is refused; it has been counted in ``rejected``.
        """
        try:
            return self._check(data)
        except FrameError as exc:
            self.rejected[exc.kind] += 1
            raise

    def open(self, data: object) -> LinkMessage:
        """Check one frame and decode its body.

        Raises:
            FrameError: the frame is refused; it has been counted in ``rejected``.
        """
        body = self.open_body(data)
        try:
            return decode_message(body)
        except DecodeError as exc:
            self.rejected[FrameErrorKind.GARBAGE] += 1
            raise GarbageFrame(f"signed body does not decode: {exc.reason}") from None

    def open_all(self, data: object) -> list[tuple[LinkMessage, int]]:
        """Check one frame and decode every message it carries, in order, each with a
        size in bytes (the whole frame for a plain one, its element for a batch).

        Raises:
            FrameError: the frame is refused; it has been counted in ``rejected``.
        """
        body = self.open_body(data)
        try:
            if is_batch(body):
                return decode_batch(body)
            return [(decode_message(body), len(body) + HEADER_BYTES)]
        except DecodeError as exc:
            self.rejected[FrameErrorKind.GARBAGE] += 1
            raise GarbageFrame(f"signed body does not decode: {exc.reason}") from None

    def _check(self, data: object) -> bytes:
        if not isinstance(data, bytes):
            raise GarbageFrame(f"expected a binary message, got {type(data).__name__}")
        if len(data) > self.max_frame:
            raise OversizedFrame(f"{len(data)} bytes exceeds the {self.max_frame}-byte limit")
        if len(data) < HEADER_BYTES:
            raise GarbageFrame(f"{len(data)} bytes is shorter than the {HEADER_BYTES}-byte header")
        seq = int.from_bytes(data[:SEQ_BYTES], "big")
        if seq <= self.last_seq:
            raise ReplayedFrame(f"seq {seq} was already seen (last {self.last_seq})")
        sig, body = data[SEQ_BYTES:HEADER_BYTES], data[HEADER_BYTES:]
        genuine = verify(self._session.peer, signed_bytes(self._session.session_id, self._direction, seq, body), sig)
        if seq != self.last_seq + 1:
            lost = "frames in between were lost" if genuine else "not signed by the peer"
            raise ReorderedFrame(f"seq {seq} skips ahead (expected {self.last_seq + 1}): {lost}", genuine=genuine)
        if not genuine:
            raise ForgedFrame(f"seq {seq}: signature does not verify")
        self.last_seq = seq
        self.frames_in += 1
        return body

    @property
    def bad_frames(self) -> int:
        return sum(self.rejected.values())


class AbuseCounter:
    """Says when a link has misbehaved enough to be closed.

    Over a reliable ordered websocket an honest peer never produces a bad frame,
    so the threshold is small; it is not 1 only so that one bug in a peer's
    encoder shows up in the counters before the link flaps.
    """

    def __init__(self, threshold: int = DEFAULT_ABUSE_THRESHOLD) -> None:
        if threshold < 1:
            raise ValueError("the abuse threshold is at least 1")
        self.threshold = threshold
        self.count = 0

    def record(self) -> bool:
        """Count one bad frame; True when the link should now be closed."""
        self.count += 1
        return self.should_close

    @property
    def should_close(self) -> bool:
        return self.count >= self.threshold
