"""Validly signed spam for the #16.1 tests: chains of throwaway keys (announcement and hops)."""

from __future__ import annotations

import hashlib

from nacl.signing import SigningKey

from peer.ledger.entries import Announcement, Chain, SignedHop, sign_hop


def throwaway(tag: str, i: int) -> SigningKey:
    return SigningKey(hashlib.sha256(f"spam/{tag}/{i}".encode()).digest())


def pk(key: SigningKey) -> str:
    return key.verify_key.encode().hex()


def spam_chain(i: int, hops: int = 1, *, tag: str = "t", buyer: SigningKey | None = None) -> Chain:
    """Throwaway seller ``i`` announces ``spam-<tag>-<i>``; each hop is countersigned by a fresh
    throwaway buyer (or by ``buyer`` for the first hop: a neighbour that gives itself a stake)."""
    seller = throwaway(f"{tag}/seller", i)
    chain = Chain(Announcement.create(seller, auction=f"spam-{tag}-{i}", item="junk", created_at_ms=1))
    for h in range(1, hops + 1):
        key = buyer if (h == 1 and buyer is not None) else throwaway(f"{tag}/buyer/{i}", h)
        body = chain.next_body(pk(key), 1)
        chain = chain.appended(SignedHop(body=body, seller_sig=sign_hop(seller, body), buyer_sig=sign_hop(key, body)))
        seller = key
    return chain


def spam_entries(n: int, hops: int = 1, *, tag: str = "t", start: int = 0) -> list:
    return [e for i in range(start, start + n) for e in spam_chain(i, hops, tag=tag).entries]


def spam_proof(i: int, variant: int = 0, *, tag: str = "fp", auction: str | None = None):  # -> FraudProof
    """A valid fraud proof about a throwaway auction: its throwaway seller signed two announcements."""
    from peer.ledger.entries import FraudProof

    seller = throwaway(f"{tag}/seller", i)
    auction = auction or f"spam-{tag}-{i}"
    first = Announcement.create(seller, auction=auction, item=f"junk-{variant}-a", created_at_ms=1)
    second = Announcement.create(seller, auction=auction, item=f"junk-{variant}-b", created_at_ms=1)
    return FraudProof(first, second)
