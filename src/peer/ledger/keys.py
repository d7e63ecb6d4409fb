"""The tiny signing interface the ledger needs, straight on PyNaCl.

The node's identity module may change shape; the ledger only needs "sign these
bytes" and "does this signature verify", so it accepts a PyNaCl ``SigningKey``,
a raw 32-byte seed, or any object with ``sign(bytes) -> bytes`` (a 64-byte
detached signature) and ``public_hex``.  Public keys are carried as 64-char
lowercase hex strings, the form the hop body uses for seller and buyer.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError
from nacl.signing import SigningKey, VerifyKey

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


@runtime_checkable
class Signer(Protocol):
    """Anything that can make a detached Ed25519 signature (e.g. ``peer.net.identity.Identity``)."""

    @property
    def public_hex(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


SignerLike = SigningKey | bytes | Signer
VerifierLike = VerifyKey | bytes | str


def _signing_key(key: SigningKey | bytes) -> SigningKey:
    if isinstance(key, SigningKey):
        return key
    if len(key) != 32:
        raise ValueError("a raw signing key is a 32-byte seed")
    return SigningKey(bytes(key))


def public_hex(key: SignerLike) -> str:
    """The 64-char hex public key of ``key``."""
    if isinstance(key, (SigningKey, bytes)):
        return _signing_key(key).verify_key.encode().hex()
    return key.public_hex


def sign(key: SignerLike, message: bytes) -> bytes:
    """A 64-byte detached signature of ``message``."""
    if isinstance(key, (SigningKey, bytes)):
        return bytes(_signing_key(key).sign(message).signature)
    sig = bytes(key.sign(message))
    if len(sig) != SIGNATURE_BYTES:
        raise ValueError("signer returned something that is not a 64-byte detached signature")
    return sig


_PUBLIC_HEX = re.compile(f"[0-9a-f]{{{2 * PUBLIC_KEY_BYTES}}}")


def is_public_hex(text: object) -> bool:
    """True for exactly 64 lowercase hex chars: one spelling per key, so canonical bytes are unique.

    A compiled pattern, not a per-character loop: every entry decoded or digested checks three
    keys, and the loop was a tenth of a node's CPU in a stream of auctions (docs/nodes.md).
    """
    return isinstance(text, str) and _PUBLIC_HEX.fullmatch(text) is not None


def verify(pubkey: VerifierLike, message: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is ``pubkey``'s signature of ``message``.  Never raises on bad input."""
    try:
        if isinstance(pubkey, str):
            if not is_public_hex(pubkey):
                return False
            pubkey = bytes.fromhex(pubkey)
        vk = pubkey if isinstance(pubkey, VerifyKey) else VerifyKey(bytes(pubkey))
        if len(signature) != SIGNATURE_BYTES:
            return False
        vk.verify(message, bytes(signature))
        return True
    except (BadSignatureError, NaclValueError, ValueError, TypeError):
        return False
