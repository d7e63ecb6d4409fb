"""Verifiable coins for SRA: a node's parent choice derived from a value it cannot choose.

The paper lets each node pick its parent "randomly" among its inviters, and a
host break ties at random: private coins, which a strategic node can simply
set (choosing one's parent is a profitable deviation, docs/findings.md).  With
``SraConfig.verifiable_coins`` the coin is the node's Ed25519 signature over
the auction id and the purpose.  Ed25519 signatures are deterministic (RFC
8032), so the node has exactly one valid coin per auction; anyone holding its
public key can check it, and nobody can predict it before the auction id is
fixed.

Parent choice.  Each inviter ``i`` gets the score H(coin || i); the parent is
the inviter with the lowest (score, name).  The Bid carries the coin and the
inviters the node counted; the parent checks the coin, that it is on the list
and that it has the lowest score on it.  A Decline carries the coin and the
parent's name; a declined inviter checks the coin and that its own score is
not below the parent's.  So a node that bids to another inviter than its coin
says must either be refused, or leave the better-scored inviters off its list
and then be caught by their Declines, or stay silent to them (it then loses
its seat in their local auctions: a silent invitee takes part in nothing).
What stays unverifiable is timing: nobody can check that an invitation really
crossed, so a node can still void the edge to an inviter (docs/findings.md).

Host tie-breaks.  When context bids tie for first place in a host's local
auction, the winner is the tied bidder with the lowest (score, name) under the
host's coin for that hop, its signature over ``tie_purpose(hop)``.  The Offer
(guarded resale) or the Award (the paper's rule) carries that coin and the
tied bidders' names; the buyer checks that the coin is the host's signature,
that it is on the list (it knows its own bid, the top one) and that the coin
picks it, and refuses the sale otherwise.  What it cannot check is that the
list is complete: a host that leaves a better-ranked tied bidder off the list
is caught only by that bidder, which does not see the Offer (docs/findings.md).

Keys.  The machine never sees a private key of another node.  A real node
shell passes a :class:`CoinKeys` built from its identity and its neighbours'
public keys (:class:`peer.sra.coin_keys.SignerKeys`); the simulator, which has
no identities, uses :class:`peer.sra.coin_keys.SimulatedKeys`, derived from
the node names (for simulation only: anyone can derive them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Protocol

_DOMAIN = b"peer/sra/coin/v1\x00"


def coin_message(auction: str, purpose: str) -> bytes:
    """What a node signs to draw its coin for ``purpose`` in ``auction`` (domain-separated)."""
    return _DOMAIN + auction.encode() + b"\x00" + purpose.encode()


def parent_purpose() -> str:
    return "parent"


def tie_purpose(hop: int) -> str:
    return f"tie/{hop}"


def score(coin: bytes, name: str) -> bytes:
    """The coin's ranking of inviter ``name``: lower wins."""
    return hashlib.sha256(b"peer/sra/coin-score\x00" + coin + b"\x00" + name.encode()).digest()


def choose_parent(coin: bytes, inviters: Iterable[str]) -> str:
    """The inviter the coin selects."""
    return min(inviters, key=lambda name: (score(coin, name), name))


def outranks(coin: bytes, a: str, b: str) -> bool:
    """Does ``a`` rank before ``b`` under ``coin``?"""
    return (score(coin, a), a) < (score(coin, b), b)


def tie_winner(coin: bytes, tied: Iterable[str]) -> str:
    """The bidder a host's tie coin picks among the bidders tied for first place.

    Each name is scored on its own (not by its position in the participant
    list), so a buyer that knows only the coin and the tied names recomputes
    the pick.  The same rule as :func:`choose_parent`; the coins differ
    (``tie_purpose(hop)`` against ``parent_purpose()``).
    """
    return choose_parent(coin, tied)


def tie_key(coin: bytes, name: str) -> tuple[bytes, str]:
    """Sort key of bidder ``name`` under a tie coin: the lowest key wins a tie."""
    return (score(coin, name), name)


class CoinKeys(Protocol):
    """What a machine needs for verifiable coins: its own signature and its neighbours' keys.

    Implementations (:mod:`peer.sra.coin_keys`) use Ed25519; kept out of this
    module so that the machine's core imports only the standard library.
    """

    def sign(self, message: bytes) -> bytes: ...

    def verify(self, node: str, message: bytes, signature: bytes) -> bool: ...
