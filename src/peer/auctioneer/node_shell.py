"""The distributed auctioneer on a real node: the collaborator the node hands its auctioneer traffic to.

A node hosts up to two parts, both sans-I/O machines driven from here:

* the provider role (``peer run --provider CLUSTER``,
  :class:`peer.auctioneer.provider_host.ProviderHost`): one
  :class:`~peer.auctioneer.instance.AuctionRound` per scheduled round;
* bids from this node's own key (``peer bid``,
  :class:`peer.auctioneer.bidder_host.BidderHost`), to every provider of a cluster.

Auctioneer messages travel on the node's own signed links, wrapped in
origin-signed ``GossipEnvelope`` frames of topic ``auctioneer/v1`` sent point
to point (the node routes that topic here before its gossip, so they are never
flooded); the payload is the strict codec of :mod:`peer.auctioneer.codec`, the
same frames :class:`peer.auctioneer.shell.ProviderShell` and the bid client use,
so a standalone bid client talks to node-hosted providers unchanged.  The link
already authenticates its peer, so the origin must be that peer: a relayed
auctioneer frame is refused.

Time is the node's wall clock: rounds are scheduled across hosts.  :meth:`run`
sleeps until the earliest deadline of both parts or a poke (at most
``MAX_SLEEP``; ``IDLE_SLEEP`` while the node has neither part) and takes the
node's lock for each step only.
"""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import trio

from peer.auctioneer import codec
from peer.auctioneer import messages as m
from peer.net.codec import GossipEnvelope
from peer.net.gossip import sign_envelope, to_ms

if TYPE_CHECKING:
    from peer.auctioneer.bidder_host import BidderHost
    from peer.auctioneer.provider_host import ProviderHost
    from peer.node.services import NodeServices

AUCTIONEER_TOPIC = "auctioneer/v1"
ENVELOPE_TTL = 60.0
MAX_SLEEP = 1.0  # every wait is bounded
# A node with neither a provider role nor bids of its own (most nodes) has nothing to time: it sleeps
# until poked (a bid made or a frame for it), waking every minute only to bound the wait.  Waking every
# second cost every idle node CPU for nothing, which 1,000 nodes on 2 cores could not afford.
IDLE_SLEEP = 60.0
TO_BIDDER = (m.BidReceipt, m.OutcomeNotice, m.BidderOutcome, m.AbortNotice)


class AuctioneerHost:
    """Routes a node's auctioneer frames to its provider role and its own bids; sends theirs."""

    def __init__(self, node: NodeServices, lock: AbstractAsyncContextManager[Any], wallclock: Any) -> None:
        self.node = node
        self.lock = lock
        self.wallclock = wallclock
        self.seq = time.time_ns() // 1000  # envelope sequence numbers increase across restarts
        self.provider: ProviderHost | None = None
        self._bidder: BidderHost | None = None
        self._poke = trio.Event()
        cluster_path = getattr(node.config, "provider_cluster", None)  # configs built before the role existed
        if cluster_path is not None:
            from peer.auctioneer.provider_host import open_provider

            self.provider = open_provider(self, cluster_path)

    @property
    def bidder(self) -> BidderHost:
        """The part that submits this node's own bids (made on first use: most nodes never bid)."""
        if self._bidder is None:
            from peer.auctioneer.bidder_host import BidderHost

            self._bidder = BidderHost(self)
            self.poke()  # the loop may be in its idle sleep: it times this part from now on
        return self._bidder

    # -- wire

    def send(self, recipients: tuple[bytes, ...], msg: m.Message) -> None:
        """One encoding and one envelope signature for all recipients (point to point: sharing is safe)."""
        if not recipients:
            return
        self.seq += 1
        env = sign_envelope(self.node.identity, self.seq, to_ms(self.wallclock() + ENVELOPE_TTL),
                            AUCTIONEER_TOPIC, codec.encode(msg))
        for to in recipients:
            self.node.send(to.hex(), env)
            self.node.messages_out += 1

    async def on_envelope(self, peer: str, env: GossipEnvelope) -> None:
        """An auctioneer frame from link peer ``peer`` (the node's lock is held)."""
        if env.origin.hex() != peer:
            self.node.reject(peer, "auctioneer frames go point to point; this one was relayed")
            return
        try:
            msg = codec.decode(env.payload)
        except codec.WireError as exc:
            self.node.reject(peer, f"malformed auctioneer message: {exc}")
            return
        now = self.wallclock()
        if isinstance(msg, TO_BIDDER):
            if self._bidder is None or not self._bidder.expects(peer, msg):
                return  # an answer to bids we no longer wait for (or never sent): nothing to do
            self._bidder.on_message(peer, msg, now)
        elif self.provider is not None:
            await self.provider.on_message(peer, msg, now)
        else:
            self.node.reject(peer, f"{type(msg).__name__} to a node that is not a provider")
        self.poke()

    # -- time

    def poke(self) -> None:
        self._poke.set()

    def next_deadline(self) -> float | None:
        times = [t for t in (
            self.provider.next_deadline() if self.provider is not None else None,
            self._bidder.next_deadline() if self._bidder is not None else None,
        ) if t is not None]
        return min(times) if times else None

    async def run(self) -> None:
        """Act on every deadline of both parts (wall clock), forever; cancelled with the node."""
        async with trio.open_nursery() as nursery:
            if self.provider is not None:
                self.provider.started()
                nursery.start_soon(self.provider.learn)
            while True:
                deadline = self.next_deadline()
                bound = IDLE_SLEEP if self.provider is None and self._bidder is None else MAX_SLEEP
                wait = bound if deadline is None else max(0.0, deadline - self.wallclock())
                with trio.move_on_after(min(wait, bound)):
                    await self._poke.wait()
                self._poke = trio.Event()
                if self.provider is None and self._bidder is None:
                    continue  # most nodes: nothing of ours to time, so never take the node's lock
                async with self.lock:
                    now = self.wallclock()
                    if self.provider is not None:
                        await self.provider.on_timer(now)
                    if self._bidder is not None:
                        self._bidder.on_timer(now)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.provider is not None:
            out["provider"] = self.provider.status()
        if self._bidder is not None:
            out["bids"] = self._bidder.status()
        return out
