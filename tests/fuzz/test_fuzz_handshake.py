"""Grammar-aware fuzzing of the handshake receive paths.

tests/net/test_net_handshake.py feeds random byte chunks and hand-made attacks.
Here the inputs are well-formed handshake messages whose fields are drawn from
a pool of plausible values (our key, the pinned key, a stranger's key, our own
nonce echoed, signatures over the right transcript by the wrong key, over the
wrong role, over another session...), byte-level mutations of the honest
message, other message kinds and non-bytes.  An oracle computed from the
decoded fields says whether the message must be accepted; otherwise:

* only HandshakeError comes out, and the machine is FAILED;
* a failed machine refuses everything afterwards, even the honest message,
  and ``session`` raises HandshakeError (it never hands out a session);
* an accepted message yields the same session on both sides.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from peer.net.codec import PROTOCOL_VERSION, Confirm, DecodeError, Hello, HelloAck, decode_handshake, encode_handshake
from peer.net.handshake import DialerHandshake, HandshakeError, ListenerHandshake, Role, State, transcript
from peer.net.identity import Identity

from ._common import fuzz, msgpack_values, mutate_bytes

D = Identity.from_seed(b"d" * 32)  # the dialer
L = Identity.from_seed(b"l" * 32)  # the listener
M = Identity.from_seed(b"m" * 32)  # a stranger (not a configured neighbour)
N_D, N_L = b"\x01" * 32, b"\x02" * 32  # the honest nonces

keys = st.sampled_from([D.public_key, L.public_key, M.public_key, bytes(32), b"\xff" * 32]) | st.binary(
    min_size=32, max_size=32)
nonces = st.sampled_from([N_D, N_L, bytes(32)]) | st.binary(min_size=32, max_size=32)
versions = st.sampled_from([PROTOCOL_VERSION, 0, PROTOCOL_VERSION + 1, 0xFFFF])
roles = st.sampled_from([Role.DIALER, Role.LISTENER])
signers = st.sampled_from([D, L, M])


@st.composite
def signatures(draw: st.DrawFn) -> bytes:
    """A signature over some transcript (maybe the right one) by some key, or noise."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(min_size=64, max_size=64))
    signer = draw(signers)
    return signer.sign(transcript(draw(roles), draw(keys), draw(keys), draw(nonces), draw(nonces)))


def fresh_dialer() -> DialerHandshake:
    dialer = DialerHandshake(D, L.public_key, nonce=N_D)
    dialer.start()
    return dialer


def fresh_listener() -> ListenerHandshake:
    return ListenerHandshake(L, {D.public_key}, nonce=N_L)


def honest_hello() -> bytes:
    return DialerHandshake(D, L.public_key, nonce=N_D).start()


def honest_ack() -> bytes:
    ack = fresh_listener().receive(honest_hello())
    assert ack is not None
    return ack


def honest_confirm() -> bytes:
    return fresh_dialer().receive(honest_ack())


# -------------------------------------------------------------------- oracles

def listener_accepts_hello(msg: object) -> bool:
    return (isinstance(msg, Hello) and msg.v == PROTOCOL_VERSION and msg.pk == D.public_key
            and msg.to == L.public_key and msg.nonce != N_L)


def listener_accepts_confirm(msg: object, dialer_nonce: bytes) -> bool:
    good = D.sign(transcript(Role.DIALER, D.public_key, L.public_key, dialer_nonce, N_L))
    return isinstance(msg, Confirm) and msg.sig == good


def dialer_accepts_ack(msg: object) -> bool:
    if not (isinstance(msg, HelloAck) and msg.v == PROTOCOL_VERSION and msg.pk == L.public_key
            and msg.nonce != N_D):
        return False
    return Identity.verify(L.public_key, transcript(Role.LISTENER, D.public_key, L.public_key, N_D, msg.nonce),
                           msg.sig)


def _decoded(data: object) -> object:
    try:
        return decode_handshake(data)
    except DecodeError:
        return None


def assert_failed_for_good(machine: DialerHandshake | ListenerHandshake, honest: bytes) -> None:
    assert machine.state is State.FAILED
    with pytest.raises(HandshakeError):
        machine.session  # noqa: B018 - the property raises
    with pytest.raises(HandshakeError):
        machine.receive(honest)
    assert machine.state is State.FAILED
    if isinstance(machine, DialerHandshake):
        with pytest.raises(HandshakeError):
            machine.start()


#: Every kind a HandshakeError may carry (the link manager rate-limits and reports by kind).
KINDS = {"garbage", "protocol", "version", "reflected", "misdirected", "unknown-key", "wrong-key", "bad-signature"}

# ----------------------------------------------------------------- generators

POOLS: dict[str, st.SearchStrategy[Any]] = {"v": versions, "pk": keys, "to": keys, "nonce": nonces,
                                             "sig": signatures()}


@st.composite
def near_honest(draw: st.DrawFn, honest: bytes) -> Any:
    """The honest message with 0..2 of its fields swapped for a plausible wrong value."""
    msg = decode_handshake(honest)
    fields = list(type(msg).__struct_fields__)
    changed = draw(st.lists(st.sampled_from(fields), max_size=2, unique=True))
    return msgspec.structs.replace(msg, **{name: draw(POOLS[name]) for name in changed})


hello_msgs = st.builds(Hello, v=versions, pk=keys, to=keys, nonce=nonces)
ack_msgs = st.builds(HelloAck, v=versions, pk=keys, nonce=nonces, sig=signatures())
confirm_msgs = st.builds(Confirm, sig=signatures())


@st.composite
def inputs(draw: st.DrawFn, honest: bytes, own: st.SearchStrategy[Any]) -> object:
    """One input for a machine that expects ``honest``: field-level, byte-level or kind-level fuzz."""
    how = draw(st.sampled_from(["near", "near", "fields", "bytes", "kind", "raw_map", "not_bytes"]))
    if how == "near":
        return encode_handshake(draw(near_honest(honest)))
    if how == "fields":
        return encode_handshake(draw(own))
    if how == "bytes":
        return mutate_bytes(draw, honest)
    if how == "kind":
        return encode_handshake(draw(st.one_of(hello_msgs, ack_msgs, confirm_msgs)))
    if how == "raw_map":
        doc = msgspec.msgpack.decode(honest)
        doc[draw(st.sampled_from([*doc, "x"]))] = draw(msgpack_values)
        return msgspec.msgpack.encode(doc)
    return draw(st.one_of(st.none(), st.text(max_size=40), st.integers(), st.builds(bytearray, st.just(honest))))


@fuzz(300)
@given(inputs(honest_hello(), hello_msgs))
def test_listener_on_hello(data: object) -> None:
    listener = fresh_listener()
    msg = _decoded(data)
    event(f"accepted={listener_accepts_hello(msg)}")
    if listener_accepts_hello(msg):
        ack = listener.receive(data)  # type: ignore[arg-type]
        assert ack is not None and listener.state is State.WAIT_CONFIRM
        assert listener.claimed_peer == D.public_key
        return
    with pytest.raises(HandshakeError) as info:
        listener.receive(data)  # type: ignore[arg-type]
    assert info.value.reason.startswith("listener: ")
    assert info.value.kind in KINDS
    if isinstance(msg, Hello) and info.value.kind not in ("garbage", "protocol"):
        assert info.value.presented == msg.pk  # the report names the key it was shown (issue 9.4)
    if info.value.kind == "misdirected":
        assert L.public_key.hex() in info.value.reason and info.value.wanted == msg.to  # type: ignore[union-attr]
    assert listener.claimed_peer is None  # nothing was taken from a refused Hello
    assert_failed_for_good(listener, honest_hello())


@fuzz(250)
@given(inputs(honest_confirm(), confirm_msgs),
       st.builds(Hello, v=st.just(PROTOCOL_VERSION), pk=st.just(D.public_key), to=st.just(L.public_key),
                 nonce=nonces.filter(lambda n: n != N_L)))
def test_listener_on_confirm(data: object, hello: Hello) -> None:
    listener = fresh_listener()
    listener.receive(encode_handshake(hello))
    msg = _decoded(data)
    event(f"accepted={listener_accepts_confirm(msg, hello.nonce)}")
    if listener_accepts_confirm(msg, hello.nonce):
        assert listener.receive(data) is None  # type: ignore[arg-type]
        assert listener.done and listener.session.peer == D.public_key
        return
    with pytest.raises(HandshakeError):
        listener.receive(data)  # type: ignore[arg-type]
    assert_failed_for_good(listener, honest_confirm())


@fuzz(300)
@given(inputs(honest_ack(), ack_msgs))
def test_dialer_on_ack(data: object) -> None:
    dialer = fresh_dialer()
    msg = _decoded(data)
    event(f"accepted={dialer_accepts_ack(msg)}")
    if dialer_accepts_ack(msg):
        confirm = dialer.receive(data)  # type: ignore[arg-type]
        assert dialer.done and dialer.session.peer == L.public_key
        # The listener that really sent this ack (same nonce) accepts the confirm: same session.
        assert isinstance(msg, HelloAck)
        listener = ListenerHandshake(L, {D.public_key}, nonce=msg.nonce)
        listener.receive(honest_hello())
        listener.receive(confirm)
        assert listener.session.session_id == dialer.session.session_id
        return
    with pytest.raises(HandshakeError) as info:
        dialer.receive(data)  # type: ignore[arg-type]
    assert info.value.reason.startswith("dialer: ")
    assert info.value.kind in KINDS
    if isinstance(msg, HelloAck) and info.value.kind not in ("garbage", "protocol"):
        assert info.value.presented == msg.pk
    assert_failed_for_good(dialer, honest_ack())


@fuzz(100)
@given(st.lists(st.one_of(hello_msgs, ack_msgs, confirm_msgs).map(encode_handshake)
                | st.binary(max_size=80), min_size=1, max_size=5))
def test_done_machines_refuse_everything_after_success(extra: list[bytes]) -> None:
    dialer, listener = fresh_dialer(), fresh_listener()
    ack = listener.receive(honest_hello())
    assert ack is not None
    listener.receive(dialer.receive(ack))
    for machine in (dialer, listener):
        session = machine.session
        for data in extra:
            with pytest.raises(HandshakeError):
                machine.receive(data)
            assert machine.state is State.FAILED
        # The session agreed before is kept as it was (the shell stops using the
        # machine once it is done; frames go through FrameOpener).
        assert machine.session == session


@fuzz(60)
@given(inputs(honest_ack(), ack_msgs))
def test_a_dialer_that_never_started_refuses_everything(data: object) -> None:
    dialer = DialerHandshake(D, L.public_key, nonce=N_D)
    with pytest.raises(HandshakeError):
        dialer.receive(data)  # type: ignore[arg-type]
    assert dialer.state is State.FAILED
    with pytest.raises(HandshakeError):
        dialer.start()
