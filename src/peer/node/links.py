"""Neighbours added and removed while the node runs (``peer neighbour add/remove``).

:class:`peer.net.websocket.LinkManager` takes its neighbours at construction;
this module adds one at run time (its stats, its pinned key for inbound
handshakes, and a supervised dialer with the manager's jittered backoff) and
removes one (its dialer goes dormant, its link is closed, and the node closes
any link of that key that comes up again).  It reaches into the manager's
registry: the hook it needs, ``LinkManager.add_neighbour`` /
``remove_neighbour``, belongs in ``peer.net.websocket`` and this module should
then call it.
"""

from __future__ import annotations

import random
from typing import Any

import trio

from peer.net.link import CloseCode
from peer.net.linkstate import LinkStats
from peer.net.websocket import LinkManager


class DynamicLinks:
    """Adds and removes neighbours of one running LinkManager."""

    def __init__(self, manager: LinkManager, rng: random.Random) -> None:
        self.manager = manager
        self._rng = rng
        self._dialing: set[bytes] = set(manager._stats)  # keys with a dialer task (dormant or not)
        self.removed: set[bytes] = set()

    def add(self, nursery: trio.Nursery, pubkey: bytes, address: Any) -> None:
        m = self.manager
        self.removed.discard(pubkey)
        if pubkey not in m._stats:
            m._stats[pubkey], m._changed[pubkey] = LinkStats(), trio.Event()
            m._address_set[pubkey] = trio.Event()
        if address is not None:
            m.set_address(pubkey, address)  # wakes a dormant dialer
        if pubkey not in self._dialing:
            self._dialing.add(pubkey)
            nursery.start_soon(m._dialer, pubkey, random.Random(self._rng.getrandbits(64)))

    def remove(self, pubkey: bytes) -> None:
        m = self.manager
        self.removed.add(pubkey)
        m._addresses.pop(pubkey, None)
        if pubkey in m._address_set:
            m._address_set[pubkey] = trio.Event()  # the dialer waits for an address that never comes
        link = m.link(pubkey)
        if link is not None:
            link.close("neighbour removed", CloseCode.GOING_AWAY)

    def close_if_removed(self, peer_hex: str) -> bool:
        """A link came up: close it if its key was removed (True then)."""
        pubkey = bytes.fromhex(peer_hex)
        if pubkey not in self.removed:
            return False
        link = self.manager.link(pubkey)
        if link is not None:
            link.close("not a neighbour any more", CloseCode.GOING_AWAY)
        return True
