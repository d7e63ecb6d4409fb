"""A node's own bids (``peer bid``): signed with the node's key, sent to every provider of a cluster.

The user node needs the cluster file to know the providers (keys, and where
to dial them: a URL in the file or its address directory); it adds each
provider it lacks as a neighbour, so the bid travels on the node's own signed
links.  The providers must list this node's key among the cluster's
``clients`` to accept the link.  One :class:`~peer.auctioneer.user.BidSubmitter`
per round resends to a provider until it acknowledges; the outcome is this
node's part (:class:`~peer.auctioneer.messages.BidderOutcome`) once every
provider reported the same outcome digest, signed by every provider, and the
same part.  A node bids at most once per round: a second, different bid would
be an equivocation, which excludes the bidder.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from peer.auctioneer import messages as m
from peer.auctioneer.bids import Side, SignedBid, sign_bid
from peer.auctioneer.cluster import NodeCluster
from peer.auctioneer.effects import Send, Wake
from peer.auctioneer.shell import ClusterError, read_address
from peer.auctioneer.user import BidSubmitter
from peer.errors import PeerError
from peer.money import format_money
from peer.node.config import NeighbourSpec

if TYPE_CHECKING:
    from peer.auctioneer.node_shell import AuctioneerHost

LINK_WAIT = 15.0  # seconds to wait for links to the providers before bidding anyway (the outbox keeps it)
MARGIN = 0.5  # a bid goes to a round whose window stays open at least this long
RESEND = 1.0
KEEP = 16  # submissions remembered


class BidError(PeerError):
    """A bid this node cannot make; the message says why."""


@dataclass
class Submission:
    cluster: NodeCluster
    bid: SignedBid
    submitter: BidSubmitter
    wakes: list[float] = field(default_factory=list)
    received: trio.Event = field(default_factory=trio.Event)
    done: trio.Event = field(default_factory=trio.Event)
    # Once a provider reports ⊥, the round has no common outcome: stop waiting for the silent ones
    # a phase timeout later (the others' ⊥ notices, with their culprits, come in meanwhile).
    abort_grace: float | None = None


class BidderHost:
    def __init__(self, host: AuctioneerHost) -> None:
        self.host, self.node = host, host.node
        self.rounds: collections.OrderedDict[int, Submission] = collections.OrderedDict()

    # -- from the host

    def expects(self, peer: str, msg: m.Message) -> bool:
        sub = self.rounds.get(msg.round)
        return sub is not None and bytes.fromhex(peer) in sub.cluster.providers

    def on_message(self, peer: str, msg: m.Message, now: float) -> None:
        sub = self.rounds[msg.round]
        s = sub.submitter
        s.on_message(bytes.fromhex(peer), msg, now)
        if all(s.receipts.get(p, 0) >= len(s.batches) for p in s.providers):
            sub.received.set()
        answered = set(s.notices) | set(s.aborts)
        if s.part() is not None or s.aborts and answered >= set(s.providers):
            sub.done.set()
            sub.received.set()
        elif s.aborts and sub.abort_grace is None:
            sub.abort_grace = now + sub.cluster.base.phase_timeout
            self._apply(sub, [Wake(sub.abort_grace)])

    def next_deadline(self) -> float | None:
        times = [min(sub.wakes) for sub in self.rounds.values() if sub.wakes and not sub.done.is_set()]
        return min(times) if times else None

    def on_timer(self, now: float) -> None:
        for sub in self.rounds.values():
            if sub.done.is_set() or not any(t <= now for t in sub.wakes):
                continue
            sub.wakes = [t for t in sub.wakes if t > now]
            if sub.abort_grace is not None and now >= sub.abort_grace:
                sub.done.set()
                sub.received.set()
                continue
            self._apply(sub, sub.submitter.on_tick(now))

    def _apply(self, sub: Submission, effects: list[Any]) -> None:
        for e in effects:
            if isinstance(e, Send):
                self.host.send((e.to,), e.msg)
            elif isinstance(e, Wake):
                sub.wakes.append(e.at)
        self.host.poke()

    # -- the request

    async def bid(self, cluster_path: Path, side: Side, value: int, quantity: int, *, wait: bool,
                  timeout: float) -> dict[str, Any]:
        """Sign and send one bid to every provider; with ``wait``, the outcome for this node."""
        try:
            cluster = NodeCluster.load(cluster_path)
        except ClusterError as exc:
            raise BidError(str(exc)) from None
        me = self.node.identity.public_key
        if me in cluster.providers:
            raise BidError("this node is one of the cluster's executing providers; bid from another node")
        async with self.host.lock:
            self._link(cluster)
        # Links first, then the round: a bid sent into a window that closes before most links are up
        # reaches too few providers to have an outcome (the outbox keeps it past the deadline only).
        with trio.move_on_after(max(0.0, min(LINK_WAIT, timeout))):
            while not {p.hex() for p in cluster.providers} <= set(getattr(self.node, "linked", ())):
                await trio.sleep(0.05)
        async with self.host.lock:
            now = self.host.wallclock()
            round_no = cluster.open_round(now, MARGIN)
            if round_no in self.rounds:
                raise BidError(f"this node already bid in round {round_no} (a second, different bid would be an "
                               f"equivocation); round {round_no + 1} opens in "
                               f"{cluster.start_of(round_no + 1) - now:.1f} s")
            try:
                bid = sign_bid(self.node.identity, round_no, side, value, quantity)
            except ValueError as exc:
                raise BidError(str(exc)) from None
            deadline = cluster.bid_deadline(round_no)
            submitter = BidSubmitter(round_no, (bid,), cluster.providers, resend_every=RESEND, give_up_at=deadline)
            sub = Submission(cluster, bid, submitter)
            self.rounds[round_no] = sub
            while len(self.rounds) > KEEP:
                self.rounds.popitem(last=False)
            self._apply(sub, submitter.start(now))
            self.node.emit("bid", round=round_no, side=side.name.lower(), value=value, quantity=quantity,
                           providers=len(cluster.providers))
        with trio.move_on_after(max(0.1, min(timeout, deadline - self.host.wallclock() + 2.0))):
            await sub.received.wait()
        if wait:
            with trio.move_on_after(max(0.1, timeout)):
                await sub.done.wait()
        return self.describe(round_no)

    def _link(self, cluster: NodeCluster) -> None:
        """Add every provider this node lacks as a neighbour (the lock is held)."""
        taken = set(self.node.names.values())
        for spec in cluster.specs:
            key = spec.pubkey.hex()
            if key in self.node.neighbours:
                continue
            host, port = spec.host, spec.port
            if host is None and cluster.address_dir is not None:
                address = read_address(cluster.address_dir, spec.pubkey)
                if address is not None:
                    host, port = address
            if host is None:
                raise BidError(f"no address for provider {spec.name} (give it a URL in the cluster file, or "
                               "run this node on the providers' host with their address_dir)")
            name = spec.name if spec.name not in taken else f"{spec.name}-{key[:8]}"
            try:
                self.node.add_neighbour(NeighbourSpec(name=name, pubkey=spec.pubkey, host=host, port=port))
            except ValueError as exc:
                raise BidError(f"cannot link to provider {spec.name}: {exc}") from None
            taken.add(name)

    # -- what we know

    def describe(self, round_no: int) -> dict[str, Any]:
        sub = self.rounds.get(round_no)
        if sub is None:
            raise BidError(f"no bid of this node in round {round_no} is remembered")
        s, cluster, bid = sub.submitter, sub.cluster, sub.bid
        name = cluster.name_of
        out: dict[str, Any] = {
            "round": round_no, "side": bid.side.name.lower(), "value": format_money(bid.value),
            "quantity": bid.quantity, "providers": len(cluster.providers),
            "acknowledged": sum(1 for p in cluster.providers if s.receipts.get(p, 0) >= len(s.batches)),
            "rejected": [{"provider": name(p), "reason": why} for p, rs in sorted(s.rejected.items()) for _, why in rs],
            "bids_close_in": round(cluster.bid_deadline(round_no) - self.host.wallclock(), 3),
        }
        part = s.part()
        if part is not None:
            me = self.node.identity.public_key
            out["outcome"] = {
                "digest": part.digest.hex(),
                "trades": [{"user": self.node.n(u.hex()), "provider": name(p) if p in cluster.providers else p.hex()[:12],
                            "quantity": q} for u, p, q in part.trades],
                "pays": format_money(dict(part.charges).get(me, 0)),
                "receives": format_money(dict(part.credits).get(me, 0)),
            }
        elif s.aborts:
            out["outcome"] = {"bottom": {name(p): a.reason for p, a in sorted(s.aborts.items())},
                              "culprits": sorted({name(c) if c in cluster.providers else c.hex()[:12]
                                                  for a in s.aborts.values() for c in a.culprits})}
        return out

    def status(self) -> list[dict[str, Any]]:
        return [self.describe(r) for r in list(self.rounds)[-5:]]
