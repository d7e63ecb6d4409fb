"""Seeded instances of Sec. 6: users, providers, and their signed bids.

Units: a user's demand is uniform on (0, 1] bandwidth units, on a grid of
``1/grain`` (quantities are integers of that grain); values per bandwidth unit
are uniform on [0.75, 1.25] (users) and (0, 1] (provider costs), held in minor
money units (peer.money: 10^6 per unit) per quantity step, so every payment,
value x quantity, is an exact integer.

* double auction: provider capacity = total demand / m x U[0.5, 1.5];
* standard auction: capacity = total demand / m x U[0, 0.25] (Sec. 6.3).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from peer.auctioneer.bids import Side, SignedBid, sign_bid
from peer.money import SCALE
from peer.net.identity import Identity

DOUBLE_GRAIN = 1000
STANDARD_GRAIN = 10


def identity_for(seed: int, role: str, index: int) -> Identity:
    return Identity.from_seed(hashlib.sha256(f"peer/auctioneer/sim/{seed}/{role}/{index}".encode()).digest())


@dataclass(frozen=True, slots=True)
class Instance:
    round: int
    auction: str
    users: tuple[Identity, ...]
    providers: tuple[Identity, ...]  # sellers; the executing providers are a prefix of them
    bids: tuple[SignedBid, ...]  # user bids then provider asks


def make_instance(seed: int, n_users: int, n_providers: int = 8, auction: str = "double", round_no: int = 1) -> Instance:
    rng = random.Random(f"{seed}/{n_users}/{n_providers}/{auction}")
    grain = DOUBLE_GRAIN if auction == "double" else STANDARD_GRAIN
    users = tuple(identity_for(seed, "user", i) for i in range(n_users))
    providers = tuple(sorted((identity_for(seed, "provider", j) for j in range(n_providers)), key=lambda i: i.public_key))
    per_step = SCALE // grain  # minor units per quantity step for a value of 1 per bandwidth unit
    demands = [rng.randint(1, grain) for _ in users]
    bids = [
        sign_bid(u, round_no, Side.USER, rng.randint(3 * per_step // 4, 5 * per_step // 4), d)
        for u, d in zip(users, demands, strict=True)
    ]
    total = sum(demands)
    low, high = (0.5, 1.5) if auction == "double" else (0.0, 0.25)
    for p in providers:
        capacity = int(total / n_providers * rng.uniform(low, high))
        cost = rng.randint(1, per_step) if auction == "double" else 0
        bids.append(sign_bid(p, round_no, Side.PROVIDER, cost, capacity))
    return Instance(round_no, auction, users, providers, tuple(bids))
