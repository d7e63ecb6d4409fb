"""Verifiable coins for SRA: a node's parent choice derived from a value it cannot choose.

The paper lets each node pick its parent "randomly" among its inviters, and a
host break ties at random: private coins, which a strategic node can simply
set (choosing one's parent is a profitable deviation, docs/findings.md).  With
``SraConfig.verifiable_coins`` the coin is the node's Ed25519 signature over
the auction id and the purpose.  Ed25519 signatures are deterministic (RFC
8032), so the node has exactly one valid coin per auction; anyone holding its
public key can check it, and nobody can predict it before the auction id is
fixed.

Parent choice.  Each inviter ``i`` gets the score H(coin || i); the parent is
the inviter with the lowest (score, name).  The Bid carries the coin and the
inviters the node counted; the parent checks the coin, that it is on the list
and that it has the lowest score on it.  A Decline carries the coin and the
parent's name; a declined inviter checks the coin and that its own score is
not below the parent's.  So a node that bids to another inviter than its coin
says must either be refused, or leave the better-scored inviters off its list
and then be caught by their Declines, or stay silent to them (it then loses
its seat in their local auctions: a silent invitee takes part in nothing).
What stays unverifiable is timing: nobody can check that an invitation really
crossed, so a node can still void the edge to an inviter (docs/findings.md).

Keys.  The machine never sees a private key of another node.  A real node
shell passes a :class:`CoinKeys` built from its identity and its neighbours'
public keys; the simulator, which has no identities, uses
:class:`SimulatedKeys`, derived from the node names (for simulation only:
anyone can derive them).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable
from typing import Protocol

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

_DOMAIN = b"peer/sra/coin/v1\x00"
COIN_BYTES = 64  # an Ed25519 signature


def coin_message(auction: str, purpose: str) -> bytes:
    """What a node signs to draw its coin for ``purpose`` in ``auction`` (domain-separated)."""
    return _DOMAIN + auction.encode() + b"\x00" + purpose.encode()


def parent_purpose() -> str:
    return "parent"


def tie_purpose(hop: int) -> str:
    return f"tie/{hop}"


def score(coin: bytes, name: str) -> bytes:
    """The coin's ranking of inviter ``name``: lower wins."""
    return hashlib.sha256(b"peer/sra/coin-score\x00" + coin + b"\x00" + name.encode()).digest()


def choose_parent(coin: bytes, inviters: Iterable[str]) -> str:
    """The inviter the coin selects."""
    return min(inviters, key=lambda name: (score(coin, name), name))


def outranks(coin: bytes, a: str, b: str) -> bool:
    """Does ``a`` rank before ``b`` under ``coin``?"""
    return (score(coin, a), a) < (score(coin, b), b)


def tie_rng(coin: bytes) -> random.Random:
    """A host's tie-breaking stream drawn from its coin for one hop."""
    return random.Random(hashlib.sha512(b"peer/sra/tie\x00" + coin).hexdigest())


class CoinKeys(Protocol):
    """What a machine needs for verifiable coins: its own signature and its neighbours' keys."""

    def sign(self, message: bytes) -> bytes: ...

    def verify(self, node: str, message: bytes, signature: bytes) -> bool: ...


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
