"""The content of one resale hop on the ledger, and its hash chain.

Signatures are added by the node shell (``peer.ledger``); the chain itself is
pure: genesis is the hash of the seller's announcement and each hop's entry
names the hash of the entry before it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

_DOMAIN_GENESIS = b"peer/sra/genesis/v1\x00"
_DOMAIN_HOP = b"peer/sra/hop/v1\x00"


def _field(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(4, "big") + raw


def genesis_hash(auction: str, item: str, seller: str, mechanism: str = "sra/v1") -> str:
    """Hash of the seller's announcement: the root of the auction's chain."""
    body = _DOMAIN_GENESIS + b"".join(_field(x) for x in (auction, item, seller, mechanism))
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class HopEntry:
    """One resale: ``seller`` sold to ``buyer`` at ``price`` in hop ``hop``."""

    auction: str
    hop: int
    seller: str
    buyer: str
    price: int
    prev: str

    def canonical_bytes(self) -> bytes:
        """Domain-separated, length-prefixed, fixed-order bytes: what gets hashed and signed."""
        return (
            _DOMAIN_HOP
            + _field(self.auction)
            + self.hop.to_bytes(8, "big")
            + _field(self.seller)
            + _field(self.buyer)
            + self.price.to_bytes(16, "big")
            + bytes.fromhex(self.prev)
        )

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.canonical_bytes()).hexdigest()


def verify_chain(genesis: str, entries: list[HopEntry]) -> str | None:
    """Return None if ``entries`` form a valid chain from ``genesis``, else the first problem."""
    prev = genesis
    last_buyer: str | None = None
    last_price = 0
    for index, entry in enumerate(entries, start=1):
        if entry.hop != index:
            return f"entry {index} has hop {entry.hop}"
        if entry.prev != prev:
            return f"hop {index} does not chain to the entry before it"
        if last_buyer is not None and entry.seller != last_buyer:
            return f"hop {index} is sold by {entry.seller}, who did not buy hop {index - 1}"
        if entry.price < last_price:
            return f"hop {index} sells below the seller's reserve"
        prev, last_buyer, last_price = entry.hash, entry.buyer, entry.price
    return None
