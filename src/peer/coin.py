"""A commit-reveal common coin: shared randomness that no coalition short of everyone controls.

Theory of operation
-------------------
Each party ``j`` of a session draws a secret 32-byte share ``r_j`` and a nonce,
and publishes ``commitment(session, j, r_j, nonce)``.  Only once it holds the
commitment of *every* party does it reveal ``(r_j, nonce)``.  The coin is the
XOR of all shares (the paper's "sum modulo 1" over bytes): it is uniform as
soon as one share is uniform and was fixed before that party saw any other
share, which is what commit-before-reveal enforces.  A reveal that does not
open its commitment, or a second, different commitment from the same party, is
proof against that party: the session outputs ⊥ naming it.  A reveal that never
comes is ⊥ too (the shell's timeout), naming the silent party, but without
proof (it might be the network).

The 32-byte coin is turned into draws with :class:`CoinStream`, a SHA-256
counter-mode stream with rejection sampling, so ``randbelow(n)`` is exactly
uniform and every party derives the same draws from the same coin.

Using it elsewhere (QPQ's replacement values, tie-breaks): build one
:class:`CoinSession` per (round, purpose) with a ``session`` label that names
both, e.g. ``b"qpq/replace/" + round_id``, the sorted member ids as
``parties``, and exchange :meth:`CoinSession.my_commitment` then
:meth:`CoinSession.my_reveal`; feed what arrives to :meth:`on_commitment` /
:meth:`on_reveal`; when :meth:`value` is not ``None``,
``CoinStream(value, b"replacement").randbelow(MAX_VALUE + 1)`` is the shared
draw.  Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

SHARE_BYTES = 32
NONCE_BYTES = 16
DIGEST_BYTES = 32
_COMMIT = b"peer/coin/v1/commit"
_STREAM = b"peer/coin/v1/stream"

T = TypeVar("T")


def _lp(raw: bytes) -> bytes:
    return len(raw).to_bytes(4, "big") + raw


def commitment(session: bytes, party: bytes, share: bytes, nonce: bytes) -> bytes:
    """The hiding, binding commitment of ``party`` to ``share`` in ``session``.

    The party id is inside, so nobody can replay another party's commitment as
    its own and then copy its reveal.
    """
    if len(share) != SHARE_BYTES or len(nonce) != NONCE_BYTES:
        raise ValueError(f"a share is {SHARE_BYTES} bytes and a nonce {NONCE_BYTES}")
    return hashlib.sha256(_lp(_COMMIT) + _lp(session) + _lp(party) + share + nonce).digest()


def opens(digest: bytes, session: bytes, party: bytes, share: bytes, nonce: bytes) -> bool:
    """True iff ``(share, nonce)`` opens ``digest``; never raises on malformed input."""
    if not isinstance(share, bytes) or not isinstance(nonce, bytes):
        return False
    if len(share) != SHARE_BYTES or len(nonce) != NONCE_BYTES or len(digest) != DIGEST_BYTES:
        return False
    return hmac.compare_digest(digest, commitment(session, party, share, nonce))


def combine(shares: Iterable[bytes]) -> bytes:
    """XOR of the shares: uniform if any one share is uniform and independent of the rest."""
    acc = 0
    for share in shares:
        if len(share) != SHARE_BYTES:
            raise ValueError(f"a share is {SHARE_BYTES} bytes")
        acc ^= int.from_bytes(share, "big")
    return acc.to_bytes(SHARE_BYTES, "big")


class CoinStream:
    """Deterministic, exactly uniform draws from a coin value (same coin, same draws everywhere)."""

    def __init__(self, coin: bytes, label: bytes = b"") -> None:
        if len(coin) != SHARE_BYTES:
            raise ValueError(f"a coin is {SHARE_BYTES} bytes")
        self._key = hashlib.sha256(_lp(_STREAM) + coin + _lp(label)).digest()
        self._counter = 0
        self._pool = b""

    def _bytes(self, n: int) -> bytes:
        while len(self._pool) < n:
            self._pool += hashlib.sha256(self._key + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
        out, self._pool = self._pool[:n], self._pool[n:]
        return out

    def randbelow(self, n: int) -> int:
        """Uniform in ``range(n)`` by rejection sampling (no modulo bias)."""
        if n <= 0:
            raise ValueError("randbelow needs n >= 1")
        if n == 1:
            return 0
        bits = (n - 1).bit_length()
        nbytes = (bits + 7) // 8
        mask = (1 << bits) - 1
        while True:
            x = int.from_bytes(self._bytes(nbytes), "big") & mask
            if x < n:
                return x

    def bit(self) -> int:
        return self.randbelow(2)

    def shuffled(self, items: Sequence[T]) -> list[T]:
        """A uniformly random permutation (Fisher-Yates)."""
        out = list(items)
        for i in range(len(out) - 1, 0, -1):
            j = self.randbelow(i + 1)
            out[i], out[j] = out[j], out[i]
        return out


@dataclass(frozen=True, slots=True)
class CoinFault:
    """Why a coin session is ⊥, and who is to blame (``proved``: the evidence is a signed/hashed mismatch)."""

    kind: str  # "bad-reveal" | "two-commitments" | "two-reveals" | "not-a-party" | "missing"
    culprits: tuple[bytes, ...]
    proved: bool


class CoinSession:
    """One party's view of one coin (sans-I/O): collects commitments and reveals, checks, combines.

    Every ``on_*`` method checks before it mutates: a message that is rejected
    leaves the session exactly as it was.
    """

    def __init__(self, session: bytes, parties: Sequence[bytes], me: bytes, share: bytes, nonce: bytes) -> None:
        if me not in parties:
            raise ValueError("I am not a party of this coin")
        if len(set(parties)) != len(parties):
            raise ValueError("duplicate party")
        self.session = session
        self.parties = tuple(parties)
        self.me = me
        self._share, self._nonce = share, nonce
        mine = commitment(session, me, share, nonce)
        self._commitments: dict[bytes, bytes] = {me: mine}
        self._shares: dict[bytes, bytes] = {me: share}
        self.fault: CoinFault | None = None

    def my_commitment(self) -> bytes:
        return self._commitments[self.me]

    def may_reveal(self) -> bool:
        """Reveal only once every commitment is in: before that, a late committer could choose its share."""
        return self.fault is None and len(self._commitments) == len(self.parties)

    def my_reveal(self) -> tuple[bytes, bytes]:
        if not self.may_reveal():
            raise RuntimeError("revealing before every commitment is in would let the last committer choose")
        return self._share, self._nonce

    def on_commitment(self, party: bytes, digest: bytes) -> CoinFault | None:
        if party not in self.parties:
            return CoinFault("not-a-party", (party,), True)
        if not isinstance(digest, bytes) or len(digest) != DIGEST_BYTES:
            return self._fail(CoinFault("bad-reveal", (party,), True))
        held = self._commitments.get(party)
        if held is not None:
            return None if held == digest else self._fail(CoinFault("two-commitments", (party,), True))
        self._commitments[party] = digest
        return None

    def on_reveal(self, party: bytes, share: bytes, nonce: bytes) -> CoinFault | None:
        if party not in self.parties:
            return CoinFault("not-a-party", (party,), True)
        digest = self._commitments.get(party)
        if digest is None:
            # A reveal before its commitment: the party skipped the commit step.
            return self._fail(CoinFault("bad-reveal", (party,), True))
        if not opens(digest, self.session, party, share, nonce):
            return self._fail(CoinFault("bad-reveal", (party,), True))
        held = self._shares.get(party)
        if held is not None and held != share:  # cannot happen with a binding commitment; kept as a guard
            return self._fail(CoinFault("two-reveals", (party,), True))
        self._shares[party] = share
        return None

    def missing_commitments(self) -> tuple[bytes, ...]:
        return tuple(p for p in self.parties if p not in self._commitments)

    def missing_reveals(self) -> tuple[bytes, ...]:
        return tuple(p for p in self.parties if p not in self._shares)

    def timeout(self) -> CoinFault:
        """The ⊥ to output when the wait ran out: the silent parties, named without proof."""
        silent = self.missing_commitments() or self.missing_reveals()
        return self._fail(CoinFault("missing", silent, False))

    def value(self) -> bytes | None:
        """The coin once every reveal is in and checked, else ``None`` (always ``None`` after a fault)."""
        if self.fault is not None or len(self._shares) != len(self.parties):
            return None
        return combine(self._shares[p] for p in self.parties)

    def _fail(self, fault: CoinFault) -> CoinFault:
        if self.fault is None:
            self.fault = fault
        return fault
