"""The node's gossip I/O: publishing (split to fit), forwarding with a priority, and delivering.

A collaborator of :class:`peer.node.node.Node`, kept apart so the node stays a
router of instances.  Publishing splits any ledger payload into pieces that
each fit one gossip message (#15.10); forwarding sends the node's own auction
and stream traffic ahead of foreign relays (#17.3); delivery hands ledger
payloads to :class:`peer.node.ledger_io.NodeLedger` and QPQ payloads to the
node's stream.  The pure flooding rules are :class:`peer.net.gossip.Gossip`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peer.ledger.codec import Payload
from peer.ledger.split import PayloadTooLarge, split_payload
from peer.net.codec import GossipEnvelope
from peer.net.gossip import Deliver, Forward, GossipError
from peer.net.outbox import Priority
from peer.node.ledger_io import LEDGER_TOPIC
from peer.node.priority import forward_priority
from peer.node.recovery import SUMMARY_TOPIC
from peer.qpq.node_shell import QPQ_TOPIC

if TYPE_CHECKING:
    from peer.node.node import Node


class GossipIO:
    def __init__(self, node: Node) -> None:
        self.node = node

    def publish_topic(self, topic: str, payload: bytes, *, only: str | None = None) -> None:
        """Publish one encoded payload (an error is logged if gossip refuses it); ``only``
        (a neighbour's key, hex) sends it on that one link instead of every link."""
        node = self.node
        try:
            _, effects = node.gossip.publish(topic, payload, node.wallclock())
        except ValueError as exc:  # PublishError (over the wire limits): ours to fix, never a crash
            node.emit("error", reason=f"cannot publish on {topic}: {exc}")
            return
        self.apply(effects, only=only)

    def publish_pieces(self, topic: str, payload: Payload, *, only: str | None = None) -> None:
        """A ledger payload of any size, as pieces that each fit one gossip message (#15.10)."""
        try:
            pieces = split_payload(payload)
        except PayloadTooLarge as exc:  # no valid entry is too large: ours to fix, never a crash
            self.node.emit("error", reason=f"cannot publish {type(payload).__name__} on {topic}: {exc}")
            return
        for piece in pieces:
            self.publish_topic(topic, piece, only=only)

    def apply(self, effects: list[Any], *, only: str | None = None) -> list[GossipEnvelope]:
        """Send every Forward (with its priority), on link ``only`` alone if given; return the
        envelopes delivered here."""
        node = self.node
        delivered = []
        for effect in effects:
            if isinstance(effect, Forward):
                priority = self.priority(effect.envelope)
                for to in sorted(effect.to) if only is None else [only] if only in effect.to else []:
                    node._send(to, effect.envelope, priority)
                qpq = node._qpq
                if qpq is not None and effect.envelope.topic == QPQ_TOPIC:  # QPQ frame counts (bench)
                    qpq.frames.sent(effect.envelope.payload, len(effect.to),
                                    own=effect.envelope.origin == node.identity.public_key)
            elif isinstance(effect, Deliver):
                delivered.append(effect.envelope)
        return delivered

    def priority(self, env: GossipEnvelope) -> Priority:
        node = self.node
        return forward_priority(env, me=node.identity.public_key, in_qpq=node.qpq is not None,
                                ledger_topics=(LEDGER_TOPIC, SUMMARY_TOPIC), qpq_topic=QPQ_TOPIC,
                                is_live=node.is_live)

    async def on_envelope(self, peer: str, env: GossipEnvelope) -> None:
        node = self.node
        try:
            effects = node.gossip.receive(peer, env, node.wallclock())
        except GossipError as exc:
            node.reject(peer, exc.reason)
            return
        if env.topic == SUMMARY_TOPIC:
            effects = [e for e in effects if not isinstance(e, Forward)]  # neighbour-scoped
        if env.topic == QPQ_TOPIC and node.qpq is not None and not node.qpq.relays(env.origin.hex(), env.payload):
            effects = [e for e in effects if not isinstance(e, Forward)]  # cluster-scoped relaying
        for delivered in self.apply(effects):
            if delivered.topic == QPQ_TOPIC:
                if node._qpq is not None:
                    await node._qpq.on_payload(delivered.origin, delivered.payload)
                continue
            if delivered.topic not in (LEDGER_TOPIC, SUMMARY_TOPIC):
                continue
            await node.ledger_io.delivered(delivered.origin, delivered.payload,
                                           scoped=delivered.topic == SUMMARY_TOPIC)
