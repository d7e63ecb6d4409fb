"""Frames: every kind of bad frame is refused with its own error and counted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peer.net.codec import GossipEnvelope, Heartbeat
from peer.net.frames import (
    HEADER_BYTES,
    AbuseCounter,
    Direction,
    ForgedFrame,
    FrameError,
    FrameErrorKind,
    FrameOpener,
    FrameSealer,
    FrameTooLarge,
    GarbageFrame,
    OversizedFrame,
    ReorderedFrame,
    ReplayedFrame,
    signed_bytes,
)
from peer.net.handshake import DialerHandshake, ListenerHandshake, Session
from peer.net.identity import Identity
from peer.sra.messages import Bid, Settled

D = Identity.from_seed(b"d" * 32)
L = Identity.from_seed(b"l" * 32)
M = Identity.from_seed(b"m" * 32)


def sessions() -> tuple[Session, Session]:
    dialer, listener = DialerHandshake(D, L.public_key), ListenerHandshake(L, {D.public_key})
    ack = listener.receive(dialer.start())
    assert ack is not None
    listener.receive(dialer.receive(ack))
    return dialer.session, listener.session


@pytest.fixture
def pair() -> tuple[FrameSealer, FrameOpener, FrameSealer, FrameOpener]:
    ds, ls = sessions()
    return FrameSealer(ds, D), FrameOpener(ls), FrameSealer(ls, L), FrameOpener(ds)


def test_frames_flow_both_ways_in_order(pair: tuple[FrameSealer, FrameOpener, FrameSealer, FrameOpener]) -> None:
    d_seal, l_open, l_seal, d_open = pair
    msgs = [Bid(auction="a", amount=i) for i in range(5)]
    assert [l_open.open(d_seal.seal(m)) for m in msgs] == msgs
    assert d_open.open(l_seal.seal(Heartbeat(n=1))) == Heartbeat(n=1)
    assert (l_open.frames_in, l_open.last_seq, d_open.frames_in) == (5, 5, 1)
    assert l_open.bad_frames == 0


def test_forged_frames(pair: tuple[FrameSealer, FrameOpener, FrameSealer, FrameOpener]) -> None:
    d_seal, l_open, _, _ = pair
    frame = d_seal.seal(Bid(auction="a", amount=10))
    tampered = frame[:-1] + bytes([frame[-1] ^ 1])  # relay flips one body bit
    with pytest.raises(ForgedFrame):
        l_open.open(tampered)
    bad_sig = frame[:8] + bytes(64) + frame[HEADER_BYTES:]
    with pytest.raises(ForgedFrame):
        l_open.open(bad_sig)
    # A third party signs a frame for the session it does not own.
    ls = l_open._session
    body = frame[HEADER_BYTES:]
    forged_sig = M.sign(signed_bytes(ls.session_id, Direction.DIALER_TO_LISTENER, 1, body))
    by_mallory = (1).to_bytes(8, "big") + forged_sig + body
    with pytest.raises(ForgedFrame):
        l_open.open(by_mallory)
    assert l_open.rejected[FrameErrorKind.FORGED] == 3 and l_open.last_seq == 0
    assert l_open.open(frame) == Bid(auction="a", amount=10)  # the genuine frame still passes


def test_reflected_frame_is_forged(pair: tuple[FrameSealer, FrameOpener, FrameSealer, FrameOpener]) -> None:
    d_seal, _, _, d_open = pair
    # The dialer's own frame bounced back at it: wrong key and wrong direction.
    with pytest.raises(ForgedFrame):
        d_open.open(d_seal.seal(Bid(auction="a", amount=1)))


def test_replayed_frames(pair: tuple[FrameSealer, FrameOpener, FrameSealer, FrameOpener]) -> None:
    d_seal, l_open, _, _ = pair
    first = d_seal.seal(Bid(auction="a", amount=1))
    l_open.open(first)
    with pytest.raises(ReplayedFrame):
        l_open.open(first)
    # ... and into another session between the same two nodes.
    _, ls2 = sessions()
    with pytest.raises(ForgedFrame):
        FrameOpener(ls2).open(first)
    assert l_open.rejected[FrameErrorKind.REPLAYED] == 1


def test_reordered_frames(pair: tuple[FrameSealer, FrameOpener, FrameSealer, FrameOpener]) -> None:
    d_seal, l_open, _, _ = pair
    f1, f2 = d_seal.seal(Bid(auction="a", amount=1)), d_seal.seal(Bid(auction="a", amount=2))
    with pytest.raises(ReorderedFrame):
        l_open.open(f2)
    assert l_open.open(f1).amount == 1  # type: ignore[union-attr]
    assert l_open.open(f2).amount == 2  # type: ignore[union-attr]
    assert l_open.rejected[FrameErrorKind.REORDERED] == 1


def test_oversized_frames_refused_on_both_ends() -> None:
    ds, ls = sessions()
    big = GossipEnvelope(origin=D.public_key, seq=1, expires_ms=1, topic="t", payload=b"x" * 2000, sig=bytes(64))
    with pytest.raises(FrameTooLarge):
        FrameSealer(ds, D, max_frame=1024).seal(big)
    frame = FrameSealer(ds, D).seal(big)
    opener = FrameOpener(ls, max_frame=1024)
    with pytest.raises(OversizedFrame):
        opener.open(frame)
    assert opener.rejected[FrameErrorKind.OVERSIZED] == 1


def test_garbage_frames(pair: tuple[FrameSealer, FrameOpener, FrameSealer, FrameOpener]) -> None:
    d_seal, l_open, _, _ = pair
    for junk in (b"", b"short", "a text message"):
        with pytest.raises(GarbageFrame):
            l_open.open(junk)
    # Validly signed and in order, but the body is not a message: the seq is consumed.
    with pytest.raises(GarbageFrame, match="does not decode"):
        l_open.open(d_seal.seal_body(b"\xc1not msgpack"))
    assert l_open.last_seq == 1
    assert l_open.open(d_seal.seal(Settled(auction="a", winner="w", hops=1, price=3))).hops == 1  # type: ignore[union-attr]
    assert l_open.rejected[FrameErrorKind.GARBAGE] == 4
    assert l_open.bad_frames == 4


def test_sealer_requires_the_session_key() -> None:
    ds, _ = sessions()
    with pytest.raises(ValueError):
        FrameSealer(ds, M)


def test_abuse_counter_says_when_to_close() -> None:
    abuse = AbuseCounter(3)
    assert [abuse.record() for _ in range(4)] == [False, False, True, True]
    assert abuse.should_close and abuse.count == 4
    with pytest.raises(ValueError):
        AbuseCounter(0)


@given(st.binary(max_size=300))
def test_random_bytes_only_raise_frame_errors(data: bytes) -> None:
    opener = FrameOpener(_LISTENER_SESSION)
    try:
        opener.open(data)
    except FrameError:
        assert opener.bad_frames == 1


_LISTENER_SESSION = sessions()[1]
