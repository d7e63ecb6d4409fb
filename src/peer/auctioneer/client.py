"""The bid client: signs and submits the bids of many users to every executing provider, as the paper's
experiment client does, and times the round until every provider holds the identical signed outcome."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from peer.auctioneer import messages as m
from peer.auctioneer.bids import SignedBid
from peer.auctioneer.effects import Send
from peer.auctioneer.shell import Cluster, Sender, learn_addresses, unwrap
from peer.auctioneer.user import BidSubmitter
from peer.net.identity import Identity
from peer.net.link import LinkConfig
from peer.net.linkstate import LinkUp, Received
from peer.net.websocket import LinkManager, Neighbour, TcpTransport


@dataclass
class ClientReport:
    round: int
    digest: bytes | None
    first_sent: float  # monotonic seconds (time.perf_counter)
    receipts_at: float | None = None  # every provider acknowledged every batch
    settled_at: float | None = None  # every provider's notice in, all equal and fully signed
    notices_at: dict[bytes, float] = field(default_factory=dict)
    aborts: dict[bytes, m.AbortNotice] = field(default_factory=dict)
    rejected: int = 0
    bids: int = 0

    @property
    def seconds(self) -> float | None:
        return None if self.settled_at is None else self.settled_at - self.first_sent


async def submit(
    identity: Identity, cluster: Cluster, directory: Path | None, round_no: int, bids: tuple[SignedBid, ...], *,
    connect_timeout: float = 30.0, round_timeout: float = 60.0, close: bool = True,
    addresses: dict[bytes, tuple[str, int]] | None = None,
    prepare: Callable[[], Awaitable[tuple[int, tuple[SignedBid, ...]]]] | None = None,
) -> ClientReport:
    """Dial every provider, send ``bids`` to each (then CloseBids if ``close``), wait for the outcome.

    Providers' addresses: ``addresses`` (from a cluster file's URLs), the others
    learnt from ``directory`` (``None``: every address is given).  ``prepare``,
    if given, is awaited once the links are up and returns the round and its
    bids (a scheduled round is picked then, so connecting cannot eat its window).
    """
    links = LinkManager(
        identity, [Neighbour(p) for p in cluster.providers], TcpTransport("127.0.0.1", 0),
        config=LinkConfig(defer_dial=0.0, connect_timeout=2.0, handshake_timeout=3.0),
    )
    sender = Sender(identity, links)
    async with trio.open_nursery() as nursery:
        await nursery.start(links.run)
        known = addresses or {}
        for key, address in known.items():
            links.set_address(key, address)
        if directory is not None:
            rest = tuple(p for p in cluster.providers if p not in known)
            nursery.start_soon(learn_addresses, links, directory, rest, connect_timeout)
        up: set[bytes] = set()
        with trio.move_on_after(connect_timeout):
            async for event in links.events:
                if isinstance(event, LinkUp):
                    up.add(bytes.fromhex(event.peer))
                    if up >= set(cluster.providers):
                        break
        if not up:
            nursery.cancel_scope.cancel()
            raise TimeoutError(f"no link to any provider after {connect_timeout:g}s")
        # Bids for a provider we cannot reach wait in its queue: the others still run the round
        # (and output ⊥ naming it if it stays silent), which is what the client must report.
        if prepare is not None:
            round_no, bids = await prepare()
        submitter = BidSubmitter(round_no, bids, cluster.providers, resend_every=round_timeout, give_up_at=round_timeout)
        report = ClientReport(round_no, None, 0.0, bids=len(bids))
        report.first_sent = time.perf_counter()
        by_message: dict[int, tuple[m.Message, list[bytes]]] = {}  # the same batch goes to every provider
        for e in submitter.start(trio.current_time()):
            if isinstance(e, Send):
                by_message.setdefault(id(e.msg), (e.msg, []))[1].append(e.to)
        for msg, recipients in by_message.values():
            sender.send_many(tuple(recipients), msg)
        if close:
            sender.send_many(cluster.providers, m.CloseBids(round_no))
        with trio.move_on_after(round_timeout):
            async for event in links.events:
                if not isinstance(event, Received):
                    continue
                got = unwrap(event)
                if got is None:
                    continue
                who, msg = got
                submitter.on_message(who, msg, trio.current_time())
                now = time.perf_counter()
                if isinstance(msg, m.OutcomeNotice):
                    report.notices_at[who] = now
                if report.receipts_at is None and all(
                    submitter.receipts.get(p, 0) >= len(submitter.batches) for p in cluster.providers
                ):
                    report.receipts_at = now
                digest = submitter.settled()
                if digest is not None:
                    report.digest, report.settled_at = digest, now
                    break
                if len(submitter.notices) + len(submitter.aborts) == len(cluster.providers):
                    break
        report.aborts = dict(submitter.aborts)
        report.rejected = sum(len(r) for r in submitter.rejected.values())
        nursery.cancel_scope.cancel()
    return report
