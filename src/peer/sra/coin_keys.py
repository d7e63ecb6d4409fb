"""Ed25519 keys for verifiable coins (:mod:`peer.sra.coins`): a real identity's, or the simulator's.

Imported only when an auction uses verifiable coins, so that the machine's
core imports nothing outside the standard library otherwise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

COIN_BYTES = 64  # an Ed25519 signature


class SignerKeys:
    """Coin keys from a real identity: ``sign`` is the node's own Ed25519 signer and
    ``public_key(node)`` gives a neighbour's raw 32-byte public key (None if unknown)."""

    def __init__(self, sign: Callable[[bytes], bytes], public_key: Callable[[str], bytes | None]) -> None:
        self._sign = sign
        self._public_key = public_key

    def sign(self, message: bytes) -> bytes:
        return self._sign(message)

    def verify(self, node: str, message: bytes, signature: bytes) -> bool:
        key = self._public_key(node)
        return key is not None and _verify(key, message, signature)


class SimulatedKeys:
    """Keys derived from node names, for the in-memory simulator only (anyone can derive them)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._key = _simulated(node)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SimulatedKeys) and other.node == self.node

    def __hash__(self) -> int:
        return hash(self.node)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature

    def verify(self, node: str, message: bytes, signature: bytes) -> bool:
        return _verify(bytes(_simulated(node).verify_key), message, signature)


_SIM_KEYS: dict[str, SigningKey] = {}


def _simulated(node: str) -> SigningKey:
    key = _SIM_KEYS.get(node)
    if key is None:
        key = SigningKey(hashlib.sha256(b"peer/sra/simulated-key\x00" + node.encode()).digest())
        if len(_SIM_KEYS) < 100_000:  # a cache, bounded
            _SIM_KEYS[node] = key
    return key


def _verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if not isinstance(signature, bytes) or len(signature) != COIN_BYTES:
        return False
    try:
        VerifyKey(public_key).verify(message, signature)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True
