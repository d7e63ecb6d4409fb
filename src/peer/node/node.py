"""One peer node: the trio shell around the SRA machine, the links, the gossip and the ledger.

Theory of operation
-------------------
Everything that decides lives elsewhere and is pure: the auction
(:class:`peer.sra.machine.SraNode`), the flooding (:class:`peer.net.gossip.Gossip`),
the chain rules (:mod:`peer.ledger`).  This class only moves data between them
and the outside world, in one task (``_main_loop``) so that no two handlers
ever interleave: it waits for the next link event or the machine's next
deadline, handles it, and carries out the effects in order.

The order of effects is what makes the ledger checks work without extra round
trips.  A buyer that accepts an Award countersigns the hop, persists it
(fsync) and floods it *before* it sends its own hop's Open messages; links are
FIFO, so each participant holds the signed entry before it sees the Open and
can check the host's reserve against the chain.  Likewise the seller floods
its signed announcement before its Invites.

Node ids inside the machine are public keys (hex), so the machine's hop
entries are exactly the ledger's hop bodies and every node names every other
the same way; names are for people only.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from peer.errors import RemoteProtocolError
from peer.ledger import (
    Announcement,
    DecodeError,
    Entries,
    FraudProofs,
    InvalidEntry,
    ReserveError,
    SignedHop,
    Summaries,
    check_reserve,
    decode_payload,
    find_culprits,
    encode_payload,
    sign_hop,
)
from peer.ledger.entries import hop_signed_bytes
from peer.ledger.store import FraudDetected, IntegrityError, LedgerStore, StoreError
from peer.money import format_money
from peer.net.codec import GossipEnvelope, Heartbeat
from peer.net.gossip import Deliver, Forward, Gossip, GossipError
from peer.net.identity import Identity, short_name, verify
from peer.net.link import LinkConfig
from peer.net.linkstate import LinkDown, LinkUp, Received
from peer.net.seqstore import SeqFile
from peer.net.websocket import LinkManager, Neighbour, TcpTransport, Transport
from peer.node.config import NodeConfig
from peer.node.eventlog import EventLog
from peer.node.hops import HopSigning
from peer.node.qpq_glue import QPQ_TOPIC, QpqGlue
from peer.node.recovery import RecoveryGlue
from peer.node.settlement import HOLD, SettlementGlue
from peer.sra.effects import Effect, Outcome, Record, Send, StageChanged, Wake
from peer.sra.ledger_entry import HopEntry
from peer.sra.machine import SraConfig, SraNode
from peer.sra.messages import STAGE_OF, Award, Confirm, Invite, Message, Open, Settled
from peer.tui.snapshot import NodeSnapshot

LEDGER_TOPIC = "ledger"
BACKLOG_LIMIT = 4096  # messages queued for one neighbour whose link is down
# Fault hooks (docs/adversaries-real.md): events that show the auction is moving.
PROGRESS_KINDS = frozenset({"announced", "stage", "ledger", "settled"})


class Node(HopSigning, SettlementGlue, RecoveryGlue, QpqGlue):
    """A running node.  Create, then ``await node.run(task_status=...)`` in a nursery."""

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
        self.gossip = Gossip(identity, SeqFile(data_dir / "gossip.seq"))
        self.gossip.set_neighbours(self.neighbours)
        self.wallclock = clock  # gossip expiry and announcements need a clock shared across hosts
        self.log = EventLog(config.log_json, self.name, clock())
        self.manager = LinkManager(
            identity,
            [Neighbour(nb.pubkey, nb.address) for nb in config.neighbours],
            transport or TcpTransport(config.host, config.port),
            config=link_config,
            rng=random.Random(f"links/{config.seed}/{self.me}"),
        )
        self.machine: SraNode | None = None
        self.linked: set[str] = set()
        self.all_linked = trio.Event()
        self.done = trio.Event()
        self.settled: Settled | None = None
        self.messages_in = 0
        self.messages_out = 0
        self.bad = 0
        self.recent: collections.deque[str] = collections.deque(maxlen=20)
        self._backlog: dict[str, collections.deque[Any]] = {n: collections.deque() for n in self.neighbours}
        self._my_sigs: dict[str, bytes] = {}  # entry hash -> our seller signature
        self._award_sigs: dict[str, bytes] = {}  # entry hash -> the seller's signature we received
        self._confirm_sigs: dict[str, bytes] = {}  # guarded resale: entry hash -> our buyer's signature
        self._opens: dict[int, tuple[str, Open]] = {}
        self._lock = trio.Lock()
        self._held_settlements: list[tuple[str, Settled]] = []
        # QPQ (peer.node.qpq_glue): a resource stream this node takes part in, if any.
        self.qpq = self._open_qpq(config.qpq_plan, identity, data_dir) if config.qpq_plan else None
        self._qpq_poke = trio.Event()
        self.address: Any = None
        # --- fault hooks (docs/adversaries-real.md) ---
        # Chains already on disk when we started: we were restarted (perhaps after a
        # crash) and have lost the machine state of those auctions.
        self._recovered: dict[str, int] = {c.auction: c.length for c in self.store.chains()}
        self._progress_at: float | None = None  # trio time of the last sign of auction progress
        self.aborted: str | None = None
        self._answered: dict[bytes, float] = {}  # origin -> when we last answered its summaries
        # --- end of fault hooks ---

    # ------------------------------------------------------------- running

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self.address = await nursery.start(self.manager.run)
                port = self.address[1] if isinstance(self.address, tuple) else self.address
                self._emit("started", key=self.me, port=port, neighbours=[self._n(n) for n in self.neighbours])
                if self._recovered:  # fault hook: a restart; say what the ledger recovered
                    await self._report_recovery()
                if not self.neighbours:
                    self.all_linked.set()
                task_status.started(self.address)
                nursery.start_soon(self._main_loop)
                if self.qpq is not None:
                    nursery.start_soon(self._qpq_loop)
                    if self.qpq.plan.coordinator == self.qpq.plan.me:
                        nursery.start_soon(self._qpq_kickoff)
                if self.config.sell is not None:
                    nursery.start_soon(self._seller_start)
                if self.config.exit_when_done:
                    await self.done.wait()
                    await trio.sleep(self.config.done_grace)  # let our last relays drain
                    nursery.cancel_scope.cancel()
        finally:
            self.store.close()
            self.log.close()

    async def _main_loop(self) -> None:
        events = self.manager.events
        while True:
            self._flush_backlogs()
            deadline = self.machine.next_deadline() if self.machine is not None else None
            stall = self._stall_deadline()  # fault hook: never wait forever for a dead host
            if stall is not None:
                deadline = stall if deadline is None else min(deadline, stall)
            event = None
            with trio.move_on_at(math.inf if deadline is None else deadline):
                try:
                    event = await events.receive()
                except trio.EndOfChannel:
                    return
            async with self._lock:
                if event is None:
                    if self.machine is not None:
                        await self._apply(self.machine.on_timer(trio.current_time()))
                    self._check_stall()  # fault hook
                else:
                    await self._handle(event)

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
                    self._n(n) for n in self.neighbours if n not in self.linked])
        async with self._lock:
            await self._start_auction()

    async def _start_auction(self) -> None:
        assert self.config.sell is not None
        created = int(self.wallclock() * 1000)
        auction = self.config.auction_id or f"{self.config.sell}/{self.identity.name}/{created}"
        announcement = Announcement.create(self.identity, auction=auction, item=self.config.sell, created_at_ms=created)
        await trio.to_thread.run_sync(self.store.append_announcement, announcement)
        self._emit("ledger", auction=auction, position=0, entry=announcement.hash, what="announcement")
        self._publish(Entries((announcement,)))
        self.machine = self._new_machine(auction, self.config.sell, self.me)
        self._emit("announced", auction=auction, item=self.config.sell)
        await self._apply(self.machine.start(trio.current_time()))

    def _new_machine(self, auction: str, item: str, seller: str) -> SraNode:
        return SraNode(
            self.me,
            self.neighbours,
            self.config.value,
            auction=auction,
            seed=self.config.seed,
            seller=seller,
            item=item,
            config=SraConfig(
                gather_window=self.config.gather_window,
                reply_timeout=self.config.reply_timeout,
                context_timeout=self.config.context_timeout,
                confirm_timeout=self.config.confirm_timeout,
                guarded=not self.config.paper_resale,
            ),
        )

    # ------------------------------------------------------------ handling

    async def _handle(self, event: LinkUp | LinkDown | Received) -> None:
        match event:
            case LinkUp(peer=peer):
                self.linked.add(peer)
                self._emit("link", peer=self._n(peer), up=True)
                if self._recovered and (len(self.linked) == 1 or self.linked >= set(self.neighbours)):
                    self._offer_recovered()  # fault hook: catch up after a restart
                if self.linked >= set(self.neighbours):
                    self.all_linked.set()
            case LinkDown(peer=peer, reason=reason):
                self.linked.discard(peer)
                self._emit("link", peer=self._n(peer), up=False, reason=reason)
            case Received(peer=peer, msg=msg):
                if isinstance(msg, GossipEnvelope):
                    await self._on_envelope(peer, msg)
                elif isinstance(msg, Heartbeat):
                    pass
                else:
                    await self._on_sra(peer, msg)

    def _reject(self, peer: str, reason: str, **evidence: Any) -> None:
        """A neighbour sent something we refuse: count it, log it, tell its link."""
        self.bad += 1
        self._emit("bad", peer=self._n(peer), reason=reason, **evidence)
        self.recent.append(f"refused from {self._n(peer)}: {reason}")
        self.manager.report_abuse(peer, reason)

    async def _on_sra(self, peer: str, msg: Message) -> None:
        now = trio.current_time()
        self.messages_in += 1
        self._emit("recv", peer=self._n(peer), type=type(msg).__name__, stage=STAGE_OF[type(msg)].value)
        if self.machine is None:
            if msg.auction in self._recovered:
                # Fault hook: we were restarted and lost this auction's state; the sender
                # is not at fault, so no abuse point, and we do not rejoin half-way.
                self._emit("ignored", peer=self._n(peer), type=type(msg).__name__,
                           reason="auction state lost in a restart")
                return
            if not isinstance(msg, Invite):
                self._reject(peer, f"{type(msg).__name__} before any invitation")
                return
            problem = self._check_invite(msg)
            if problem:
                self._reject(peer, problem)
                return
            self.machine = self._new_machine(msg.auction, msg.item, msg.seller)
        if isinstance(msg, Settled) and msg.auction == self.machine.auction:
            verdict = self._settlement_verdict(msg)
            if verdict == HOLD:
                self._hold_settlement(peer, msg)
                return
            if verdict is not None:
                self._reject(peer, verdict)
                return
        problem = self._precheck(peer, msg)
        if problem:
            self._reject(peer, problem)
            return
        try:
            effects = self.machine.receive(peer, msg, now)
        except RemoteProtocolError as exc:
            self._reject(peer, exc.reason)
            return
        if isinstance(msg, Open):
            self._opens[msg.hop] = (peer, msg)
        await self._apply(effects)

    def _check_invite(self, msg: Invite) -> str | None:
        chain = self.store.chain(msg.auction)
        if chain is None:
            return "invitation for an auction with no signed announcement on our ledger"
        if chain.announcement.seller != msg.seller or chain.announcement.hash != msg.genesis:
            return "invitation does not match the seller's signed announcement"
        if chain.announcement.item != msg.item:
            return "invitation names another item than the announcement"
        return None

    def _precheck(self, peer: str, msg: Message) -> str | None:
        """Ledger checks the pure machine cannot do: reserves and the seller's hop signature."""
        assert self.machine is not None
        if isinstance(msg, Open) and msg.auction == self.machine.auction and not self.machine.config.guarded:
            # (Guarded resale: the host has not bought yet; the machine checks the purchase the Open names.)
            chain = self.store.chain(msg.auction)
            if chain is None:
                return "Open for an auction we hold no chain of"
            try:
                check_reserve(chain, peer, msg.hop, msg.reserve, msg.prev)
            except ReserveError as exc:
                return f"reserve check failed: {exc}"
        if isinstance(msg, Award) and msg.auction == self.machine.auction:
            opened = self._opens.get(msg.hop)
            if opened is None or opened[0] != peer:
                return None  # the machine refuses it with the precise reason
            body = HopEntry(auction=msg.auction, hop=msg.hop, seller=peer, buyer=self.me,
                            price=msg.price, prev=opened[1].prev)
            if body.hash != msg.entry:
                return None
            if not verify(bytes.fromhex(peer), hop_signed_bytes(body), msg.seller_sig):
                return "award without a valid seller signature on the hop"
            self._award_sigs[msg.entry] = msg.seller_sig
        if isinstance(msg, Confirm) and msg.auction == self.machine.auction:
            offered = self.machine.awaiting_confirm
            if offered is None or offered.buyer != peer or offered.hop != msg.hop:
                return None  # the machine refuses it with the precise reason
            if not verify(bytes.fromhex(peer), hop_signed_bytes(offered), msg.buyer_sig):
                return "confirm without a valid buyer signature on the hop"
            self._confirm_sigs[offered.hash] = msg.buyer_sig
        return None

    async def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                msg = effect.msg
                if isinstance(msg, Award):
                    msg = dataclasses.replace(msg, seller_sig=self._my_sigs[msg.entry])
                elif isinstance(msg, Confirm):
                    # Binding: with this signature our seller can put the whole entry on the ledger.
                    purchase = self.machine.pending_purchase if self.machine is not None else None
                    assert purchase is not None  # the machine confirms only an offer it holds
                    msg = dataclasses.replace(msg, buyer_sig=sign_hop(self.identity, purchase))
                self._send(effect.to, msg)
                self.messages_out += 1
                self._emit("send", peer=self._n(effect.to), type=type(msg).__name__,
                           stage=STAGE_OF[type(msg)].value)
            elif isinstance(effect, Record):
                await self._record(effect.entry, effect.countersigned)
            elif isinstance(effect, StageChanged):
                m = self.machine
                assert m is not None
                self._emit("stage", stage=effect.stage, inviters=sorted(m.inviters),
                           invitees=sorted(m.children.keys() | m.declined) if m.stage.value != "aggregating"
                           else sorted(m.invitees))
                self.recent.append(f"stage {effect.stage}")
            elif isinstance(effect, Outcome):
                assert self.machine is not None
                self.settled = self.machine.result
                self._emit("settled", winner=self._n(effect.winner), winner_key=effect.winner,
                           price=format_money(effect.price), hops=effect.hops)
                self._check_done()
            elif isinstance(effect, Wake):
                pass  # the main loop always waits for the machine's next deadline

    async def _persist(self, entries: list[Any]) -> None:
        for entry in entries:
            try:
                added = await trio.to_thread.run_sync(self.store.append, entry)
            except InvalidEntry as exc:
                # Our own entry does not chain (only a deviating node's can): the ledger keeps nothing.
                self._emit("error", reason=f"own ledger entry refused: {exc}")
                continue
            except FraudDetected as exc:
                culprits = sorted(find_culprits(exc.proof.first, exc.proof.second))
                self._emit("fraud", auction=entry.auction, position=entry.position,
                           culprits=[self._n(c) for c in culprits])
                self._publish(FraudProofs((exc.proof,)))
                continue
            if added:
                self._emit_ledger(entry)
        if self._held_settlements:
            await self._release_settlements()
        self._check_done()

    def _emit_ledger(self, entry: Any) -> None:
        if isinstance(entry, SignedHop):
            self._emit("ledger", auction=entry.auction, position=entry.position, entry=entry.hash,
                       seller=self._n(entry.body.seller), buyer=self._n(entry.body.buyer),
                       seller_key=entry.body.seller, buyer_key=entry.body.buyer,
                       price=format_money(entry.body.price))
        else:
            self._emit("ledger", auction=entry.auction, position=0, entry=entry.hash, what="announcement")

    # ------------------------------------------------------------- gossip

    def _publish(self, payload: Entries | FraudProofs | Summaries) -> None:
        _, effects = self.gossip.publish(LEDGER_TOPIC, encode_payload(payload), self.wallclock())
        self._gossip_effects(effects)

    def _gossip_effects(self, effects: list[Any]) -> list[GossipEnvelope]:
        delivered = []
        for effect in effects:
            if isinstance(effect, Forward):
                for to in sorted(effect.to):
                    self._send(to, effect.envelope)
            elif isinstance(effect, Deliver):
                delivered.append(effect.envelope)
        return delivered

    async def _on_envelope(self, peer: str, env: GossipEnvelope) -> None:
        try:
            effects = self.gossip.receive(peer, env, self.wallclock())
        except GossipError as exc:
            self._reject(peer, exc.reason)
            return
        if env.topic == QPQ_TOPIC and self.qpq is not None and not self.qpq.relays(env.origin.hex(), env.payload):
            effects = [e for e in effects if not isinstance(e, Forward)]  # cluster-scoped relaying
        for delivered in self._gossip_effects(effects):
            if delivered.topic == QPQ_TOPIC:
                await self._qpq_payload(delivered.origin, delivered.payload)
                continue
            if delivered.topic != LEDGER_TOPIC:
                continue
            try:
                payload = decode_payload(delivered.payload)
            except DecodeError as exc:
                # Signed by its origin, so the origin is at fault, not the relay.
                self._emit("bad", peer=short_name(delivered.origin), reason=f"ledger payload: {exc}")
                self.bad += 1
                continue
            if isinstance(payload, Entries):
                await self._merge(list(payload.entries), origin=delivered.origin)
            elif isinstance(payload, Summaries):
                self._answer_summaries(delivered.origin, payload)  # fault hook: catch-up
            elif isinstance(payload, FraudProofs):
                new = await trio.to_thread.run_sync(self.store.add_fraud_proofs, list(payload.proofs))
                for proof in new:
                    self._emit("fraud", auction=proof.auction, relayed=True)

    async def _merge(self, entries: list[Any], origin: bytes | None = None) -> None:
        try:
            result = await trio.to_thread.run_sync(self.store.merge, entries)
        except (StoreError, IntegrityError, InvalidEntry) as exc:
            self._emit("error", reason=f"ledger merge: {exc}")
            return
        for entry in result.accepted:
            self._emit_ledger(entry)
        await self._awarded_by_ledger(result.accepted)
        for rejection in result.rejected:
            # The origin signed the envelope, so it is the one to name (a fault-report hook).
            self._emit("bad", peer="gossip", reason=f"ledger entry refused: {rejection.reason}",
                       **({} if origin is None else {"origin": self._n(origin.hex())}))
        if result.fraud_proofs:
            for proof in result.fraud_proofs:
                self._emit("fraud", auction=proof.auction)
            self._publish(FraudProofs(tuple(result.fraud_proofs)))
        if self._held_settlements and result.accepted:
            await self._release_settlements()
        self._check_done()

    # ------------------------------------------------------------- sending

    def _send(self, to: str, msg: Any) -> None:
        backlog = self._backlog.get(to)
        if backlog is None:
            return
        if backlog or not self.manager.send_nowait(to, msg):
            if len(backlog) >= BACKLOG_LIMIT:
                self._emit("error", reason=f"backlog to {self._n(to)} full: dropping {type(msg).__name__}")
                return
            backlog.append(msg)

    def _flush_backlogs(self) -> None:
        for to, backlog in self._backlog.items():
            while backlog and self.manager.send_nowait(to, backlog[0]):
                backlog.popleft()

    # ---------------------------------------------------------- reporting

    def _check_done(self) -> None:
        if self.settled is None or self.done.is_set() or self.machine is None:
            return
        chain = self.store.chain(self.machine.auction)
        if chain is None or len(chain.hops) < self.settled.hops:
            return  # settled, but our copy of the ledger is not complete yet
        m = self.machine
        self._emit(
            "final",
            auction=m.auction,
            value=format_money(m.value),
            seller=m.seller,
            inviters=sorted(m.inviters),
            invitees=sorted(m.children.keys() | m.declined),
            parent=m.parents[0] if len(m.parents) == 1 else None,
            bought_at=None if m.bought_at is None or m.is_seller else format_money(m.bought_at),
            sold_at=format_money(m.sold_at) if m.sold_at is not None else None,
            winner=self.settled.winner,
            hops=self.settled.hops,
            ledger=[h.hash for h in chain.hops],
            seed=self.config.seed,
        )
        self.done.set()

    def _n(self, key: str) -> str:
        return self.names.get(key) or short_name(bytes.fromhex(key))

    def _emit(self, kind: str, **fields: Any) -> None:
        if kind in PROGRESS_KINDS and (self.machine is None or fields.get("auction", self.machine.auction)
                                       == self.machine.auction):
            # Fault hook: feeds the stall watchdog.  Only our auction counts: valid entries of
            # some other auction must not keep a dead one looking alive.
            self._progress_at = trio.current_time()
        self.log.emit(self.wallclock(), kind, **fields)

    def snapshot(self) -> NodeSnapshot:
        m = self.machine
        snap = NodeSnapshot(
            name=self.name,
            key=self.identity.name,
            links_up=len(self.linked),
            links_total=len(self.neighbours),
            messages_in=self.messages_in,
            messages_out=self.messages_out,
            bad_frames=self.bad + sum(s.bad_frames for s in self.manager.snapshot().values()),
            value=self.config.value,
        )
        if m is not None:
            snap.stage = m.stage.value
            snap.inviters = [self._n(x) for x in sorted(m.inviters)]
            snap.invitees = [self._n(x) for x in sorted(m.children.keys() | m.declined)]
            snap.parent = self._n(m.parents[0]) if len(m.parents) == 1 else None
            snap.bought_at = None if m.is_seller else m.bought_at
            snap.sold_at = m.sold_at
            chain = self.store.chain(m.auction)
            snap.ledger_entries = 0 if chain is None else chain.length
            if m.is_seller:
                snap.role = "seller"
            elif self.settled is not None and self.settled.winner == self.me:
                snap.role = "winner"
            elif m.bought_at is not None:
                snap.role = "local seller"
            if self.settled is not None:
                snap.winner = self._n(self.settled.winner)
        return snap
