"""Auction ids that nobody but their seller can claim (issue #15.2, auction-id squatting).

A node's auction ids are ``<key prefix>/<item>/<ms>``: the first 16 hex digits
of the seller's public key (64 bits: grinding a key to match is out of reach),
the item and the creation time in milliseconds.  Every node refuses an
announcement whose id starts with a key prefix that is not its signer's, so a
neighbour that announces the seller's id first only gets its own announcement
refused.  Ids without a key prefix (``--auction-id`` given explicitly) are
accepted as before and are not protected; ids the node makes itself always
carry the prefix, and the launcher reads the seller's from its ``announced``
event.
"""

from __future__ import annotations

import re

KEY_PREFIX_HEX = 16
_PREFIXED = re.compile(r"^([0-9a-f]{16})/")


def key_prefix(seller_hex: str) -> str:
    return seller_hex[:KEY_PREFIX_HEX]


def derive_auction_id(seller_hex: str, item: str, created_ms: int, suffix: str | None = None) -> str:
    """The id of a sale ``seller_hex`` starts now (``suffix`` replaces item and time when given)."""
    return f"{key_prefix(seller_hex)}/{suffix if suffix is not None else f'{item}/{created_ms}'}"


def squatting(auction: str, signer_hex: str) -> str | None:
    """Why an announcement of ``auction`` signed by ``signer_hex`` claims another seller's id, or None."""
    match = _PREFIXED.match(auction)
    if match is None or match.group(1) == key_prefix(signer_hex):
        return None
    return f"auction id {auction!r} belongs to the seller whose key starts {match.group(1)}, not to its signer"
