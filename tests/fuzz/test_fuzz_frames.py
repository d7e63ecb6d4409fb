"""Grammar-aware fuzzing of ``FrameOpener.open`` / ``open_body``.

tests/net/test_net_frames.py feeds random bytes and hand-picked bad frames.
Here every input starts from a *genuine* frame of the session, then:

* one byte is changed anywhere in it: the error kind is exactly the one the
  position implies (sequence number -> replayed/reordered, signature or body ->
  forged), and the opener's state is unchanged but for that one counter;
* it is cut or extended: refused, state unchanged;
* its body is validly signed but is msgpack of the wrong shape: GarbageFrame,
  and (as documented) the sequence number is consumed;
* a stateful run interleaves genuine frames, replays, skips, forgeries by a
  third party, reflections, frames from another session, oversized and
  non-bytes input, and checks the opener against a model after every step.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from peer.net.codec import DecodeError, GossipEnvelope, Heartbeat, decode_message
from peer.net.frames import (
    HEADER_BYTES,
    SEQ_BYTES,
    Direction,
    FrameError,
    FrameErrorKind,
    FrameOpener,
    FrameSealer,
    ReorderedFrame,
    signed_bytes,
)
from peer.net.handshake import DialerHandshake, ListenerHandshake, Session
from peer.net.identity import Identity
from peer.sra import messages as sra

from ._common import fuzz, msgpack_values

D = Identity.from_seed(b"D" * 32)
L = Identity.from_seed(b"L" * 32)
M = Identity.from_seed(b"M" * 32)
MAX_FRAME = 1024


def sessions(nonce: bytes = b"n" * 32) -> tuple[Session, Session]:
    dialer = DialerHandshake(D, L.public_key, nonce=nonce)
    listener = ListenerHandshake(L, {D.public_key}, nonce=b"o" * 32)
    ack = listener.receive(dialer.start())
    assert ack is not None
    listener.receive(dialer.receive(ack))
    return dialer.session, listener.session


DIALER, LISTENER = sessions()
OTHER_DIALER, OTHER_LISTENER = sessions(b"x" * 32)  # the same two nodes, another session

texts = st.text(max_size=12)
amounts = st.integers(0, 2**63 - 1)
hashes = st.binary(min_size=32, max_size=32).map(bytes.hex)
messages = st.one_of(
    st.builds(sra.Bid, auction=texts, amount=amounts),
    st.builds(sra.Decline, auction=texts),
    st.builds(sra.Open, auction=texts, hop=amounts, reserve=amounts, prev=hashes),
    st.builds(sra.Award, auction=texts, hop=amounts, price=amounts, entry=hashes),
    st.builds(sra.Settled, auction=texts, winner=texts, hops=amounts, price=amounts),
    st.builds(Heartbeat, n=amounts),
    st.builds(GossipEnvelope, origin=st.binary(min_size=32, max_size=32), seq=st.integers(1, 2**63 - 1),
              expires_ms=amounts, topic=st.text(min_size=1, max_size=8), payload=st.binary(max_size=64),
              sig=st.binary(min_size=64, max_size=64)),
)


def state(opener: FrameOpener) -> tuple[int, int, Counter[FrameErrorKind]]:
    return opener.last_seq, opener.frames_in, Counter(opener.rejected)


def advanced(n: int) -> tuple[FrameSealer, FrameOpener]:
    """A dialer sealer and listener opener that have already exchanged ``n`` genuine frames."""
    sealer, opener = FrameSealer(DIALER, D), FrameOpener(LISTENER, max_frame=MAX_FRAME)
    for i in range(n):
        opener.open(sealer.seal(Heartbeat(n=i)))
    return sealer, opener


def expect_refused(opener: FrameOpener, frame: object, kind: FrameErrorKind, *, consumed: bool = False) -> None:
    last, frames_in, rejected = state(opener)
    with pytest.raises(FrameError) as info:
        opener.open(frame)
    assert info.value.kind is kind, f"expected {kind.value}, got {info.value}"
    assert info.value.reason
    rejected[kind] += 1
    step = 1 if consumed else 0
    assert state(opener) == (last + step, frames_in + step, rejected)


@fuzz(300)
@given(st.integers(0, 3), messages, st.data())
def test_one_changed_byte_is_refused_with_the_kind_its_position_implies(
    sent: int, msg: Any, data: st.DataObject
) -> None:
    sealer, opener = advanced(sent)
    frame = sealer.seal(msg)
    assume_small = len(frame) <= MAX_FRAME
    pos = data.draw(st.integers(0, len(frame) - 1), label="pos")
    mutated = bytearray(frame)
    mutated[pos] ^= data.draw(st.integers(1, 255), label="xor")
    if not assume_small:
        expect_refused(opener, bytes(mutated), FrameErrorKind.OVERSIZED)
    elif pos < SEQ_BYTES:
        seq = int.from_bytes(mutated[:SEQ_BYTES], "big")
        kind = FrameErrorKind.REPLAYED if seq <= sent else FrameErrorKind.REORDERED
        expect_refused(opener, bytes(mutated), kind)
        with pytest.raises(FrameError) as info:
            opener.open(bytes(mutated))
        assert not getattr(info.value, "genuine", False)  # a rewritten seq is never the peer's own frame
    else:
        expect_refused(opener, bytes(mutated), FrameErrorKind.FORGED)
    if assume_small:  # the genuine frame still passes afterwards: nothing was consumed
        assert opener.open(frame) == msg


@fuzz(200)
@given(st.integers(0, 2), messages, st.data())
def test_cut_or_extended_frames_are_refused_without_a_trace(sent: int, msg: Any, data: st.DataObject) -> None:
    sealer, opener = advanced(sent)
    frame = sealer.seal(msg)
    if data.draw(st.booleans(), label="cut"):
        mutated = frame[: data.draw(st.integers(0, len(frame) - 1), label="at")]
    else:
        mutated = frame + data.draw(st.binary(min_size=1, max_size=64), label="tail")
    if len(mutated) > MAX_FRAME:
        kind = FrameErrorKind.OVERSIZED
    elif len(mutated) < HEADER_BYTES:
        kind = FrameErrorKind.GARBAGE
    else:
        kind = FrameErrorKind.FORGED
    expect_refused(opener, mutated, kind)


@fuzz(250)
@given(st.integers(0, 2), st.one_of(
    msgpack_values.map(msgspec.msgpack.encode),
    st.dictionaries(st.sampled_from(["t", "auction", "amount", "n", "hop"]), msgpack_values, max_size=4)
    .map(msgspec.msgpack.encode),
    st.builds(lambda tag, n: msgspec.msgpack.encode({"t": tag, "n": n}),
              st.sampled_from(["hb", "bid", "hello", "confirm", "gossip", "HB"]), msgpack_values),
    st.binary(max_size=64),
))
def test_validly_signed_garbage_bodies_consume_their_sequence_number(sent: int, body: bytes) -> None:
    sealer, opener = advanced(sent)
    frame = sealer.seal_body(body)
    try:
        expected = decode_message(body)
    except DecodeError:
        expect_refused(opener, frame, FrameErrorKind.GARBAGE, consumed=True)
        assert opener.open_body(sealer.seal_body(b"next")) == b"next"  # the session goes on
    else:
        assert opener.open(frame) == expected
        assert opener.last_seq == sent + 1


@fuzz(100)
@given(st.one_of(st.none(), st.integers(), st.text(max_size=80), st.builds(bytearray, st.binary(max_size=80)),
                 st.builds(memoryview, st.binary(max_size=80)), st.lists(st.integers(0, 255), max_size=8)))
def test_non_bytes_input_is_garbage(data: object) -> None:
    _, opener = advanced(1)
    expect_refused(opener, data, FrameErrorKind.GARBAGE)
    # open_body counts exactly the same way
    last, frames_in, rejected = state(opener)
    with pytest.raises(FrameError):
        opener.open_body(data)
    rejected[FrameErrorKind.GARBAGE] += 1
    assert state(opener) == (last, frames_in, rejected)


class FrameSession(RuleBasedStateMachine):
    """One opener under a stream of genuine and hostile frames, checked against a model."""

    @initialize()
    def setup(self) -> None:
        self.sealer = FrameSealer(DIALER, D)
        self.opener = FrameOpener(LISTENER, max_frame=MAX_FRAME)
        self.sent: list[bytes] = []  # every frame sealed so far; sent[i] has seq i + 1
        self.model_last = 0
        self.model_in = 0
        self.model_rejected: Counter[FrameErrorKind] = Counter()

    def _seal_until(self, seq: int) -> bytes:
        while len(self.sent) < seq:
            self.sent.append(self.sealer.seal(Heartbeat(n=len(self.sent))))
        return self.sent[seq - 1]

    def _refused(self, frame: object, kind: FrameErrorKind) -> FrameError:
        with pytest.raises(FrameError) as info:
            self.opener.open(frame)
        assert info.value.kind is kind, (kind, info.value)
        self.model_rejected[kind] += 1
        return info.value

    @rule()
    def genuine_next(self) -> None:
        frame = self._seal_until(self.model_last + 1)
        assert self.opener.open(frame) == Heartbeat(n=self.model_last)
        self.model_last += 1
        self.model_in += 1

    @precondition(lambda self: self.model_last > 0)
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        self._refused(self.sent[data.draw(st.integers(0, self.model_last - 1))], FrameErrorKind.REPLAYED)

    @rule(ahead=st.integers(2, 4))
    def skip_ahead(self, ahead: int) -> None:
        # The peer's own frame: frames were lost, the shell must close the link (issue 17.5).
        error = self._refused(self._seal_until(self.model_last + ahead), FrameErrorKind.REORDERED)
        assert isinstance(error, ReorderedFrame) and error.genuine

    @rule(ahead=st.integers(2, 2**20))
    def injected_skip_ahead(self, ahead: int) -> None:
        # A genuine frame with its seq rewritten: not the peer's, only noise (the link lives on).
        frame = self._seal_until(self.model_last + 1)
        bumped = (self.model_last + ahead).to_bytes(SEQ_BYTES, "big") + frame[SEQ_BYTES:]
        error = self._refused(bumped, FrameErrorKind.REORDERED)
        assert isinstance(error, ReorderedFrame) and not error.genuine

    @rule(signer=st.sampled_from(["mallory", "reflected", "other_session", "wrong_direction"]), body=st.binary(max_size=40))
    def forged(self, signer: str, body: bytes) -> None:
        seq = self.model_last + 1
        if signer == "mallory":
            sig = M.sign(signed_bytes(LISTENER.session_id, Direction.DIALER_TO_LISTENER, seq, body))
        elif signer == "reflected":  # the listener's own frame bounced back
            sig = L.sign(signed_bytes(LISTENER.session_id, Direction.LISTENER_TO_DIALER, seq, body))
        elif signer == "other_session":
            sig = D.sign(signed_bytes(OTHER_LISTENER.session_id, Direction.DIALER_TO_LISTENER, seq, body))
        else:
            sig = D.sign(signed_bytes(LISTENER.session_id, Direction.LISTENER_TO_DIALER, seq, body))
        self._refused(seq.to_bytes(SEQ_BYTES, "big") + sig + body, FrameErrorKind.FORGED)

    @rule(data=st.data())
    def mutated_next(self, data: st.DataObject) -> None:
        frame = bytearray(self._seal_until(self.model_last + 1))
        pos = data.draw(st.integers(SEQ_BYTES, len(frame) - 1))
        frame[pos] ^= data.draw(st.integers(1, 255))
        self._refused(bytes(frame), FrameErrorKind.FORGED)

    @rule(junk=st.binary(max_size=HEADER_BYTES - 1) | st.text(max_size=10))
    def garbage(self, junk: object) -> None:
        self._refused(junk, FrameErrorKind.GARBAGE)

    @rule(extra=st.integers(1, 100))
    def oversized(self, extra: int) -> None:
        frame = self._seal_until(self.model_last + 1)
        self._refused(frame + bytes(MAX_FRAME - len(frame) + extra), FrameErrorKind.OVERSIZED)

    @rule(body=st.sampled_from([b"\xc1", b"\x80", msgspec.msgpack.encode({"t": "hb"}), b""]))
    def signed_garbage_body(self, body: bytes) -> None:
        # Signed by the dialer for the next seq (by hand: the sealer may have sealed ahead).
        seq = self.model_last + 1
        self._seal_until(seq)
        sig = D.sign(signed_bytes(LISTENER.session_id, Direction.DIALER_TO_LISTENER, seq, body))
        frame = seq.to_bytes(SEQ_BYTES, "big") + sig + body
        with pytest.raises(FrameError) as info:
            self.opener.open(frame)
        assert info.value.kind is FrameErrorKind.GARBAGE
        self.model_rejected[FrameErrorKind.GARBAGE] += 1
        self.model_last += 1  # documented: a validly signed, in-order frame consumes its seq
        self.model_in += 1

    @invariant()
    def matches_the_model(self) -> None:
        assert self.opener.last_seq == self.model_last
        assert self.opener.frames_in == self.model_in
        assert +self.opener.rejected == +self.model_rejected
        assert self.opener.bad_frames == sum(self.model_rejected.values())


FrameSession.TestCase.settings = fuzz(80, stateful_step_count=25)
test_frame_session = FrameSession.TestCase
