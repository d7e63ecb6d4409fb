"""Allocation entries: what every node records per resource, hash-chained per stream.

An entry holds only what every node knows after the round (the winner, its
cluster, the winning final value, the deciding level's transcript hash and the
membership digest), so honest nodes record byte-identical entries and any two
copies can be compared.  A node's shell signs its copy with
:func:`sign_allocation` (an attestation: "I computed this outcome");
:func:`verify_allocation` checks one, :func:`verify_allocation_chain` a stream.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from nacl.signing import SigningKey

from peer.ledger.keys import SignerLike, public_hex, sign, verify
from peer.qpq.commit import lp
from peer.qpq.fixed import VALUE_BYTES

_GENESIS = b"peer/qpq/v1/genesis"
_SIM_KEY = b"peer/qpq/v1/sim-key"
_ALLOCATION = b"peer/qpq/v1/allocation"


def _text(s: str) -> bytes:
    return lp(s.encode())


def stream_genesis(stream: str, membership_digest: str) -> str:
    """The root of a stream's chain: binds the stream to its cluster membership."""
    return hashlib.sha256(lp(_GENESIS) + _text(stream) + bytes.fromhex(membership_digest)).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationEntry:
    """Resource ``round`` of ``stream`` went to ``winner`` ("" when nobody could win)."""

    stream: str
    round: int
    winner: str
    cluster: str
    value: int  # the winner's final value at the deciding level (fixed point)
    transcript: str  # hex sha256 of the deciding level's reveals
    membership: str  # hex digest of the cluster membership
    prev: str  # hash of the previous entry of this stream (genesis for round 0)

    def signed_bytes(self) -> bytes:
        return (
            lp(_ALLOCATION)
            + _text(self.stream)
            + self.round.to_bytes(8, "big")
            + _text(self.winner)
            + _text(self.cluster)
            + self.value.to_bytes(VALUE_BYTES, "big")
            + bytes.fromhex(self.transcript)
            + bytes.fromhex(self.membership)
            + bytes.fromhex(self.prev)
        )

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.signed_bytes()).hexdigest()

    def to_json(self) -> dict[str, object]:
        return {
            "stream": self.stream, "round": self.round, "winner": self.winner, "cluster": self.cluster,
            "value": self.value, "transcript": self.transcript, "membership": self.membership,
            "prev": self.prev, "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class SignedAllocation:
    entry: AllocationEntry
    signer: str  # public key, hex
    signature: bytes


def sign_allocation(key: SignerLike, entry: AllocationEntry) -> SignedAllocation:
    return SignedAllocation(entry, public_hex(key), sign(key, entry.signed_bytes()))


def verify_allocation(signed: SignedAllocation) -> bool:
    return verify(signed.signer, signed.entry.signed_bytes(), signed.signature)


def verify_allocation_chain(genesis: str, entries: list[AllocationEntry]) -> str | None:
    """None if ``entries`` are rounds 0.. of one stream chained from ``genesis``, else the first problem."""
    prev = genesis
    for index, entry in enumerate(entries):
        if entry.round != index:
            return f"entry {index} is for round {entry.round}"
        if entry.prev != prev:
            return f"round {index} does not chain to the entry before it"
        prev = entry.hash
    return None


def sim_signing_key(seed: int, node: str) -> SigningKey:
    """A simulated node's Ed25519 key (real nodes use their identity key)."""
    return SigningKey(hashlib.sha256(lp(_SIM_KEY) + seed.to_bytes(16, "big", signed=True) + _text(node)).digest())
