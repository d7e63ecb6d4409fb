"""Handshake: success, pinned keys, reflection, replay, and garbage, all without I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peer.net.codec import PROTOCOL_VERSION, Confirm, Hello, HelloAck, decode_handshake, encode_handshake, encode_message
from peer.net.handshake import (
    DialerHandshake,
    HandshakeError,
    ListenerHandshake,
    Role,
    State,
    session_id,
)
from peer.net.identity import Identity
from peer.sra.messages import Bid

D = Identity.from_seed(b"d" * 32)  # dialer
L = Identity.from_seed(b"l" * 32)  # listener
M = Identity.from_seed(b"m" * 32)  # mallory, not anyone's neighbour
ND, NL = b"\x01" * 32, b"\x02" * 32


def run(dialer: DialerHandshake, listener: ListenerHandshake) -> None:
    ack = listener.receive(dialer.start())
    assert ack is not None
    assert listener.receive(dialer.receive(ack)) is None


def test_success_gives_both_sides_the_same_bound_session() -> None:
    dialer = DialerHandshake(D, L.public_key, nonce=ND)
    listener = ListenerHandshake(L, {D.public_key, M.public_key}, nonce=NL)
    run(dialer, listener)
    ds, ls = dialer.session, listener.session
    assert dialer.done and listener.done
    assert ds.session_id == ls.session_id == session_id(D.public_key, L.public_key, ND, NL)
    assert (ds.role, ls.role) == (Role.DIALER, Role.LISTENER)
    assert (ds.local, ds.peer, ls.local, ls.peer) == (D.public_key, L.public_key, L.public_key, D.public_key)
    assert ds.dialer == ls.dialer == D.public_key


def test_fresh_nonces_give_fresh_sessions() -> None:
    ids = set()
    for _ in range(3):
        dialer, listener = DialerHandshake(D, L.public_key), ListenerHandshake(L, {D.public_key})
        run(dialer, listener)
        ids.add(dialer.session.session_id)
    assert len(ids) == 3


def test_listener_refuses_an_unknown_key() -> None:
    dialer = DialerHandshake(M, L.public_key)
    listener = ListenerHandshake(L, {D.public_key})
    with pytest.raises(HandshakeError, match="unknown key"):
        listener.receive(dialer.start())
    assert listener.state is State.FAILED


def test_dialer_refuses_a_listener_that_is_not_the_pinned_key() -> None:
    dialer = DialerHandshake(D, L.public_key)
    impostor = ListenerHandshake(M, {D.public_key})
    hello = dialer.start()
    # Mallory answers in L's place; she cannot answer as L, only as herself.
    with pytest.raises(HandshakeError, match="misdirected"):
        impostor.receive(hello)
    forged_ack = encode_handshake(HelloAck(v=PROTOCOL_VERSION, pk=L.public_key, nonce=NL, sig=M.sign(b"anything")))
    with pytest.raises(HandshakeError, match="bad listener signature"):
        dialer.receive(forged_ack)
    dialer2 = DialerHandshake(D, L.public_key)
    dialer2.start()
    mallory_ack = encode_handshake(HelloAck(v=PROTOCOL_VERSION, pk=M.public_key, nonce=NL, sig=b"s" * 64))
    with pytest.raises(HandshakeError, match="wrong peer"):
        dialer2.receive(mallory_ack)


def test_reflected_hello_is_refused() -> None:
    # D dials L; an attacker bounces D's own Hello back at D's listener.
    hello = DialerHandshake(D, L.public_key).start()
    d_listener = ListenerHandshake(D, {L.public_key, D.public_key})  # even if misconfigured to allow itself
    with pytest.raises(HandshakeError, match="reflected"):
        d_listener.receive(hello)


def test_hello_reflected_to_the_dialer_is_refused() -> None:
    dialer = DialerHandshake(D, L.public_key)
    hello = dialer.start()
    with pytest.raises(HandshakeError, match="out of order"):
        dialer.receive(hello)


def test_echoed_nonce_and_own_key_are_refused() -> None:
    dialer = DialerHandshake(D, L.public_key, nonce=ND)
    dialer.start()
    echo = encode_handshake(HelloAck(v=PROTOCOL_VERSION, pk=L.public_key, nonce=ND, sig=b"s" * 64))
    with pytest.raises(HandshakeError, match="echoed our nonce"):
        dialer.receive(echo)
    dialer = DialerHandshake(D, L.public_key)
    dialer.start()
    own = encode_handshake(HelloAck(v=PROTOCOL_VERSION, pk=D.public_key, nonce=NL, sig=b"s" * 64))
    with pytest.raises(HandshakeError, match="reflected"):
        dialer.receive(own)


def test_a_dialer_signature_cannot_pass_as_the_listener_signature() -> None:
    # Role binding: reuse D's Confirm signature (role "dialer") as a HelloAck
    # signature, in a session with exactly the same keys and nonces.
    dialer = DialerHandshake(D, L.public_key, nonce=ND)
    listener = ListenerHandshake(L, {D.public_key}, nonce=NL)
    confirm = decode_handshake(dialer.receive(listener.receive(dialer.start())))
    assert isinstance(confirm, Confirm)
    victim = DialerHandshake(L, D.public_key, nonce=NL)  # L dials D, same nonces swapped
    victim.start()
    reflected = encode_handshake(HelloAck(v=PROTOCOL_VERSION, pk=D.public_key, nonce=ND, sig=confirm.sig))
    with pytest.raises(HandshakeError, match="bad listener signature"):
        victim.receive(reflected)


def test_replayed_handshake_from_an_earlier_session_is_refused() -> None:
    dialer = DialerHandshake(D, L.public_key)
    listener = ListenerHandshake(L, {D.public_key})
    hello = dialer.start()
    ack = listener.receive(hello)
    assert ack is not None
    confirm = dialer.receive(ack)
    listener.receive(confirm)
    # Mallory recorded all three messages.  Replaying D's side to L fails on L's fresh nonce...
    fresh_listener = ListenerHandshake(L, {D.public_key})
    fresh_listener.receive(hello)
    with pytest.raises(HandshakeError, match="replayed"):
        fresh_listener.receive(confirm)
    # ...and replaying L's side to D fails on D's fresh nonce.
    fresh_dialer = DialerHandshake(D, L.public_key)
    fresh_dialer.start()
    with pytest.raises(HandshakeError, match="replayed"):
        fresh_dialer.receive(ack)


def test_out_of_order_and_garbage_are_clear_errors() -> None:
    listener = ListenerHandshake(L, {D.public_key})
    with pytest.raises(HandshakeError, match="out of order: got Confirm"):
        listener.receive(encode_handshake(Confirm(sig=b"s" * 64)))
    with pytest.raises(HandshakeError, match="after the handshake is failed"):
        listener.receive(DialerHandshake(D, L.public_key).start())

    with pytest.raises(HandshakeError, match="garbage"):
        ListenerHandshake(L, {D.public_key}).receive(b"\x00\x01garbage")
    with pytest.raises(HandshakeError, match="garbage"):
        ListenerHandshake(L, {D.public_key}).receive(encode_message(Bid(auction="a", amount=1)))
    with pytest.raises(HandshakeError, match="garbage"):
        ListenerHandshake(L, {D.public_key}).receive("text frame")  # type: ignore[arg-type]

    dialer = DialerHandshake(D, L.public_key)
    with pytest.raises(HandshakeError, match="before sending Hello"):
        dialer.receive(b"x")
    dialer = DialerHandshake(D, L.public_key)
    dialer.start()
    with pytest.raises(HandshakeError, match="start\\(\\) called twice"):
        dialer.start()


def test_data_after_success_is_refused() -> None:
    dialer = DialerHandshake(D, L.public_key)
    listener = ListenerHandshake(L, {D.public_key})
    run(dialer, listener)
    with pytest.raises(HandshakeError, match="after the handshake is done"):
        listener.receive(encode_handshake(Confirm(sig=b"s" * 64)))


def test_version_and_recipient_checks() -> None:
    for other in (PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1):  # v1 peers cannot read batched frames
        with pytest.raises(HandshakeError, match="version"):
            ListenerHandshake(L, {D.public_key}).receive(
                encode_handshake(Hello(v=other, pk=D.public_key, to=L.public_key, nonce=ND)))
    with pytest.raises(HandshakeError, match="misdirected"):
        ListenerHandshake(L, {D.public_key}).receive(
            encode_handshake(Hello(v=PROTOCOL_VERSION, pk=D.public_key, to=M.public_key, nonce=ND))
        )


def test_session_is_unavailable_until_done_and_self_dial_is_refused() -> None:
    with pytest.raises(HandshakeError, match="no session"):
        _ = DialerHandshake(D, L.public_key).session
    with pytest.raises(ValueError):
        DialerHandshake(D, D.public_key)
    with pytest.raises(ValueError):
        DialerHandshake(D, L.public_key, nonce=b"short")


@given(st.lists(st.binary(max_size=200), min_size=1, max_size=4))
def test_random_input_only_ever_raises_handshake_error(chunks: list[bytes]) -> None:
    listener = ListenerHandshake(L, {D.public_key})
    dialer = DialerHandshake(D, L.public_key)
    dialer.start()
    for machine in (listener, dialer):
        for chunk in chunks:
            try:
                machine.receive(chunk)
            except HandshakeError:
                assert machine.state is State.FAILED
