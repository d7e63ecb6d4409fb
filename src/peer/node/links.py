"""Neighbours added and removed while the node runs (``peer neighbour add/remove``).

The link manager does the link side (:meth:`LinkManager.add_neighbour` starts
a supervised dialer and accepts the key's handshakes;
:meth:`LinkManager.remove_neighbour` closes its link and puts its dialer to
sleep).  What stays here is the node's side: a removed key may still dial us
(it may not know yet), so the node closes any link of that key that comes up
again.
"""

from __future__ import annotations

from typing import Any

from peer.net.link import CloseCode
from peer.net.websocket import LinkManager


class DynamicLinks:
    """Adds and removes neighbours of one running LinkManager."""

    def __init__(self, manager: LinkManager) -> None:
        self.manager = manager
        self.removed: set[bytes] = set()

    def add(self, pubkey: bytes, address: Any) -> None:
        self.removed.discard(pubkey)
        self.manager.add_neighbour(pubkey, address)

    def remove(self, pubkey: bytes) -> None:
        self.removed.add(pubkey)
        self.manager.remove_neighbour(pubkey)

    def close_if_removed(self, peer_hex: str) -> bool:
        """A link came up: close it if its key was removed (True then)."""
        pubkey = bytes.fromhex(peer_hex)
        if pubkey not in self.removed:
            return False
        link = self.manager.link(pubkey)
        if link is not None:
            link.close("not a neighbour any more", CloseCode.GOING_AWAY)
        return True
