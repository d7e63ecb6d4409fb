"""Batched frames: several messages in one signed frame (codec.encode_batch, Link._writer).

A batch round-trips in order under one signature and one sequence number; a
malformed batch is one garbage frame, refused and counted toward the abuse
threshold; the writer never builds a frame over ``max_frame``.
"""

from __future__ import annotations

import msgspec
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from peer.net.codec import (
    MAX_BATCH,
    DecodeError,
    EncodeError,
    GossipEnvelope,
    Heartbeat,
    decode_batch,
    encode_batch,
    encode_message,
    is_batch,
)
from peer.net.frames import HEADER_BYTES, FrameErrorKind, ForgedFrame, FrameOpener, FrameSealer, GarbageFrame
from peer.net.link import Link, LinkConfig
from peer.net.linkstate import LinkDown, LinkUp, Received
from peer.sra.messages import Bid, Decline
from tests.net.net_harness import identities, open_harness, wait_until
from tests.net.test_net_frames import D, sessions

_pack = msgspec.msgpack.encode


def _bids(n: int, start: int = 0) -> list[Bid]:
    return [Bid(auction="a", amount=start + i) for i in range(n)]


def test_a_batch_round_trips_in_order_with_each_size() -> None:
    msgs = [*_bids(3), Heartbeat(n=4), Decline(auction="b")]
    bodies = [encode_message(m) for m in msgs]
    batch = encode_batch(bodies)
    assert is_batch(batch) and not any(is_batch(b) for b in bodies)
    assert decode_batch(batch) == [(m, len(b)) for m, b in zip(msgs, bodies, strict=True)]


def test_batches_hold_two_or_more_plain_bodies() -> None:
    one = encode_message(Bid(auction="a", amount=1))
    for bad in ([], [one], [one] * (MAX_BATCH + 1), [one, encode_batch([one, one])]):
        with pytest.raises(EncodeError):
            encode_batch(bad)
    # The receiver holds the sender to the same rules, and every element must be one message.
    for junk in (_pack([]), _pack([one]), _pack([one, _pack([one, one])]), _pack([one, b"\xc1"]),
                 _pack([one, 7]), _pack([one, [one]]), _pack([one] * (MAX_BATCH + 1)), b"\x92" + one):
        with pytest.raises(DecodeError):
            decode_batch(junk)


@given(st.binary(max_size=200))
def test_random_batches_only_raise_decode_errors(tail: bytes) -> None:
    for head in (b"\x92", b"\x9f", b"\xdc\x00\x03", b"\xdd\x00\x00\x00\x02"):
        try:
            decode_batch(head + tail)
        except DecodeError:
            pass


def test_one_signature_covers_the_whole_batch() -> None:
    ds, ls = sessions()
    sealer, opener = FrameSealer(ds, D), FrameOpener(ls)
    msgs = _bids(5)
    frame = sealer.seal_bodies([encode_message(m) for m in msgs])
    assert sealer.last_seq == 1
    tampered = frame[:-1] + bytes([frame[-1] ^ 1])  # the last message's last byte
    with pytest.raises(ForgedFrame):
        opener.open_all(tampered)
    assert [m for m, _ in opener.open_all(frame)] == msgs
    assert (opener.last_seq, opener.frames_in, opener.bad_frames) == (1, 1, 1)
    # A batch of one is sent plain, and the plain form still opens the old way.
    plain = sealer.seal_bodies([encode_message(Bid(auction="a", amount=9))])
    assert not is_batch(plain[HEADER_BYTES:])
    assert opener.open_all(plain) == [(Bid(auction="a", amount=9), len(plain))]


def test_a_signed_malformed_batch_is_garbage_and_consumes_its_seq() -> None:
    ds, ls = sessions()
    sealer, opener = FrameSealer(ds, D), FrameOpener(ls)
    good = encode_message(Bid(auction="a", amount=1))
    with pytest.raises(GarbageFrame, match="batch element 1"):
        opener.open_all(sealer.seal_body(_pack([good, b"\x81\xa1t\xa3bid"])))
    assert opener.last_seq == 1 and opener.rejected[FrameErrorKind.GARBAGE] == 1
    assert [m for m, _ in opener.open_all(sealer.seal_bodies([good, good]))] == [Bid(auction="a", amount=1)] * 2


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=900), min_size=1, max_size=80),
       max_frame=st.integers(min_value=1250, max_value=4000))
def test_the_writer_never_builds_a_frame_over_max_frame(sizes: list[int], max_frame: int) -> None:
    """Every body the outbox holds goes out, in order, in frames within ``max_frame``."""
    ds, ls = sessions()
    envelopes = [GossipEnvelope(origin=b"o" * 32, seq=i + 1, expires_ms=1, topic="t", payload=b"p" * size,
                                sig=b"s" * 64) for i, size in enumerate(sizes)]

    async def main() -> None:
        link = Link(None, ds, D, LinkConfig(max_frame=max_frame, outbox_size=len(sizes)))  # type: ignore[arg-type]
        for env in envelopes:
            assert link.send_nowait(env)
        opener, got, carry = FrameOpener(ls, max_frame=max_frame), [], None
        while len(got) < len(envelopes):
            if carry is None:
                carry = link._outbox_recv.receive_nowait()
                link.outbox_bytes -= len(carry)
            bodies, carry = link._take_batch(carry)
            frame = link._sealer.seal_bodies(bodies)
            assert len(frame) <= max_frame
            got += [m for m, _ in opener.open_all(frame)]
        assert got == envelopes and link.outbox_bytes == 0

    trio.run(main)


async def test_a_burst_goes_out_in_few_frames_and_arrives_in_order(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, b = identities(2)
        na = await net.start(a, [b])
        nb = await net.start(b, [a])
        assert await na.event() == LinkUp(b.public_hex)
        assert await nb.event() == LinkUp(a.public_hex)
        msgs = _bids(200)
        for msg in msgs:  # one tick: the writer finds them all queued
            assert na.manager.send_nowait(b.public_hex, msg)
        got = []
        while len(got) < len(msgs):
            event = await nb.event()
            if isinstance(event, Received):
                got.append(event.msg)
        assert got == msgs
        sa, sb = na.manager.snapshot()[b.public_hex], nb.manager.snapshot()[a.public_hex]
        assert sa.frames_out >= 200 and sb.frames_in >= 200
        assert sa.wire_frames_out < 10 and sb.wire_frames_in == sa.wire_frames_out
        assert sa.bad_frames == sb.bad_frames == 0


async def test_malformed_batches_count_toward_the_abuse_threshold(kind: str, clock: object) -> None:
    async with open_harness(kind) as net:
        a, m = identities(2)
        na = await net.start(a, [m], abuse_threshold=3)
        ws, _, sealer = await net.raw_dial(m, na)
        assert await na.event() == LinkUp(m.public_hex)
        good = encode_message(Bid(auction="x", amount=1))
        await ws.send_message(sealer.seal_bodies([good, good]))
        assert await na.event() == Received(m.public_hex, Bid(auction="x", amount=1))
        assert await na.event() == Received(m.public_hex, Bid(auction="x", amount=1))
        for junk in (_pack([good]), _pack([good, b"junk"])):  # validly signed, refused
            await ws.send_message(sealer.seal_body(junk))
        await wait_until(lambda: na.manager.snapshot()[m.public_hex].bad_frames == 2)
        assert na.manager.snapshot()[m.public_hex].up  # below the threshold: still up
        await ws.send_message(sealer.seal_body(_pack([good, [good]])))
        down = await na.event()
        assert isinstance(down, LinkDown) and down.reason.startswith("abuse: 3 bad frames")
        assert na.manager.snapshot()[m.public_hex].bad_by_kind == {"garbage": 3}
