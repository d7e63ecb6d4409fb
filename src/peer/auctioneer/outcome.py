"""What an allocator outputs: trades and exact payments, and the outcome every provider signs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

_OUTCOME = b"peer/auctioneer/v1/outcome"


@dataclass(frozen=True, slots=True, order=True)
class Trade:
    """``quantity`` bandwidth units of ``provider`` go to ``user``."""

    user: bytes
    provider: bytes
    quantity: int


@dataclass(frozen=True)
class Allocation:
    """Trades, what each user pays (``charges``) and each provider receives (``credits``), in minor units.

    Every tuple is sorted, so equal allocations are equal objects and encode to equal bytes.
    """

    trades: tuple[Trade, ...]
    charges: tuple[tuple[bytes, int], ...]
    credits: tuple[tuple[bytes, int], ...]

    def encode(self) -> bytes:
        return self._encoded

    @cached_property
    def _encoded(self) -> bytes:  # immutable: encoded once however often it is hashed
        out = [len(self.trades).to_bytes(4, "big")]
        out += [t.user + t.provider + t.quantity.to_bytes(8, "big") for t in self.trades]
        for table in (self.charges, self.credits):
            out.append(len(table).to_bytes(4, "big"))
            out += [who + amount.to_bytes(8, "big") for who, amount in table]
        return b"".join(out)

    @staticmethod
    def build(trades: list[Trade], charges: dict[bytes, int], credits: dict[bytes, int]) -> Allocation:
        return Allocation(
            tuple(sorted(trades, key=lambda t: (t.user, t.provider, t.quantity))),
            tuple(sorted((k, v) for k, v in charges.items() if v)),
            tuple(sorted((k, v) for k, v in credits.items() if v)),
        )


@dataclass(frozen=True)
class Outcome:
    """The agreed result of one round: what every honest provider signs and keeps."""

    round: int
    auction: str
    vector_digest: bytes
    coin: bytes
    allocation: Allocation

    def digest(self) -> bytes:
        return self._digest

    @cached_property
    def _digest(self) -> bytes:  # signed, checked, recorded and sent: hashed once
        body = (
            len(_OUTCOME).to_bytes(1, "big") + _OUTCOME + self.round.to_bytes(8, "big")
            + len(self.auction).to_bytes(1, "big") + self.auction.encode() + self.vector_digest + self.coin
        )
        return hashlib.sha256(body + self.allocation.encode()).digest()


@dataclass(frozen=True, slots=True)
class SignedOutcome:
    """An outcome and one signature per executing provider over its digest; verifiable offline."""

    outcome: Outcome
    signatures: tuple[tuple[bytes, bytes], ...]  # (provider key, Ed25519 signature), sorted by key

    def problem(self, providers: tuple[bytes, ...]) -> str | None:
        from peer.auctioneer.signing import signature_ok

        signers = tuple(p for p, _ in self.signatures)
        if signers != tuple(sorted(providers)):
            return "not signed by exactly the executing providers"
        digest = self.outcome.digest()
        for provider, sig in self.signatures:
            if not signature_ok(provider, digest, sig):
                return f"bad signature of {provider.hex()[:12]}"
        return None
