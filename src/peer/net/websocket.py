"""Links over trio-websocket: the server, the dialers, and the registry.

Theory of operation
-------------------
A :class:`LinkManager` owns every link of one node.  It serves inbound
connections (:meth:`LinkManager.serve_links`) and runs one supervised dialer per
configured neighbour (:meth:`LinkManager.run_dialers`); :meth:`LinkManager.run`
does both.  Each raw byte stream, inbound or outbound, goes through the same
path: websocket upgrade with ``wrap_server_stream``/``wrap_client_stream`` and
our ``max_message_size``, the authenticated handshake, registration, then
:meth:`Link.run` until the link goes down.  Using the ``wrap_*`` functions for
TCP too (rather than ``serve_websocket``/``open_websocket``) means that
the in-memory transport and real sockets run literally the same code, and that one
``move_on_after(handshake_timeout)`` bounds the websocket upgrade *and* our
handshake together (pitfall 12).

One link per neighbour pair: whoever dials, a newly authenticated link goes
through :func:`peer.net.linkstate.keep_new_link`: a link dialled by the lower
public key is kept over one dialled by the higher key, and otherwise the newer
link wins.  The higher key also defers its first dial by ``defer_dial`` so the
duplicate rarely happens at all.  A dialer only dials while it has no link to its
neighbour, whichever side dialled the current one.

The node shell reads :attr:`LinkManager.events` (``LinkUp``, ``Received``,
``LinkDown``, and the rate-limited ``HandshakeFailed`` and ``PeerBanned``) and
sends with :meth:`LinkManager.send_nowait`.  Every failure of one connection is
contained in :meth:`LinkManager._run_stream`: the server and the other links
never see it (pitfalls 3, 9, 11).

Under attack: inbound connections pending a handshake are capped globally and
per source (:mod:`peer.net.admission`), and dropped the moment they hang up;
abuse closes feed a per-key score that throttles and bans redials across
reconnects (:mod:`peer.net.abuse`); failed handshakes are reported once per
interval with the keys involved (:mod:`peer.net.failures`).  The transports
live in :mod:`peer.net.transport` (re-exported here).
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

import trio
from trio_websocket import ConnectionClosed, wrap_client_stream, wrap_server_stream

from peer.net.abuse import AbuseTracker, Ban, ReportLimiter
from peer.net.admission import Admission, Stage, Ticket, pending_cap_for_fd_limit
from peer.net.codec import LinkMessage
from peer.net.events import EventChannel
from peer.net.failures import describe_failure
from peer.net.handshake import DialerHandshake, HandshakeError, ListenerHandshake
from peer.net.identity import Identity, short_name
from peer.net.link import LINK_ERRORS, CloseCode, Link, LinkConfig, close_ws, describe, run_handshake
from peer.net.linkstate import (
    Backoff,
    HandshakeFailed,
    LinkDown,
    LinkEvent,
    LinkSnapshot,
    LinkStats,
    LinkUp,
    PeerBanned,
    Received,
    keep_new_link,
)
from peer.net.reclaim import reclaim_memory

# The transports moved to peer.net.transport; these names stay importable from here.
from peer.net.transport import Address as Address
from peer.net.transport import MemoryConnection as MemoryConnection
from peer.net.transport import MemoryHub as MemoryHub
from peer.net.transport import MemoryTransport as MemoryTransport
from peer.net.transport import StreamHandler as StreamHandler
from peer.net.transport import TcpTransport as TcpTransport
from peer.net.transport import Transport as Transport
from peer.net.transport import WatchedStream, source_of

log = logging.getLogger(__name__)

RESOURCE = "/peer/v1"
#: A flood is over, and memory worth trimming, once this many handshakes were pending at once.
RECLAIM_AFTER_PEAK = 32


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A configured neighbour: its pinned public key and, if we dial it, its address."""

    pubkey: bytes
    address: Address = None


def _hex(peer: str | bytes) -> bytes:
    return bytes.fromhex(peer) if isinstance(peer, str) else peer


class LinkManager:
    """All links of one node (see the module docstring)."""

    def __init__(
        self,
        identity: Identity,
        neighbours: Iterable[Neighbour],
        transport: Transport,
        *,
        config: LinkConfig | None = None,
        rng: random.Random | None = None,
        events_size: int = 256,
    ) -> None:
        self.identity = identity
        self.config = cfg = config or LinkConfig()
        self._transport = transport
        self._rng = rng or random.Random()
        self._addresses: dict[bytes, Address] = {}
        self._address_set: dict[bytes, trio.Event] = {}
        self._stats: dict[bytes, LinkStats] = {}
        self._changed: dict[bytes, trio.Event] = {}
        self._links: dict[bytes, Link] = {}
        self._dialers: trio.Nursery | None = None  # while run_dialers runs
        self._dialing: set[bytes] = set()  # keys with a dialer task (dormant or not)
        for nb in neighbours:
            if nb.pubkey == identity.public_key:
                raise ValueError("a node is not its own neighbour")
            self._stats[nb.pubkey], self._changed[nb.pubkey] = LinkStats(), trio.Event()
            self._address_set[nb.pubkey] = trio.Event()
            if nb.address is not None:
                self.set_address(nb.pubkey, nb.address)
        self.unknown_handshake_failures = 0  # inbound connections that never authenticated
        self.handshake_failures: Counter[str] = Counter()  # by HandshakeError kind, inbound and outbound
        self.address: Address = None
        self.admission = Admission(pending_cap_for_fd_limit(cfg.max_pending), cfg.max_pending_per_source)
        self.abuse = AbuseTracker(
            half_life=cfg.abuse_half_life, backoff_base=cfg.abuse_backoff_base,
            backoff_cap=cfg.abuse_backoff_cap, ban_after=cfg.ban_after,
        )
        self._reports = ReportLimiter(cfg.report_interval)
        self._abuse_reports = ReportLimiter(cfg.report_interval)
        self.reclaims = 0  # times memory was trimmed after a flood
        self.events: EventChannel[LinkEvent] = EventChannel(events_size, cfg.events_bytes)

    # --- the node shell's API ---------------------------------------------------

    def set_address(self, pubkey: bytes, address: Address) -> None:
        """Tell the dialer where ``pubkey`` listens (it waits until it knows)."""
        self._addresses[pubkey] = address
        self._address_set[pubkey].set()

    def add_neighbour(self, pubkey: bytes, address: Address = None) -> None:
        """Take ``pubkey`` as a neighbour from now on (or again): its inbound handshakes are
        accepted, and a supervised dialer dials ``address`` if given.  Idempotent."""
        if pubkey == self.identity.public_key:
            raise ValueError("a node is not its own neighbour")
        if pubkey not in self._stats:
            self._stats[pubkey], self._changed[pubkey] = LinkStats(), trio.Event()
            self._address_set[pubkey] = trio.Event()
        if address is not None:
            self.set_address(pubkey, address)  # wakes a dormant dialer
        if self._dialers is not None:
            # Added while running: the far side rarely knows us yet (a user linking to
            # providers), so waiting for its dial would only delay the link.
            self._start_dialer(pubkey, defer=False)

    def remove_neighbour(self, pubkey: bytes) -> None:
        """Stop dialling ``pubkey`` and close its link.  Its dialer goes dormant (it waits
        for an address that only :meth:`add_neighbour` gives); its stats stay for ``status``.
        The caller refuses any link of that key that comes up again (it may be inbound)."""
        self._addresses.pop(pubkey, None)
        if pubkey in self._address_set:
            self._address_set[pubkey] = trio.Event()
        link = self._links.get(pubkey)
        if link is not None:
            link.close("neighbour removed", CloseCode.GOING_AWAY)

    def send_nowait(self, peer: str | bytes, msg: LinkMessage) -> bool:
        """Queue ``msg`` to ``peer`` (hex or raw key).  False if no link or its outbox is full."""
        link = self._links.get(_hex(peer))
        return link.send_nowait(msg) if link is not None else False

    def is_up(self, peer: str | bytes) -> bool:
        return _hex(peer) in self._links

    def link(self, peer: str | bytes) -> Link | None:
        return self._links.get(_hex(peer))

    def report_abuse(self, peer: str | bytes, reason: str) -> bool:
        """Count application-level misbehaviour (e.g. a forged gossip envelope) against ``peer``'s link.

        Returns whether the caller should log this report: at most one per peer
        per ``report_interval`` (the rest are counted in :meth:`suppressed_reports`),
        so a flood of refusals cannot flood the log.
        """
        link = self.link(peer)
        if link is not None:
            link.report_abuse(reason)
        return self._abuse_reports.offer(_hex(peer), trio.current_time()) is not None

    def suppressed_reports(self) -> dict[str, int]:
        """Abuse reports not logged because of the rate limit, per peer, since the last
        call that returned them (call it once per ``report_interval`` for a summary line)."""
        return {k.hex(): n for k, n, _ in self._abuse_reports.due(trio.current_time())}  # type: ignore[union-attr]

    def snapshot(self) -> dict[str, LinkSnapshot]:
        return {pk.hex(): st.snapshot(pk.hex(), short_name(pk)) for pk, st in self._stats.items()}

    # --- abuse that outlives a link: what an operator's control client needs -------

    def bans(self) -> dict[str, Ban]:
        """Banned keys (hex) with the logged reason and when."""
        return {k.hex(): b for k, b in self.abuse.bans().items()}

    def ban(self, peer: str | bytes, reason: str) -> None:
        """Ban ``peer`` by hand: its link goes down and it is refused until :meth:`unban`."""
        key = _hex(peer)
        self.abuse.ban(key, reason, trio.current_time())
        log.warning("banned %s: %s", short_name(key), reason)
        link = self._links.get(key)
        if link is not None:
            link.close(f"banned: {reason}", CloseCode.ABUSE)

    def unban(self, peer: str | bytes) -> bool:
        """Lift a ban (and forgive the abuse score); True if ``peer`` was banned."""
        key = _hex(peer)
        lifted = self.abuse.unban(key)
        if lifted:
            log.warning("unbanned %s", short_name(key))
        if key in self._changed:
            self._signal(key)  # wake its dialer
        return lifted

    def abuse_scores(self) -> dict[str, float]:
        """The decaying abuse score of each configured neighbour (0 for an honest one)."""
        now = trio.current_time()
        return {k.hex(): self.abuse.score(k, now) for k in self._stats}

    # --- running ------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve and dial until cancelled; ``events`` is closed when this returns."""
        try:
            async with trio.open_nursery() as nursery:
                self.address = await nursery.start(self.serve_links)
                nursery.start_soon(self.run_dialers)
                nursery.start_soon(self._housekeeping)
                task_status.started(self.address)
        finally:
            self.events.close_sender()

    async def serve_links(self, *, task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED) -> None:
        """Accept inbound links on the transport's address until cancelled."""
        await self._transport.serve(self._on_inbound, task_status=task_status)

    async def run_dialers(self) -> None:
        """One supervised dialer per neighbour, until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._dialers = nursery
                for pubkey in list(self._stats):
                    self._start_dialer(pubkey)
                nursery.start_soon(trio.sleep_forever)  # open for add_neighbour, even with no dialer
        finally:
            self._dialers = None
            self._dialing.clear()

    def _start_dialer(self, pubkey: bytes, *, defer: bool = True) -> None:
        assert self._dialers is not None
        if pubkey not in self._dialing:
            self._dialing.add(pubkey)
            self._dialers.start_soon(self._dialer, pubkey, random.Random(self._rng.getrandbits(64)), defer)

    async def _housekeeping(self) -> None:
        """Summarise suppressed refusals and give memory back after a flood, every report_interval."""
        while True:
            await trio.sleep(self.config.report_interval)
            for _, count, event in self._reports.due(trio.current_time()):
                if isinstance(event, HandshakeFailed):
                    self._emit_failure(replace(event, repeats=count))
            if self.admission.peak >= RECLAIM_AFTER_PEAK and len(self.admission) < RECLAIM_AFTER_PEAK // 4:
                self.admission.peak = len(self.admission)
                self.reclaims += 1
                reclaim_memory()

    # --- dialing ------------------------------------------------------------------

    async def _dialer(self, peer: bytes, rng: random.Random, defer: bool = True) -> None:
        cfg = self.config
        backoff = Backoff(rng, base=cfg.backoff_base, cap=cfg.backoff_cap)
        if defer and self.identity.public_key > peer and cfg.defer_dial > 0:
            await trio.sleep(cfg.defer_dial)
        while True:
            while peer in self._links:  # someone's link is up: nothing to do until it drops
                await self._changed[peer].wait()
            await self._address_set[peer].wait()
            retry_at = self.abuse.retry_at(peer)
            if retry_at == math.inf:  # banned: wait for unban (or a new link: there is none)
                await self._changed[peer].wait()
                continue
            if retry_at > trio.current_time():  # throttled for abuse: no redial before then
                await trio.sleep_until(retry_at)
            started = trio.current_time()
            if not await self._dial_once(peer, self._addresses[peer]):
                self._stats[peer].dial_failures += 1
            elif trio.current_time() - started >= cfg.stable_after:
                backoff.reset()
            await trio.sleep(backoff.next())

    async def _dial_once(self, peer: bytes, address: Address) -> bool:
        try:
            with trio.fail_after(self.config.connect_timeout):
                stream = await self._transport.connect(address)
        except (OSError, trio.TooSlowError) as exc:
            self._stats[peer].last_error = f"dial {address!r}: {describe(exc)}"
            return False
        return await self._run_stream(stream, peer, None, str(address))

    async def _on_inbound(self, stream: trio.abc.Stream) -> None:
        source = source_of(stream)
        ticket, evicted = self.admission.admit(source, trio.current_time())
        for old in evicted:  # the least promising pending handshakes make room (admission.py)
            if old.handle is not None:
                old.handle.cancel()
        try:
            with trio.CancelScope() as scope:
                ticket.handle = scope
                await self._run_stream(WatchedStream(stream), None, ticket, str(source))
            if scope.cancelled_caught:
                self._note_handshake_failure(
                    None, None, HandshakeError("evicted: too many unauthenticated connections", kind="evicted"),
                    str(source))
        finally:
            self.admission.release(ticket)
            ticket.handle = None

    # --- one connection, start to end -----------------------------------------------

    async def _run_stream(
        self, stream: trio.abc.Stream, expected: bytes | None, ticket: Ticket | None, source: str
    ) -> bool:
        """Own one raw stream until it is closed.  Never raises except Cancelled.

        Returns True if the handshake succeeded (whether or not the link was kept).
        """
        established = False
        try:
            async with trio.open_nursery() as nursery:  # hosts trio-websocket's reader task
                try:
                    established = await self._run_ws(nursery, stream, expected, ticket, source)
                finally:
                    nursery.cancel_scope.cancel()
        except* LINK_ERRORS as group:
            self._note_error(expected, describe(group))
        except* Exception as group:  # a bug, ours or a library's: contain it to this connection
            log.error("link to %s crashed", expected.hex()[:16] if expected else "?", exc_info=group)
            self._note_error(expected, f"internal error: {describe(group)}")
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
        return established

    async def _run_ws(
        self, nursery: trio.Nursery, stream: trio.abc.Stream, expected: bytes | None,
        ticket: Ticket | None, source: str,
    ) -> bool:
        cfg = self.config
        opts = {"message_queue_size": cfg.ws_queue_size, "max_message_size": cfg.max_frame}
        machine: DialerHandshake | ListenerHandshake | None = None
        with trio.move_on_after(cfg.handshake_timeout) as deadline:
            if expected is None:
                if isinstance(stream, WatchedStream):  # drop it the moment it hangs up (issue 17.1)
                    nursery.start_soon(_cancel_when_ended, stream, deadline)
                request = await wrap_server_stream(nursery, stream, **opts)
                ws = await request.accept()
                machine = ListenerHandshake(self.identity, self._stats.keys(), refuse=self._refusal)
            else:
                ws = await wrap_client_stream(nursery, stream, "peer", RESOURCE, **opts)  # type: ignore[arg-type]
                machine = DialerHandshake(self.identity, expected)
            if ticket is not None:
                self.admission.advance(ticket, Stage.UPGRADED)
            try:
                session = await run_handshake(ws, machine, progress=lambda: self._progress(ticket, machine))
            except HandshakeError as exc:
                self._note_handshake_failure(expected, machine, exc, source)
                code = CloseCode.THROTTLED if exc.kind in ("throttled", "banned") else CloseCode.HANDSHAKE_FAILED
                await close_ws(ws, code, exc.reason, min(cfg.refuse_grace, cfg.close_timeout))
                return False
            except ConnectionClosed as exc:  # the listener refused us: say what it said
                if expected is None or exc.reason is None or exc.reason.code not in (
                        CloseCode.HANDSHAKE_FAILED, CloseCode.THROTTLED):
                    raise
                refused = HandshakeError(exc.reason.reason or f"close code {exc.reason.code}", kind="refused")
                self._note_handshake_failure(expected, machine, refused, source)
                return False
        if deadline.cancelled_caught:
            ended = isinstance(stream, WatchedStream) and stream.ended.is_set()
            failure = (HandshakeError("closed before the handshake finished", kind="hung-up") if ended
                       else HandshakeError("handshake timed out", kind="timeout"))
            self._note_handshake_failure(expected, machine, failure, source)
            return False

        if ticket is not None:  # authenticated: no longer a pending connection, never evicted
            self.admission.release(ticket)
            ticket.handle = None
        stats = self._stats[session.peer]
        link = Link(ws, session, self.identity, cfg, stats)
        kept, first = self._register(link)
        if not kept:
            stats.duplicates += 1
            await close_ws(ws, CloseCode.DUPLICATE, "duplicate link: keeping the other one", cfg.close_timeout)
            return True
        try:
            if first:
                await self.events.put(LinkUp(link.peer))
            reason = await link.run(self._deliver)
        finally:
            current = self._unregister(link)
            if link.abusive:  # before any checkpoint: the throttle must be in place before a redial
                self._on_abuse_close(link, session.peer, link.down_reason or "abuse")
        if current:
            # No checkpoint between unregistering and this send, so this LinkDown
            # is queued before the LinkUp of any link that replaces this one.
            stats.last_down = reason
            await self.events.put(LinkDown(link.peer, reason))
        if link.banned is not None:
            self.events.put_nowait(link.banned)
        await link.aclose()
        return True

    async def _deliver(self, link: Link, msg: LinkMessage, size: int) -> None:
        # Blocks when the shell is behind (in events or in bytes): the backpressure
        # reaches the peer's writer through the websocket queue and TCP, and its send_timeout.
        await self.events.put(Received(link.peer, msg), size)

    def _progress(self, ticket: Ticket | None, machine: DialerHandshake | ListenerHandshake | None) -> None:
        if ticket is not None and isinstance(machine, ListenerHandshake) and machine.claimed_peer in self._stats:
            self.admission.advance(ticket, Stage.CLAIMED)

    def _refusal(self, key: bytes) -> tuple[str, str] | None:
        refusal = self.abuse.refusal(key, trio.current_time())
        if refusal is not None:
            self._stats[key].refused += 1
        return refusal

    def _on_abuse_close(self, link: Link, peer: bytes, reason: str) -> None:
        self._stats[peer].abuse_closes += 1
        ban = self.abuse.on_abuse_close(peer, trio.current_time(), reason)
        if ban is not None:
            log.warning("banned %s: %s", short_name(peer), ban.reason)
            link.banned = PeerBanned(peer.hex(), ban.reason)  # reported after its LinkDown

    # --- the registry ---------------------------------------------------------------

    def _register(self, link: Link) -> tuple[bool, bool]:
        """Install ``link`` unless the one-link-per-pair rule keeps the current one.
        Returns (kept, first): first means the peer had no link before."""
        peer = link.session.peer
        current = self._links.get(peer)
        if current is not None:
            if not keep_new_link(self.identity.public_key, peer, current.session.dialer, link.session.dialer):
                return False, False
            self._stats[peer].duplicates += 1
            current.close("replaced by a newer link", CloseCode.DUPLICATE)
        self._links[peer] = link
        self._stats[peer].up = True
        self._stats[peer].links += 1
        self._signal(peer)
        return True, current is None

    def _unregister(self, link: Link) -> bool:
        peer = link.session.peer
        if self._links.get(peer) is not link:
            return False  # it was replaced; the new link is the peer's link now
        del self._links[peer]
        self._stats[peer].up = False
        self._signal(peer)
        return True

    def _signal(self, peer: bytes) -> None:
        self._changed[peer].set()
        self._changed[peer] = trio.Event()

    def _note_error(self, peer: bytes | None, reason: str) -> None:
        log.info("connection %s: %s", short_name(peer) if peer else "inbound", reason)
        if peer is not None:
            self._stats[peer].last_error = reason

    def _note_handshake_failure(
        self, expected: bytes | None, machine: DialerHandshake | ListenerHandshake | None,
        error: HandshakeError, source: str,
    ) -> None:
        claimed = machine.claimed_peer if isinstance(machine, ListenerHandshake) else None
        event = describe_failure(
            error, dialled=expected, claimed=claimed, source=source, neighbours=self._stats,
            me=self.identity.public_key)
        self.handshake_failures[error.kind] += 1
        blamed = expected or (claimed if claimed in self._stats else None)
        if blamed is not None:
            self._stats[blamed].handshake_failures += 1
            self._stats[blamed].last_error = event.reason
        else:
            self.unknown_handshake_failures += 1
        key = (event.kind, event.neighbour, event.expected, event.presented, event.inbound)
        if event.inbound and event.neighbour is None:
            # Strangers: one report per kind per interval, whatever keys they present, so
            # rotating random keys cannot turn the rate limit into a log flood.
            key = (event.kind, None, None, None, True)
        repeats = self._reports.offer(key, trio.current_time(), event)
        if repeats is not None:
            self._emit_failure(replace(event, repeats=repeats))

    def _emit_failure(self, event: HandshakeFailed) -> None:
        more = f" ({event.repeats} more like it since the last report)" if event.repeats else ""
        log.warning("handshake failed: %s%s", event.reason, more)
        self.events.put_nowait(event)


async def _cancel_when_ended(stream: WatchedStream, scope: trio.CancelScope) -> None:
    await stream.ended.wait()
    scope.cancel()
