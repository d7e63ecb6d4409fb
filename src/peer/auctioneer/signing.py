"""What the auctioneer signs and how a signature is checked.

``signature_ok`` is the one place the machines check a signature: Ed25519
(``peer.net.identity.verify``) everywhere, always in a provider process or a
node.  Only the in-process simulator's fast mode swaps in another scheme for
the duration of one simulated round (``peer.auctioneer.symbolic``), through a
context variable, so no machine has to know which scheme it runs under.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

from peer.net.identity import verify

_RESULT = b"peer/auctioneer/v1/task-result"


class SignatureScheme(Protocol):
    def verify(self, public_key: bytes, data: bytes, sig: bytes) -> bool: ...


_SCHEME: ContextVar[SignatureScheme | None] = ContextVar("auctioneer_signature_scheme", default=None)


@contextmanager
def signature_scheme(scheme: SignatureScheme) -> Iterator[None]:
    """Check signatures with ``scheme`` inside the block (the simulator's fast mode only)."""
    token = _SCHEME.set(scheme)
    try:
        yield
    finally:
        _SCHEME.reset(token)


def signature_ok(public_key: bytes, data: bytes, sig: bytes) -> bool:
    """True iff ``sig`` is ``public_key``'s signature of ``data`` under the scheme in force (Ed25519)."""
    scheme = _SCHEME.get()
    return verify(public_key, data, sig) if scheme is None else scheme.verify(public_key, data, sig)


def result_bytes(round_no: int, task: str, payload: bytes) -> bytes:
    raw = task.encode()
    return _RESULT + round_no.to_bytes(8, "big") + len(raw).to_bytes(2, "big") + raw + hashlib.sha256(payload).digest()


def result_ok(sender: bytes, round_no: int, task: str, payload: bytes, sig: bytes) -> bool:
    if len(task) > 64:
        return False
    return signature_ok(sender, result_bytes(round_no, task, payload), sig)
