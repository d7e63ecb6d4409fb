"""What an owner (the control socket, a configured sale) asks a running node to do.

Each function runs with the node's lock held by the caller, for its own step
only; none waits for an auction to end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from peer.ledger import Announcement, Entries, InvalidEntry
from peer.ledger.store import StoreError
from peer.node.config import NeighbourSpec
from peer.node.values import ValuesError, check_item
from peer.sra.ids import derive_auction_id

if TYPE_CHECKING:
    from peer.node.node import Node


class SellError(Exception):
    """A local sale cannot start; the message says why (one line for the user)."""


async def sell(node: Node, item: str, *, auction_id: str | None = None) -> str:
    """Start selling ``item`` now (the caller holds the lock); returns the auction id.

    Raises:
        SellError: why the sale cannot start (nothing was announced then).
    """
    try:
        check_item(item)
    except ValuesError as exc:
        raise SellError(str(exc)) from None
    if node.store_failure is not None:
        raise SellError(f"cannot sell {item}: the ledger cannot be written ({node.store_failure})")
    refusal = node.instances.refusal(origin=None, owner=node.me)
    if refusal is not None:
        raise SellError(f"cannot sell {item}: {refusal}")
    created = int(node.wallclock() * 1000)
    auction = auction_id or derive_auction_id(node.me, item, created)
    while auction_id is None and (node.store.chain(auction) is not None or node.instances.get(auction)
                                  or node.instances.is_finished(auction)):
        created += 1  # two sales of one item in one millisecond
        auction = derive_auction_id(node.me, item, created)
    try:
        announcement = Announcement.create(node.identity, auction=auction, item=item, created_at_ms=created)
        await trio.to_thread.run_sync(node.store.append_announcement, announcement)
    except InvalidEntry as exc:
        raise SellError(f"cannot sell {item} as {auction!r}: {exc}") from None
    except (StoreError, OSError) as exc:
        node._store_failed(exc)
        raise SellError(f"cannot sell {item}: the ledger cannot be written ({node.store_failure})") from None
    except ValueError as exc:
        raise SellError(f"cannot sell {item}: {exc}") from None
    node._emit("ledger", auction=auction, position=0, entry=announcement.hash, what="announcement")
    node.publish(Entries((announcement,)))
    now = trio.current_time()
    inst = node.sra.new_auction(auction, item, node.me, node.values.value_for(item), None, now)
    node._add(inst)
    node._emit("announced", auction=auction, item=item)
    node.note(f"selling {item} ({auction})")
    await node.sra.apply(inst, inst.machine.start(now))
    node._after(inst)
    node.poke()
    return auction

def add_neighbour(node: Node, spec: NeighbourSpec) -> None:
    """Link to a new neighbour now (future auctions include it).  Raises ValueError on a clash."""
    key = spec.pubkey.hex()
    if key == node.me:
        raise ValueError("a node is not its own neighbour")
    if key in node.neighbours:
        raise ValueError(f"{node.n(key)} ({key[:16]}...) is already a neighbour")
    if spec.name in {node.names.get(k) for k in node.neighbours}:
        raise ValueError(f"the name {spec.name!r} is taken by another neighbour")
    node.names[key] = spec.name
    node.store.remember_names({key: spec.name})
    node.neighbours = sorted([*node.neighbours, key])
    node.gossip.set_neighbours(node.neighbours)
    node.links.add(spec.pubkey, spec.address)
    node._emit("neighbour", peer=spec.name, key=key, added=True)
    node.note(f"neighbour {spec.name} added")

def unban_neighbour(node: Node, name: str) -> str:
    """Lift the ban of the neighbour called ``name`` (or with that key, in hex); returns its key.

    Raises:
        ValueError: no such neighbour, or it is not banned.
    """
    banned = node.manager.bans()
    key = name if name in banned else next((k for k in banned if node.names.get(k) == name), None)
    if key is None:
        if name in node.names.values() or name in node.names:
            raise ValueError(f"{name} is not banned")
        raise ValueError(f"no neighbour called {name!r}")
    node.manager.unban(key)
    node._emit("unbanned", peer=node.n(key), key=key)
    node.note(f"unbanned {node.n(key)}")
    return key


def remove_neighbour(node: Node, name: str) -> str:
    """Stop linking to the neighbour called ``name``; returns its key.  Raises ValueError if none."""
    key = next((k for k in node.neighbours if node.names.get(k) == name), None)
    if key is None:
        raise ValueError(f"no neighbour called {name!r}")
    node.neighbours = [k for k in node.neighbours if k != key]
    node.outbox.discard(key)  # nothing queued for it is sent any more
    node.gossip.set_neighbours(node.neighbours)
    node.linked.discard(key)
    node.links.remove(bytes.fromhex(key))
    node._emit("neighbour", peer=name, key=key, added=False)
    node.note(f"neighbour {name} removed")
    return key
