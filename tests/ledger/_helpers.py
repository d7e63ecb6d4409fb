"""Deterministic keys and chains for the ledger tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from nacl.signing import SigningKey

from peer.ledger.entries import Announcement, Chain, SignedHop, sign_hop
from peer.sra.ledger_entry import HopEntry

KEYS = [SigningKey(hashlib.sha256(b"ledger-test-key-%d" % i).digest()) for i in range(12)]
PK = [k.verify_key.encode().hex() for k in KEYS]
KEY_OF = dict(zip(PK, KEYS, strict=True))
NAMES = {pk: f"node{i}" for i, pk in enumerate(PK)}


def countersign(body: HopEntry) -> SignedHop:
    """Both parties sign ``body`` (honest hop)."""
    return SignedHop(body=body, seller_sig=sign_hop(KEY_OF[body.seller], body),
                     buyer_sig=sign_hop(KEY_OF[body.buyer], body))


def announce(auction: str = "a1", seller: int = 0, item: str = "lamp", created_at_ms: int = 1_700_000_000_000,
             ) -> Announcement:
    return Announcement.create(KEYS[seller], auction=auction, item=item, created_at_ms=created_at_ms)


def make_chain(auction: str = "a1", hops: int = 3, *, seller: int = 0, prices: list[int] | None = None) -> Chain:
    """Node ``seller`` announces; hop i sells from node seller+i-1 to node seller+i."""
    prices = prices or [100 * i for i in range(1, hops + 1)]
    chain = Chain(announce(auction, seller))
    for i in range(1, hops + 1):
        chain = chain.appended(countersign(chain.next_body(PK[seller + i], prices[i - 1])))
    return chain


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file's bytes under ``path`` (to show that nothing changed)."""
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file() and p.name != ".lock"}
