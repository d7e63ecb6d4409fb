"""Shared, seeded fixtures for the auctioneer tests."""

from __future__ import annotations

from functools import cache

from peer.auctioneer.bids import Side, SignedBid, sign_bid
from peer.auctioneer.scenario import identity_for
from peer.net.identity import Identity


@cache
def ident(role: str, i: int) -> Identity:
    return identity_for(12345, role, i)


def bid(i: int, value: int, quantity: int, side: Side = Side.USER, round_no: int = 1) -> SignedBid:
    return sign_bid(ident("user" if side == Side.USER else "provider", i), round_no, side, value, quantity)
