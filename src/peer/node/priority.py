"""Which outbox class a forwarded gossip envelope goes in (issue #17.3: junk gossip must never
crowd out the traffic of an auction or stream the node takes part in)."""

from __future__ import annotations

from collections.abc import Callable

from peer.ledger import DecodeError, decode_payload
from peer.net.codec import GossipEnvelope
from peer.net.outbox import Priority


def forward_priority(env: GossipEnvelope, *, me: bytes, in_qpq: bool, ledger_topics: tuple[str, ...],
                     qpq_topic: str, is_live: Callable[[str], bool]) -> Priority:
    """PROTOCOL for what this node published and for gossip of an auction or stream it takes
    part in; RELAY for the rest, which the outbox drops first."""
    if env.origin == me:
        return Priority.PROTOCOL
    if env.topic == qpq_topic:
        return Priority.PROTOCOL if in_qpq else Priority.RELAY
    if env.topic not in ledger_topics:
        return Priority.RELAY
    try:
        payload = decode_payload(env.payload)
    except DecodeError:
        return Priority.RELAY
    items = getattr(payload, "entries", None) or getattr(payload, "proofs", None) or ()
    if any(is_live(str(getattr(item, "auction", ""))) for item in items):
        return Priority.PROTOCOL
    return Priority.RELAY
