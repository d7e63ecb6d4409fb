"""The link handshake: a sans-I/O, three-message mutual authentication.

Theory of operation
-------------------
Our websocket carries no Noise/TLS, so the link authenticates at the
application level before any other frame is accepted::

    dialer   -> listener   Hello     {v, pk_d, to=pk_l, nonce_d}
    listener -> dialer     HelloAck  {v, pk_l, nonce_l, sig_l}
    dialer   -> listener   Confirm   {sig_d}

    transcript(role) = lp(DOMAIN) || lp(role) || pk_d || pk_l || nonce_d || nonce_l
    sig_l = Sign(sk_l, transcript(b"listener"))
    sig_d = Sign(sk_d, transcript(b"dialer"))
    session_id = BLAKE2b-256(lp(SESSION_DOMAIN) || pk_d || pk_l || nonce_d || nonce_l)

(``lp(x)`` is a 4-byte big-endian length followed by ``x``.)

Why each part is there:

* Both public keys in the signed transcript: a signature made for one pair of
  nodes is useless for any other pair (SSB's SHS binds the server key the same way).
* Both fresh 32-byte nonces: each side's signature covers a nonce the *other*
  side just chose, so a recorded handshake cannot be replayed into a new session.
* The role string: a dialer's signature can never pass as a listener's, so a
  handshake cannot be reflected back at its sender (Hypercore's
  INITIATOR/RESPONDER capability namespaces).  We also refuse our own public key
  and an echoed nonce outright, which makes reflection fail early and clearly.
* Pinned keys: the listener admits only the configured neighbours' keys; the
  dialer accepts only the exact key it dialled (libp2p's expected-PeerID check).

Any violation (out-of-order message, garbage, wrong key, bad signature) raises
:class:`HandshakeError` and moves the machine to ``FAILED`` for good; the shell
then drops the connection.  The machines consume and produce *bytes*, so the
same code is driven by websockets, memory streams or a test calling it directly.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from peer.errors import PeerError
from peer.net.codec import (
    PROTOCOL_VERSION,
    Confirm,
    DecodeError,
    Hello,
    HelloAck,
    decode_handshake,
    encode_handshake,
)
from peer.net.identity import Identity, verify

DOMAIN = b"peer/net/handshake/v1"
SESSION_DOMAIN = b"peer/net/session/v1"
NONCE_BYTES = 32

_M = TypeVar("_M", Hello, HelloAck, Confirm)


def lp(data: bytes) -> bytes:
    """Length-prefix ``data`` (4-byte big-endian): makes concatenations unambiguous."""
    return len(data).to_bytes(4, "big") + data


class Role(str, Enum):
    DIALER = "dialer"
    LISTENER = "listener"

    @property
    def other(self) -> Role:
        return Role.LISTENER if self is Role.DIALER else Role.DIALER


class State(str, Enum):
    START = "start"  # dialer: nothing sent; listener: waiting for Hello
    WAIT_ACK = "wait_ack"  # dialer sent Hello
    WAIT_CONFIRM = "wait_confirm"  # listener sent HelloAck
    DONE = "done"
    FAILED = "failed"


class HandshakeError(PeerError):
    """The handshake failed; the connection must be dropped.  ``reason`` says why.

    ``kind`` is a stable token for counting and rate-limiting (``garbage``,
    ``wrong-key``, ``unknown-key``, ``misdirected``, ...); ``presented`` is the
    key the other side presented as its own and ``wanted`` the key it expected
    us to have, where known (neither is authenticated: the handshake failed).
    """

    def __init__(
        self, reason: str, *, kind: str = "failed", presented: bytes | None = None, wanted: bytes | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.presented = presented
        self.wanted = wanted


@dataclass(frozen=True, slots=True)
class Session:
    """The outcome of a successful handshake: what frames are bound to."""

    session_id: bytes
    role: Role  # this side's role
    local: bytes  # this side's public key
    peer: bytes  # the authenticated neighbour's public key

    @property
    def dialer(self) -> bytes:
        """The public key of the side that dialled this connection."""
        return self.local if self.role is Role.DIALER else self.peer


def transcript(role: Role, pk_d: bytes, pk_l: bytes, nonce_d: bytes, nonce_l: bytes) -> bytes:
    """The exact bytes ``role`` signs (see the module docstring)."""
    return lp(DOMAIN) + lp(role.value.encode()) + pk_d + pk_l + nonce_d + nonce_l


def session_id(pk_d: bytes, pk_l: bytes, nonce_d: bytes, nonce_l: bytes) -> bytes:
    body = lp(SESSION_DOMAIN) + pk_d + pk_l + nonce_d + nonce_l
    return hashlib.blake2b(body, digest_size=32).digest()


class _Machine:
    role: Role

    def __init__(self, identity: Identity, nonce: bytes | None) -> None:
        if nonce is not None and len(nonce) != NONCE_BYTES:
            raise ValueError("a handshake nonce is 32 bytes")
        self._identity = identity
        # Fresh per machine; injectable only so tests can build exact transcripts.
        self._nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
        self.state = State.START
        self._session: Session | None = None

    @property
    def done(self) -> bool:
        return self.state is State.DONE

    @property
    def session(self) -> Session:
        if self._session is None:
            raise HandshakeError(f"no session: handshake is {self.state.value}")
        return self._session

    def _fail(
        self, reason: str, kind: str = "protocol", presented: bytes | None = None, wanted: bytes | None = None
    ) -> HandshakeError:
        self.state = State.FAILED
        return HandshakeError(f"{self.role.value}: {reason}", kind=kind, presented=presented, wanted=wanted)

    def _decode(self, data: bytes, expected: type[_M]) -> _M:
        if self.state in (State.DONE, State.FAILED):
            raise self._fail(f"unexpected handshake data after the handshake is {self.state.value}")
        try:
            msg = decode_handshake(data)
        except DecodeError as exc:
            raise self._fail(f"garbage: {exc.reason}", "garbage") from None
        if not isinstance(msg, expected):
            raise self._fail(f"out of order: got {type(msg).__name__} while expecting {expected.__name__}")
        return msg

    def _finish(self, peer: bytes, pk_d: bytes, pk_l: bytes, nonce_d: bytes, nonce_l: bytes) -> None:
        self._session = Session(session_id(pk_d, pk_l, nonce_d, nonce_l), self.role, self._identity.public_key, peer)
        self.state = State.DONE


class DialerHandshake(_Machine):
    """The side that opened the connection; it knows exactly which key it dialled.

    Usage: ``send(hs.start())``; ``reply = hs.receive(ack)``; ``send(reply)``;
    then ``hs.session``.
    """

    role = Role.DIALER

    def __init__(self, identity: Identity, expected_peer: bytes, *, nonce: bytes | None = None) -> None:
        super().__init__(identity, nonce)
        if expected_peer == identity.public_key:
            raise ValueError("a node does not dial itself")
        self._expected = bytes(expected_peer)

    def start(self) -> bytes:
        """The Hello to send first."""
        if self.state is not State.START:
            raise self._fail("start() called twice")
        self.state = State.WAIT_ACK
        return encode_handshake(
            Hello(v=PROTOCOL_VERSION, pk=self._identity.public_key, to=self._expected, nonce=self._nonce)
        )

    def receive(self, data: bytes) -> bytes:
        """Check the listener's HelloAck; return the Confirm to send.  The session is then ready."""
        if self.state is State.START:
            raise self._fail("out of order: received data before sending Hello")
        ack = self._decode(data, HelloAck)
        if ack.v != PROTOCOL_VERSION:
            raise self._fail(f"unsupported protocol version {ack.v}", "version", ack.pk)
        if ack.pk == self._identity.public_key:
            raise self._fail("reflected: the peer presented our own key", "reflected", ack.pk)
        if ack.pk != self._expected:
            raise self._fail(
                f"wrong peer: expected {self._expected.hex()[:16]}…, got {ack.pk.hex()[:16]}…", "wrong-key", ack.pk
            )
        if ack.nonce == self._nonce:
            raise self._fail("reflected: the peer echoed our nonce", "reflected", ack.pk)
        pk_d, pk_l = self._identity.public_key, ack.pk
        if not verify(pk_l, transcript(Role.LISTENER, pk_d, pk_l, self._nonce, ack.nonce), ack.sig):
            raise self._fail("bad listener signature (forged, or replayed from another session)", "bad-signature", ack.pk)
        confirm = Confirm(sig=self._identity.sign(transcript(Role.DIALER, pk_d, pk_l, self._nonce, ack.nonce)))
        self._finish(pk_l, pk_d, pk_l, self._nonce, ack.nonce)
        return encode_handshake(confirm)


class ListenerHandshake(_Machine):
    """The side that accepted the connection; it admits only pinned neighbour keys.

    Usage: ``send(hs.receive(hello))``; ``hs.receive(confirm)`` returns ``None``;
    then ``hs.session``.
    """

    role = Role.LISTENER

    def __init__(
        self,
        identity: Identity,
        allowed: Collection[bytes],
        *,
        nonce: bytes | None = None,
        refuse: Callable[[bytes], tuple[str, str] | None] | None = None,
    ) -> None:
        """``refuse(key)`` may return ``(kind, reason)`` to turn away a configured key
        before we spend a signature on it (throttled or banned for abuse)."""
        super().__init__(identity, nonce)
        self._allowed = frozenset(bytes(k) for k in allowed)
        self._refuse = refuse
        self._peer: bytes | None = None
        self._peer_nonce = b""

    @property
    def claimed_peer(self) -> bytes | None:
        """The key the dialer claimed in Hello (authenticated only once ``done``)."""
        return self._peer

    def receive(self, data: bytes) -> bytes | None:
        """Feed the next message: returns the HelloAck for a Hello, ``None`` after Confirm."""
        if self.state is State.START:
            return self._on_hello(data)
        self._on_confirm(data)
        return None

    def _on_hello(self, data: bytes) -> bytes:
        hello = self._decode(data, Hello)
        me = self._identity.public_key
        if hello.v != PROTOCOL_VERSION:
            raise self._fail(f"unsupported protocol version {hello.v}", "version", hello.pk)
        if hello.pk == me:
            raise self._fail("reflected: the Hello carries our own key", "reflected", hello.pk)
        if hello.to != me:
            # Name our real key: the dialer's operator has pinned a wrong one for us.
            raise self._fail(f"misdirected: this node is {me.hex()}", "misdirected", hello.pk, hello.to)
        if hello.pk not in self._allowed:
            raise self._fail(f"unknown key {hello.pk.hex()[:16]}…: not a configured neighbour", "unknown-key", hello.pk)
        if hello.nonce == self._nonce:
            raise self._fail("reflected: the dialer used our nonce", "reflected", hello.pk)
        refusal = self._refuse(hello.pk) if self._refuse is not None else None
        if refusal is not None:
            raise self._fail(refusal[1], refusal[0], hello.pk)
        self._peer, self._peer_nonce = hello.pk, hello.nonce
        sig = self._identity.sign(transcript(Role.LISTENER, hello.pk, me, hello.nonce, self._nonce))
        self.state = State.WAIT_CONFIRM
        return encode_handshake(HelloAck(v=PROTOCOL_VERSION, pk=me, nonce=self._nonce, sig=sig))

    def _on_confirm(self, data: bytes) -> None:
        confirm = self._decode(data, Confirm)
        peer, me = self._peer, self._identity.public_key
        if peer is None:  # unreachable: WAIT_CONFIRM is only entered after a Hello
            raise self._fail("out of order: Confirm before Hello")
        if not verify(peer, transcript(Role.DIALER, peer, me, self._peer_nonce, self._nonce), confirm.sig):
            raise self._fail("bad dialer signature (forged, or replayed from another session)", "bad-signature", peer)
        self._finish(peer, peer, me, self._peer_nonce, self._nonce)
