"""One peer node: a host of mechanism instances, with its links, gossip, ledger and control socket.

Theory of operation
-------------------
Everything that decides lives elsewhere and is pure: each auction's machine
(:class:`peer.sra.machine.SraNode`), the flooding (:class:`peer.net.gossip.Gossip`),
the chain rules (:mod:`peer.ledger`).  The node hosts *instances* (one SRA
auction each, keyed by auction id; :mod:`peer.node.instances`) and routes each
message to its instance; what SRA adds in the shell (ledger checks, signing,
the stall watchdog) is its collaborator :class:`peer.sra.shell.SraShell`, and a
QPQ stream is :class:`peer.qpq.node_shell.QpqStream`.

One task (``_main_loop``, :mod:`peer.node.loop`) handles every link event and
timer, so no two handlers interleave: it sleeps until the next link event or
the earliest thing due (an instance's deadline, the periodic ledger exchange,
...), at most ``MAX_WAIT`` (every wait is bounded; an idle node barely wakes).
Other tasks (the configured sale, the control socket, QPQ) take the node's lock
for one step at a time, never for an instance's life; releasing it pokes the loop.
Nothing a peer sends can end the loop: a handler that raises is logged, the
input is dropped and its link gets an abuse point.

Node ids inside the machines are public keys (hex), so hop entries are exactly
the ledger's hop bodies and every node names every other the same way; names
are for people only.
"""

from __future__ import annotations

import collections
import random
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio

from peer.ledger import AdmissionPolicy, SignedHop
from peer.ledger.codec import Payload
from peer.ledger.store import LedgerStore
from peer.money import format_money
from peer.net.codec import GossipEnvelope, Heartbeat, encode_message
from peer.net.gossip import Gossip
from peer.net.identity import Identity, short_name
from peer.net.link import LinkConfig
from peer.net.linkstate import HandshakeFailed, LinkDown, LinkEvent, LinkUp, PeerBanned, Received
from peer.net.outbox import Outbox, Priority
from peer.net.seqstore import SeqFile
from peer.net.websocket import LinkManager, Neighbour, TcpTransport, Transport
from peer.node.refusals import RefusalLog
from peer.node.config import NeighbourSpec, NodeConfig
from peer.node.eventlog import EventLog
from peer.node import actions
from peer.node.actions import SellError
from peer.node.instances import InstanceTable, Limits
from peer.node.gossip_io import GossipIO
from peer.node.ledger_io import LEDGER_TOPIC, NodeLedger
from peer.node.links import DynamicLinks
from peer.node import loop
from peer.node.loop import PokingLock
from peer.node.recovery import SUMMARY_TOPIC, Catchup
from peer.node.values import ValueTable
from peer.auctioneer.node_shell import AUCTIONEER_TOPIC, AuctioneerHost
from peer.qpq.node_shell import QpqStream, open_qpq
from peer.sra.instance import SraAuction
from peer.sra.messages import STAGE_OF, Invite, Message, Settled
from peer.sra.shell import SraShell
from peer.tui.snapshot import NodeSnapshot

OUTBOX_BYTES = 32 << 20  # bytes queued for all neighbours whose links are down or full
OUTBOX_BYTES_PER_NEIGHBOUR = 8 << 20  # ... and for any one of them
FLUSH_BUDGET = 512  # messages one flush sends at most (bounds one turn of the main loop)
RESTARTED = "state lost in a restart"
# Fault hooks (docs/adversaries-real.md): events that show an auction is moving.
PROGRESS_KINDS = frozenset({"announced", "stage", "ledger", "settled"})


class Node:
    """A running node.  Create, then ``await node.run(task_status=...)`` in a nursery."""

    STALL_GRACE = 2.0  # seconds on top of the protocol's own bound before a stalled auction aborts

    def __init__(
        self,
        config: NodeConfig,
        identity: Identity,
        *,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        link_config: LinkConfig | None = None,
    ) -> None:
        self.config = config
        self.identity = identity
        self.me = identity.public_hex
        self.name = config.name or identity.name
        self.names: dict[str, str] = {nb.pubkey.hex(): nb.name for nb in config.neighbours}
        self.names[self.me] = self.name
        self.neighbours = sorted(nb.pubkey.hex() for nb in config.neighbours)
        data_dir = config.data_dir or Path("peer-data") / self.name
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.store = LedgerStore.open_data_dir(data_dir)
        self.store.remember_names(self.names)
        self.store_failure: str | None = None  # set while the ledger cannot be written
        self.gossip = Gossip(identity, SeqFile(data_dir / "gossip.seq"))
        self.gossip.set_neighbours(self.neighbours)
        self.wallclock = clock  # gossip expiry and announcements need a clock shared across hosts
        self.log = EventLog(config.log_json, self.name, clock())
        self.transport = transport or TcpTransport(config.host, config.port)
        if link_config is None and config.heartbeat is not None:
            link_config = LinkConfig(heartbeat_interval=config.heartbeat, idle_timeout=3 * config.heartbeat)
        self.link_config = link_config
        self.manager = LinkManager(
            identity,
            [Neighbour(nb.pubkey, nb.address) for nb in config.neighbours],
            self.transport,
            config=link_config,
            rng=random.Random(f"links/{config.seed}/{self.me}"),
        )
        self.links = DynamicLinks(self.manager)
        self.values = ValueTable.open(config.values_file or data_dir / "values.toml", config.value)
        self.instances = InstanceTable(Limits(config.max_auctions, config.max_per_neighbour, config.max_per_seller))
        self.sra = self._make_sra_shell()
        self.ledger_io = NodeLedger(self)
        self.gossip_io = GossipIO(self)
        self.catchup = Catchup(self)
        self._primary: SraAuction | None = None  # the first auction (what one-shot runs and views follow)
        self.outcomes: collections.deque[dict[str, Any]] = collections.deque(maxlen=config.keep_outcomes)
        self._finished_events: dict[str, trio.Event] = {}  # auction -> set when it leaves the node
        self.linked: set[str] = set()
        self.all_linked = trio.Event()
        self.done = trio.Event()
        self.start_error: str | None = None
        self.messages_in = 0
        self.messages_out = 0
        self.bad = 0
        self.internal_errors = 0
        self.refused_invites = 0
        self.recent: collections.deque[str] = collections.deque(maxlen=20)
        # Messages for neighbours whose link is down or full, bounded in bytes; relayed foreign
        # gossip is dropped first, this node's own protocol traffic never for it (#17.2, #17.3).
        self.outbox: Outbox[str, Any] = Outbox(OUTBOX_BYTES, OUTBOX_BYTES_PER_NEIGHBOUR)
        self.refusals = RefusalLog(self.manager.config.report_interval, self.manager.suppressed_reports)
        self._lock = PokingLock(self.poke)
        self._wait_scope: trio.CancelScope | None = None
        self.values_at = 0.0  # trio time of the next look at the values file (peer.node.loop)
        self.refusals_at = float("inf")  # ... of the summary of refusals not logged (after a refusal)
        self._nursery: trio.Nursery | None = None
        # QPQ (peer.qpq.node_shell): a resource stream this node takes part in, if any.
        self.qpq = open_qpq(config.qpq_plan, identity, data_dir) if config.qpq_plan else None
        self._qpq = (QpqStream(self, self.qpq, self._lock, self.wallclock, self.all_linked, self.done)
                     if self.qpq is not None else None)
        if self._qpq is not None:
            self._qpq.link_frames = lambda: sum(s.frames_out for s in self.manager.snapshot().values())
        self.address: Any = None
        self.auctioneer = AuctioneerHost(self, self._lock, self.wallclock)  # provider role, own bids
        # Chains already on disk when we started: we were restarted (perhaps after a
        # crash) and have lost the machine state of those auctions.
        self._recovered: dict[str, int] = {c.auction: c.length for c in self.store.chains()}
        for auction in self._recovered:
            self.instances.mark_finished(auction, RESTARTED)
        # Ledger wiring (admission #16.1, disk health #15.4): gossip may not make us store auctions
        # that never become relevant here; a store that opened unwritable declines from the start.
        self.store.set_admission(AdmissionPolicy())
        self.sra.clock = self.wallclock
        self.sra.on_ledger = self._emit_ledger
        if not self.store.healthy and self.store.failure is not None:
            self.store_failure = str(self.store.failure)

    def _make_sra_shell(self) -> SraShell:
        return SraShell(self)

    # ------------------------------------------------- one-shot compatibility

    @property
    def machine(self) -> Any:
        """The first auction's machine (what one-shot runs, views and tests follow)."""
        return self._primary.machine if self._primary is not None else None

    @property
    def settled(self) -> Settled | None:
        return self._primary.settled if self._primary is not None else None

    @property
    def aborted(self) -> str | None:
        return self._primary.aborted if self._primary is not None else None

    # ------------------------------------------------------------- running

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.address = await nursery.start(self.manager.run)
                port = self.address[1] if isinstance(self.address, tuple) else self.address
                self._emit("started", key=self.me, port=port, neighbours=[self.n(n) for n in self.neighbours])
                if self._recovered:  # a restart: say what the ledger recovered
                    await self.ledger_io.report_recovery()
                if not self.neighbours:
                    self.all_linked.set()
                if self.config.control:
                    from peer.node.control import serve_control

                    await nursery.start(serve_control, self)
                task_status.started(self.address)
                nursery.start_soon(self._main_loop)
                nursery.start_soon(self.auctioneer.run)
                if self._qpq is not None:
                    nursery.start_soon(self._qpq.run)
                    assert self.qpq is not None
                    if self.qpq.plan.coordinator == self.qpq.plan.me:
                        nursery.start_soon(self._qpq.kickoff)
                if self.config.sell is not None:
                    nursery.start_soon(self._seller_start)
                if self.config.exit_when_done:
                    await self.done.wait()
                    await trio.sleep(self.config.done_grace)  # let our last relays drain
                    nursery.cancel_scope.cancel()
        finally:
            self.store.close()
            self.log.close()

    def poke(self) -> None:
        """Wake the main loop now: an instance was added or changed outside it."""
        if self._wait_scope is not None:
            self._wait_scope.cancel()

    async def _main_loop(self) -> None:
        await loop.main_loop(self)

    async def _guarded(self, event: LinkUp | LinkDown | Received | None) -> None:
        """Handle one event; nothing a peer sends may end the main loop (issue #15.1)."""
        try:
            if event is None:
                await self._on_tick(trio.current_time())
            else:
                await self._handle(event)
        except Exception as exc:  # the last resort: log, count, drop the input
            self.internal_errors += 1
            what = type(event.msg).__name__ if isinstance(event, Received) else type(event).__name__
            self._emit("error", reason=f"internal error handling {what}: {type(exc).__name__}: {exc}")
            self.note(f"internal error handling {what}: {type(exc).__name__}")
            if isinstance(event, Received):
                self.reject(event.peer, f"its {what} caused an internal error ({type(exc).__name__})")

    async def _on_tick(self, now: float) -> None:
        await loop.on_tick(self, now)

    async def _seller_start(self) -> None:
        if self.config.start_on_signal:
            with trio.open_signal_receiver(signal.SIGUSR1) as signals:
                self._emit("waiting", reason="SIGUSR1 to start")
                async for _ in signals:
                    break
        else:
            with trio.move_on_after(self.config.start_timeout):
                await self.all_linked.wait()
            if not self.all_linked.is_set():
                self._emit("error", reason="starting with neighbours missing", missing=[
                    self.n(n) for n in self.neighbours if n not in self.linked])
        assert self.config.sell is not None
        async with self._lock:
            try:
                await self.sell(self.config.sell, auction_id=self.config.auction_id)
            except SellError as exc:  # a failed start is an error line, not a crash (#15.2)
                self.start_error = str(exc)
                self._emit("error", reason=str(exc))
                self.note(f"error: {exc}")
                self.done.set()

    # ------------------------------------------------------------ selling

    async def sell(self, item: str, *, auction_id: str | None = None) -> str:
        """Start selling ``item`` now (the caller holds the lock); returns the auction id.

        Raises:
            SellError: why the sale cannot start (nothing was announced then).
        """
        return await actions.sell(self, item, auction_id=auction_id)

    def add_neighbour(self, spec: NeighbourSpec) -> None:
        """Link to a new neighbour now (future auctions include it).  Raises ValueError on a clash."""
        actions.add_neighbour(self, spec)

    def remove_neighbour(self, name: str) -> str:
        """Stop linking to the neighbour called ``name``; returns its key.  Raises ValueError if none."""
        return actions.remove_neighbour(self, name)

    def finished_event(self, auction: str) -> trio.Event:
        """An event set when ``auction`` leaves this node (settled with a full ledger copy, or aborted)."""
        event = self._finished_events.get(auction)
        if event is None:
            event = self._finished_events[auction] = trio.Event()
            if self.instances.get(auction) is None:
                event.set()
        return event

    def outcome_of(self, auction: str) -> dict[str, Any] | None:
        for outcome in reversed(self.outcomes):
            if outcome["auction"] == auction:
                return outcome
        return None

    # ------------------------------------------------------------ instances

    def _add(self, inst: SraAuction) -> None:
        self.instances.add(inst)
        if self._primary is None:
            self._primary = inst

    def _after(self, inst: SraAuction) -> None:
        """``inst`` may be over now: if so it leaves the node (the ledger keeps it)."""
        if inst.finished:
            return
        if inst.aborted is not None:
            self._finish(inst, "aborted")
            return
        final = self.sra.final_fields(inst)
        if final is not None:
            self._emit("final", **final)
            self._finish(inst, "completed")

    def _finish(self, inst: SraAuction, outcome: str) -> None:
        inst.finished = True
        self.instances.finish(inst.key, outcome)
        m = inst.machine
        record: dict[str, Any] = {"auction": inst.key, "item": m.item, "seller": m.seller, "outcome": outcome,
                                  "role": "seller" if m.is_seller else "participant"}
        if inst.settled is not None:
            record.update(winner=inst.settled.winner, price=inst.settled.price, hops=inst.settled.hops)
        if inst.aborted is not None:
            record["reason"] = inst.aborted
        self.outcomes.append(record)
        self._finished_events.setdefault(inst.key, trio.Event()).set()
        if len(self._finished_events) > 4 * self.outcomes.maxlen:  # type: ignore[operator]
            for key in [k for k, e in self._finished_events.items() if e.is_set()][: len(self._finished_events) // 2]:
                del self._finished_events[key]
        if inst is self._primary:
            self.done.set()

    # ------------------------------------------------------------ handling

    async def _handle(self, event: LinkEvent) -> None:
        match event:
            case LinkUp(peer=peer):
                if self.links.close_if_removed(peer):
                    return
                self.linked.add(peer)
                self._emit("link", peer=self.n(peer), up=True)
                if self._recovered and (len(self.linked) == 1 or self.linked >= set(self.neighbours)):
                    self.catchup.offer_recovered()  # catch up after a restart
                self.catchup.exchange(trio.current_time())  # continuous anti-entropy
                if self.linked >= set(self.neighbours):
                    self.all_linked.set()
            case LinkDown(peer=peer, reason=reason):
                if peer not in self.linked:
                    return
                self.linked.discard(peer)
                self._emit("link", peer=self.n(peer), up=False, reason=reason)
            case Received(peer=peer, msg=msg):
                if isinstance(msg, GossipEnvelope) and msg.topic == AUCTIONEER_TOPIC:  # point to point
                    await self.auctioneer.on_envelope(peer, msg)
                elif isinstance(msg, GossipEnvelope):
                    await self.gossip_io.on_envelope(peer, msg)
                elif isinstance(msg, Heartbeat):
                    pass
                else:
                    await self._on_sra(peer, msg)
            case HandshakeFailed() as f:  # already rate-limited by the link manager (issue #9.4)
                self._emit("handshake_failed", failure=f.kind,
                           neighbour=self.n(f.neighbour) if f.neighbour is not None else None,
                           neighbour_key=f.neighbour, expected=f.expected, presented=f.presented,
                           reason=f.reason, inbound=f.inbound, source=f.source, repeats=f.repeats)
                self.note(f"handshake failed: {f.reason}")
            case PeerBanned(peer=peer, reason=reason):
                self._emit("banned", peer=self.n(peer), key=peer, reason=reason)
                self.note(f"banned {self.n(peer)}: {reason} (peer neighbour unban {self.n(peer)} lifts it)")

    def reject(self, peer: str, reason: str, **evidence: Any) -> None:
        """A neighbour sent something we refuse: count it, tell its link, and log it.

        The log line is rate-limited per neighbour (issue #16.2: a flood of refusals
        must not flood the log); the ones left out are summarised by
        :meth:`_summarise_refusals`.
        """
        self.bad += 1
        now = trio.current_time()
        self.refusals_at = now + self.refusals.interval  # count the ones left out after the last
        self._summarise_refusals(now)  # on time even when a flood starves the ticks
        if self.refusals.should_log(peer, reason, self.manager.report_abuse(peer, reason)):
            self._emit("bad", peer=self.n(peer), reason=reason, **evidence)
            self.recent.append(f"refused from {self.n(peer)}: {reason}")

    def _summarise_refusals(self, now: float) -> None:
        """At most once per report interval: one line counting the refusals not logged."""
        suppressed = self.refusals.summary(now)
        if suppressed:
            counts = {self.n(k): n for k, n in sorted(suppressed.items())}
            self._emit("bad_suppressed", counts=counts, total=sum(counts.values()))
            self.note("refusals not logged: " + ", ".join(f"{k} {n}" for k, n in counts.items()))

    _reject = reject  # the name fault hooks and adversaries use

    def bad_input(self, who: str, reason: str) -> None:
        """Bad input signed by ``who`` (an origin, not the relaying link): count and log it."""
        self.bad += 1
        self._emit("bad", peer=who, reason=reason)

    async def _on_sra(self, peer: str, msg: Message) -> None:
        now = trio.current_time()
        self.messages_in += 1
        self._emit("recv", auction=msg.auction, peer=self.n(peer), type=type(msg).__name__,
                   stage=STAGE_OF[type(msg)].value)
        inst = self.instances.get(msg.auction)
        if inst is None:
            finished = self.instances.finished_reason(msg.auction)
            if finished is not None:
                if finished == RESTARTED:
                    self._emit("ignored", peer=self.n(peer), type=type(msg).__name__,
                               reason="auction state lost in a restart")
                return  # a straggler of an auction that is over here: not the sender's fault
            if isinstance(msg, Settled):
                return  # the settlement flood of an auction we are not in reaches every neighbour
            if not isinstance(msg, Invite):
                self.reject(peer, f"{type(msg).__name__} before any invitation")
                return
            if self.store_failure is not None:  # we may lack its announcement: not the sender's fault
                self._refuse_invite(peer, msg, f"our ledger cannot be written ({self.store_failure})")
                return
            problem = self.sra.check_invite(msg)
            if problem:
                self.reject(peer, problem)
                return
            refusal = self.instances.refusal(origin=peer, owner=msg.seller)
            if refusal is not None:
                self._refuse_invite(peer, msg, refusal)
                return
            self._reload_values()  # the file as it is now, however long the loop slept
            inst = self.sra.new_auction(msg.auction, msg.item, msg.seller, self.values.value_for(msg.item),
                                        peer, now)
            self._add(inst)
        assert isinstance(inst, SraAuction)
        await self.sra.receive(inst, peer, msg, now)
        self._after(inst)

    def _refuse_invite(self, peer: str, msg: Invite, reason: str) -> None:
        """Decline to take part: answer with a crossing invitation, which voids our edge.

        The inviter's machine treats a crossing Invite from an invitee as that
        invitee's reply and leaves it out of its local auctions, so a refused
        invitation costs the auction nothing but our subtree, and its sender
        no abuse point (it did nothing wrong).
        """
        self.refused_invites += 1
        self._emit("refused", auction=msg.auction, peer=self.n(peer), reason=reason)
        self.note(f"refused {msg.item} from {self.n(peer)}: {reason}")
        self.send(peer, Invite(auction=msg.auction, item=msg.item, seller=msg.seller, genesis=msg.genesis,
                               budget=0.0))

    # ------------------------------------------------------------- ledger

    async def persist(self, entries: Sequence[Any]) -> bool:
        """Append our own entries; False if the ledger could not be written (nothing to publish then)."""
        return await self.ledger_io.persist(entries)

    _persist = persist

    async def _merge(self, entries: list[Any], origin: bytes | None = None) -> None:
        await self.ledger_io.merge(entries, origin)

    def _store_failed(self, exc: BaseException) -> None:
        self.ledger_io.failed(exc)

    def _emit_ledger(self, entry: Any) -> None:
        if isinstance(entry, SignedHop):
            self._emit("ledger", auction=entry.auction, position=entry.position, entry=entry.hash,
                       seller=self.n(entry.body.seller), buyer=self.n(entry.body.buyer),
                       seller_key=entry.body.seller, buyer_key=entry.body.buyer,
                       price=format_money(entry.body.price))
        else:
            self._emit("ledger", auction=entry.auction, position=0, entry=entry.hash, what="announcement")

    async def run_sync(self, fn: Any, *args: Any) -> Any:
        return await trio.to_thread.run_sync(fn, *args)

    # ------------------------------------------------------------- gossip (peer.node.gossip_io)

    def publish(self, payload: Payload) -> None:
        self._publish(payload)

    def _publish(self, payload: Payload) -> None:
        self.gossip_io.publish_pieces(LEDGER_TOPIC, payload)

    def publish_topic(self, topic: str, payload: bytes) -> None:
        self.gossip_io.publish_topic(topic, payload)

    def publish_scoped(self, payload: Payload, *, only: str | None = None) -> None:
        """A ledger payload for our neighbours only (they never relay this topic), or for
        the one neighbour ``only`` (its key, hex)."""
        self.gossip_io.publish_pieces(SUMMARY_TOPIC, payload, only=only)

    def is_live(self, auction: str) -> bool:
        return self.instances.get(auction) is not None

    def _gossip_effects(self, effects: list[Any]) -> list[GossipEnvelope]:
        return self.gossip_io.apply(effects)

    def _forward_priority(self, env: GossipEnvelope) -> Priority:
        return self.gossip_io.priority(env)

    # ------------------------------------------------------------- sending

    def send(self, to: str, msg: Any) -> None:
        self._send(to, msg)

    def _send(self, to: str, msg: Any, priority: Priority = Priority.PROTOCOL) -> None:
        """Send now, or queue in the outbox while the link is down or full.

        PROTOCOL (the default) is this node's own auction and stream traffic; RELAY is
        foreign gossip it forwards, dropped first when the outbox is full (counted in
        ``outbox.dropped``/``outbox.refused``, never logged one by one).
        """
        if to not in self.neighbours:
            return
        if not self.outbox.send(to, msg, len(encode_message(msg)), priority, self.manager.send_nowait):
            if priority is Priority.PROTOCOL:
                self._emit("error", reason=f"outbox to {self.n(to)} full: dropping {type(msg).__name__}")

    def _flush_backlogs(self) -> None:
        self.outbox.flush(self.manager.send_nowait, budget=FLUSH_BUDGET)

    # ---------------------------------------------------------- reporting

    def _reload_values(self) -> None:
        problem = self.values.reload_quietly()
        if problem is not None:
            self._emit("error", reason=f"values file not reloaded: {problem}")

    def note(self, line: str) -> None:
        self.recent.append(line)

    def n(self, key: str) -> str:
        try:
            return self.names.get(key) or short_name(bytes.fromhex(key))
        except ValueError:
            return repr(key)[:40]

    _n = n

    def emit(self, kind: str, **fields: Any) -> None:
        self._emit(kind, **fields)

    def _emit(self, kind: str, **fields: Any) -> None:
        if kind in PROGRESS_KINDS and "auction" in fields:
            # Feeds the stall watchdog of that auction only: valid entries of some other
            # auction must not keep a dead one looking alive.
            inst = self.instances.get(fields["auction"])
            if isinstance(inst, SraAuction):
                inst.progress_at = trio.current_time()
        self.log.emit(self.wallclock(), kind, **fields)

    def snapshot(self) -> NodeSnapshot:
        from peer.node.status import snapshot

        return snapshot(self)
