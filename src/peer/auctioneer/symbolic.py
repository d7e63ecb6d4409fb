"""Symbolic signatures: the simulator's fast mode stands them in for Ed25519, and nothing else does.

The simulator exists to show the protocol's schedule and outcome, not what
Ed25519 costs: checking the 1,008 bid signatures of the headline round once
per provider, and the providers' and the client's checks of the outcome
signatures, are most of its running time.  In the fast mode
(``sim.run_round(..., fast=True)``) a signature is a *token*: 64 bytes,
BLAKE2b of the signer's public key and the signed bytes, that counts only if
the signer made it through this scheme.

Why it is as unforgeable inside the simulator as Ed25519 is:

* a token is made only by :meth:`SymbolicSignatures.signer`, which takes the
  signer's :class:`~peer.net.identity.Identity` (the holder of the secret key),
  and the scheme records every token it made; a token is valid only if it is
  recorded for that public key *and* it is the hash of exactly the bytes being
  checked.  A deviating provider that knows another's public key, or holds a
  token for other bytes, cannot make one that passes: it is not recorded, or
  it is not the hash of these bytes;
* a signature that is not a valid token is checked as Ed25519.  The union of
  two unforgeable schemes is unforgeable, and it keeps the simulator's
  deviations exactly as they are: a deviant that signs a wrong result with its
  real key (``deviations.wrong_result``) is checked, convicted and named as
  with full crypto, and a forged bid still fails (and only then costs an
  Ed25519 check).

Nothing else changes: the signed bytes, message types and sizes are those of
the real run (a token has the 64 bytes of an Ed25519 signature), and the
outcome's digest covers no signature (a bid's digest is of its signed content),
so the fast mode's outcome and digests are those of full crypto, which
``tests/auctioneer/test_sim_fast.py`` checks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from peer.auctioneer.bids import SignedBid
from peer.net.identity import Identity, verify

_PERSON = b"peer/sim/symbsig"  # BLAKE2b personalisation, 16 bytes: a token is never another hash


def _token(public_key: bytes, data: bytes) -> bytes:
    return hashlib.blake2b(public_key + data, digest_size=64, person=_PERSON).digest()


class SymbolicSigner:
    """Signs as one identity in one scheme: what the simulator hands a provider machine as its identity."""

    __slots__ = ("_scheme", "public_key")

    def __init__(self, scheme: SymbolicSignatures, public_key: bytes) -> None:
        self._scheme = scheme
        self.public_key = public_key

    def sign(self, data: bytes) -> bytes:
        token = _token(self.public_key, data)
        self._scheme._made.add((self.public_key, token))
        return token


class SymbolicSignatures:
    """One simulated round's signature scheme; its tokens mean nothing outside it."""

    def __init__(self) -> None:
        self._made: set[tuple[bytes, bytes]] = set()  # (public key, token) of every token signed here

    def signer(self, identity: Identity) -> SymbolicSigner:
        """Only the holder of ``identity`` (its secret key) gets a signer for its public key."""
        if not isinstance(identity, Identity):
            raise TypeError("a symbolic signer is made from an Identity (the holder of the secret key)")
        return SymbolicSigner(self, identity.public_key)

    def verify(self, public_key: bytes, data: bytes, sig: bytes) -> bool:
        if (public_key, sig) in self._made and _token(public_key, data) == sig:
            return True
        return verify(public_key, data, sig)  # not a token of this scheme: it may be a real signature

    def resign_bids(self, bids: Iterable[SignedBid], identities: Mapping[bytes, Identity]) -> tuple[SignedBid, ...]:
        """The same bids, each signed by its bidder in this scheme (as the simulated users do).

        A bid whose bidder is not in ``identities`` keeps its signature (checked as Ed25519).
        """
        out = []
        for bid in bids:
            ident = identities.get(bid.bidder)
            if ident is None:
                out.append(bid)
                continue
            out.append(bid.with_signature(SymbolicSigner(self, ident.public_key).sign(bid.signed_bytes())))
        return tuple(out)
