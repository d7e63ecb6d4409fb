"""Every hash QPQ uses: commitments, nonces, round transcripts, replacements, tie-breaks.

Each hash has its own domain string in front and encodes its fields in a fixed
order with fixed widths or length prefixes, so no two different inputs (nor
inputs meant for different purposes) can produce the same bytes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from functools import lru_cache

from peer.qpq.fixed import MAX_VALUE, VALUE_BYTES, beta_quantile, value_ok

NONCE_BYTES = 16
DIGEST_BYTES = 32

_COMMIT = b"peer/qpq/v1/commit"
_NONCE = b"peer/qpq/v1/nonce"
_TRANSCRIPT = b"peer/qpq/v1/transcript"
_REPLACE = b"peer/qpq/v1/replace"
_TIE = b"peer/qpq/v1/tie"
_LIAR = b"peer/qpq/v1/liar"
_SECRET = b"peer/qpq/v1/sim-secret"


def lp(raw: bytes) -> bytes:
    """Length-prefixed bytes (u32 big-endian length)."""
    return len(raw).to_bytes(4, "big") + raw


@lru_cache(maxsize=1 << 16)
def _text(s: str) -> bytes:
    return lp(s.encode())


def round_id(stream: str, round_no: int) -> bytes:
    """The bytes naming round ``round_no`` of resource stream ``stream``."""
    return _text(stream) + round_no.to_bytes(8, "big")


@lru_cache(maxsize=256)
def _commit_prefix(stream: str, round_no: int, level: int) -> bytes:
    # The same for every member of a level: hashed once per round, not per member.
    return lp(_COMMIT) + round_id(stream, round_no) + bytes((level,))


def commit_digest(stream: str, round_no: int, level: int, member: str, value: int, nonce: bytes) -> bytes:
    """The commitment to ``value``: binds the round, the level and the member, hides the value.

    The member's id is inside, so a member cannot copy another's commitment and
    reveal it as its own.
    """
    if not value_ok(value):
        raise ValueError(f"value out of range: {value!r}")
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    body = _commit_prefix(stream, round_no, level) + _text(member)
    return hashlib.sha256(body + value.to_bytes(VALUE_BYTES, "big") + nonce).digest()


def commit_ok(digest: bytes, stream: str, round_no: int, level: int, member: str, value: int, nonce: bytes) -> bool:
    """True iff (value, nonce) opens ``digest``.  Never raises on malformed input."""
    if not value_ok(value) or not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES:
        return False
    return hmac.compare_digest(digest, commit_digest(stream, round_no, level, member, value, nonce))


def derive_nonce(secret: bytes, stream: str, round_no: int, level: int) -> bytes:
    """A node's nonce for one commitment: a PRF (keyed BLAKE2b) of its private secret, so nobody can predict it."""
    data = lp(_NONCE) + round_id(stream, round_no) + bytes((level,))
    return hashlib.blake2b(data, key=secret, digest_size=NONCE_BYTES).digest()


def sim_secret(seed: int, node: str) -> bytes:
    """A simulated node's private secret (a real node uses 32 random bytes)."""
    return hashlib.sha256(lp(_SECRET) + seed.to_bytes(16, "big", signed=True) + _text(node)).digest()


def liar_value(secret: bytes, stream: str, round_no: int) -> int:
    """A uniform-liar's declaration: uniform, and unrelated to its preference."""
    mac = hashlib.blake2b(lp(_LIAR) + round_id(stream, round_no), key=secret, digest_size=VALUE_BYTES).digest()
    return int.from_bytes(mac, "big")


def transcript_hash(
    stream: str,
    round_no: int,
    level: int,
    group: str,
    slots: Sequence[str],
    entrants: Sequence[str],
    values: Sequence[int | None],
    nonces: Sequence[bytes | None],
    supports: Sequence[int],
) -> bytes:
    """Hash of everything revealed at one level of one round, in canonical (slot) order.

    A slot with no valid reveal is encoded as a 0 marker byte; a revealed one as
    1, value, nonce, support.  Every member that holds the same reveals gets the
    same hash.
    """
    parts = [lp(_TRANSCRIPT), round_id(stream, round_no), bytes((level,)), _text(group), len(slots).to_bytes(4, "big")]
    for slot, entrant, value, nonce, support in zip(slots, entrants, values, nonces, supports, strict=True):
        parts.append(_text(slot))
        parts.append(_text(entrant))
        if value is None or nonce is None:
            parts.append(b"\x00")
        else:
            parts.append(b"\x01" + value.to_bytes(VALUE_BYTES, "big") + nonce + support.to_bytes(4, "big"))
    return hashlib.sha256(b"".join(parts)).digest()


def replacement_value(transcript: bytes, slot: str, shape: int = 1) -> int:
    """The pseudo-random value that replaces ``slot``'s failing declaration.

    Uniform (first 32 bits of a domain-separated hash of the round's transcript
    and the slot), then mapped through the Beta(shape, 1) quantile, so that at
    the winner level (shape = the cluster's size) it is distributed exactly like
    an honest cluster winner.  Every member holding the same reveals computes
    the same value; nobody can steer it without knowing every nonce beforehand.
    """
    digest = hashlib.sha256(lp(_REPLACE) + transcript + _text(slot)).digest()
    u = int.from_bytes(digest[:VALUE_BYTES], "big")
    return beta_quantile(u, shape) if shape > 1 else u


def tie_key(transcript: bytes, slot: str) -> bytes:
    """Orders slots with equal final values: unpredictable before the reveals, the same for everyone."""
    return hashlib.sha256(lp(_TIE) + transcript + _text(slot)).digest()


__all__ = [
    "DIGEST_BYTES",
    "MAX_VALUE",
    "NONCE_BYTES",
    "commit_digest",
    "commit_ok",
    "derive_nonce",
    "liar_value",
    "replacement_value",
    "sim_secret",
    "tie_key",
    "transcript_hash",
]
