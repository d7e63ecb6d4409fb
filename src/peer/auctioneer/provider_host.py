"""The provider role of a node: scheduled rounds, each an :class:`AuctionRound`, and their records.

Round r opens at its scheduled start (or on its first message, if that comes
a little early: hosts' clocks differ), collects bids until its deadline, and
then runs to an output; the instance leaves the table and its key is
remembered, so stragglers are dropped quietly.  Each output is told to the
round's submitters, kept for ``peer status``, and, when the round had bids
(decided or ⊥), appended (fsync'd) to ``DATA_DIR/auctioneer/rounds.ndjson``:
the outcome record :func:`peer.auctioneer.record.verify_record` checks offline
(``peer auctioneer rounds --data-dir D`` lists and verifies them).  Rounds
without a single bid are counted, not recorded: every honest provider skips
the same decided ones, so the copies stay identical, and a provider that is
down for hours does not fill the others' files with empty ⊥ rounds.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from peer.auctioneer import messages as m
from peer.auctioneer.cluster import NodeCluster
from peer.auctioneer.effects import Aborted, Broadcast, Decided, Effect, Rejected, Send
from peer.auctioneer.instance import AuctionRound, round_key
from peer.auctioneer.provider import ProviderMachine, RoundConfig
from peer.auctioneer.record import append_record, cut_torn_tail, outcome_record, read_chain
from peer.auctioneer.shell import ClusterError, read_address, write_address
from peer.errors import PeerError
from peer.node.instances import InstanceTable, Limits

if TYPE_CHECKING:
    from peer.auctioneer.node_shell import AuctioneerHost

RECORDS = Path("auctioneer") / "rounds.ndjson"
LIVE_ROUNDS = 8  # rounds in flight at once (they overlap only when interval < the rounds' length)
KEEP_RECENT = 20
ADDRESS_POLL = 0.25  # seconds between looks at the cluster's address directory


class ProviderRoleError(PeerError):
    """This node cannot take the provider role with that cluster file."""


def open_provider(host: AuctioneerHost, path: Path) -> ProviderHost:
    try:
        cluster = NodeCluster.load(path)
    except ClusterError as exc:
        raise ProviderRoleError(f"--provider {exc}") from None
    return ProviderHost(host, cluster)


class ProviderHost:
    def __init__(self, host: AuctioneerHost, cluster: NodeCluster, *,
                 share_source: Callable[[int], bytes] = os.urandom) -> None:
        node = host.node
        if node.identity.public_key not in cluster.providers:
            raise ProviderRoleError(f"this node's key {node.me[:16]}... is not one of the cluster's providers")
        self.host, self.node, self.cluster = host, node, cluster
        self.me = node.identity.public_key
        self._random = share_source
        self.table = InstanceTable(Limits(LIVE_ROUNDS, LIVE_ROUNDS, LIVE_ROUNDS))
        self.members = frozenset(cluster.providers) | cluster.base.clients
        self.path = Path(node.data_dir) / RECORDS
        self.torn_cut = cut_torn_tail(self.path)  # a crash mid-append: those bytes were never a round
        records, _, self.head = read_chain(self.path)  # an absent file: no records, the genesis hash
        self._append_lock = trio.Lock()  # rounds end concurrently; each record chains to the one before
        # Append-only: a restarted provider never records a round at or before its last one.
        self.last_recorded = max((r["round"] for r in records), default=0)
        self.next_round = 0  # set by started(): the first round this node opens on schedule
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEEP_RECENT)
        self.decided = self.aborted = self.empty = 0

    # -- start

    def started(self) -> None:
        """The node listens now: schedule our first round, publish our address if the cluster shares a directory."""
        if self.torn_cut:
            self.node.note(f"auctioneer: cut a torn last record ({self.torn_cut} bytes) from {self.path}")
        now = self.host.wallclock()
        first = self.cluster.round_at(now)
        # A round whose bid window is already over here started without us: join from the next one.
        self.next_round = max(first if now < self.cluster.bid_deadline(first) else first + 1, self.last_recorded + 1)
        neighbours = set(self.node.neighbours)
        missing = [self.cluster.name_of(k) if k in self.cluster.providers else k.hex()[:12]
                   for k in sorted(self.members) if k != self.me and k.hex() not in neighbours]
        if missing:  # what we send them would be dropped: say so once, loudly
            self.node.emit("error", reason="auctioneer: cluster members that are not neighbours (start the node "
                           f"with peer run --provider, which adds them): {', '.join(missing)}")
        directory = self.cluster.address_dir
        if directory is None:
            return
        address = getattr(self.node, "address", None)
        if isinstance(address, tuple):
            directory.mkdir(parents=True, exist_ok=True)
            write_address(directory, self.me, (address[0], address[1]))

    async def learn(self) -> None:
        """Follow the address directory: every other provider's address, again whenever it changes.

        A provider that restarts on port 0 listens somewhere new; polling (every
        ``ADDRESS_POLL`` s, for the node's life) lets the others dial it there.
        """
        directory = self.cluster.address_dir
        manager = getattr(self.node, "manager", None)
        if directory is None or manager is None:
            return
        known: dict[bytes, tuple[str, int]] = {}
        while True:
            for key in self.cluster.providers:
                if key == self.me:
                    continue
                address = read_address(directory, key)
                if address is not None and known.get(key) != address:
                    manager.set_address(key, address)
                    known[key] = address
            # Quickly while some are missing, then only to notice restarts.
            await trio.sleep(ADDRESS_POLL if len(known) < len(self.cluster.providers) - 1 else 8 * ADDRESS_POLL)

    # -- rounds

    def _open(self, round_no: int, now: float, origin: str | None) -> AuctionRound | None:
        key = round_key(round_no)
        if self.table.get(key) is not None or self.table.is_finished(key) or round_no <= self.last_recorded:
            return None
        refusal = self.table.refusal(origin=None, owner="schedule")
        if refusal is not None:
            self.node.emit("error", reason=f"auctioneer round {round_no} not opened: {refusal}")
            self.table.mark_finished(key, "not opened")
            return None
        config = RoundConfig(
            round_no, self.cluster.base.auction, self.cluster.providers, self.cluster.base.k,
            bid_deadline=self.cluster.bid_deadline(round_no), phase_timeout=self.cluster.base.phase_timeout,
            closers=self.cluster.closers,
        )
        machine = ProviderMachine(self.node.identity, config, share=self._random(32), nonce=self._random(16))
        inst = AuctionRound(machine, owner="schedule", origin=origin)
        self.table.add(inst)
        self.next_round = max(self.next_round, round_no + 1)
        self.node.emit("auctioneer_round", round=round_no, phase="collect",
                       bids_until=round(config.bid_deadline, 3))
        inst.start(now)
        return inst

    def next_deadline(self) -> float | None:
        times = [self.cluster.start_of(self.next_round)] if self.next_round else []
        due = self.table.next_deadline()
        if due is not None:
            times.append(due)
        return min(times) if times else None

    async def on_timer(self, now: float) -> None:
        while self.next_round and now >= self.cluster.start_of(self.next_round):
            round_no = self.next_round
            self.next_round += 1
            self._open(round_no, now, None)
        for inst in self.table:
            assert isinstance(inst, AuctionRound)
            due = inst.next_deadline()
            if due is not None and due <= now:
                await self._apply(inst, await self._step(lambda: inst.on_timer(now)))

    async def on_message(self, peer: str, msg: m.Message, now: float) -> None:
        who = bytes.fromhex(peer)
        if who not in self.members:
            self.node.reject(peer, f"{type(msg).__name__} from a key that is neither a provider nor a client")
            return
        round_no = msg.round
        inst = self.table.get(round_key(round_no))
        if inst is None:
            if self.table.is_finished(round_key(round_no)) or round_no <= self.last_recorded:
                return  # a straggler of a round that is over here
            current = self.cluster.round_at(now)
            if not current - 1 <= round_no <= current + 1 or not self.next_round:
                # Far from our clock's round: a clock that is off, or a replay.  Not worth a round here.
                self.node.emit("ignored", peer=self.node.n(peer), type=type(msg).__name__,
                               reason=f"auctioneer round {round_no} is not near the current round {current}")
                return
            inst = self._open(round_no, now, peer)
            if inst is None:
                return
        assert isinstance(inst, AuctionRound)
        self.node.messages_in += 1
        await self._apply(inst, await self._step(lambda: inst.receive(peer, msg, now)))

    async def _step(self, call: Callable[[], list[Effect]]) -> list[Effect]:
        # A standard-auction step may solve MILPs for seconds: a worker thread keeps the links'
        # heartbeats going meanwhile (the node's lock is held, so steps never overlap).
        if self.cluster.base.auction == "standard":
            return await self.node.run_sync(call)
        return call()

    async def _apply(self, inst: AuctionRound, effects: list[Effect]) -> None:
        others = tuple(p for p in self.cluster.providers if p != self.me)
        for e in effects:
            if isinstance(e, Send):
                self.host.send((e.to,), e.msg)
            elif isinstance(e, Broadcast):
                self.host.send(others, e.msg)
            elif isinstance(e, Rejected):
                self.node.reject(e.sender.hex(), f"auctioneer round {inst.round}: {e.reason}")
            elif isinstance(e, (Decided, Aborted)):
                await self._finish(inst, e)

    async def _finish(self, inst: AuctionRound, result: Decided | Aborted) -> None:
        inst.finished = True
        self.table.finish(inst.key, "decided" if isinstance(result, Decided) else "aborted")
        for who, notice in inst.notices():
            self.host.send((who,), notice)
        record = outcome_record(result, self.cluster.providers)
        record.update(round=inst.round, auction=self.cluster.base.auction, recorder=self.node.me,
                      phase_started_s={k: round(v, 4) for k, v in inst.phase_times.items()},
                      cpu_s=round(inst.cpu_seconds(), 4), recorded_at=round(time.time(), 3))
        summary = {"round": inst.round, "output": "outcome" if isinstance(result, Decided) else "bottom"}
        if isinstance(result, Decided):
            self.decided += 1
            o = result.outcome.outcome
            summary.update(digest=o.digest().hex(), bids=len(result.vector.bids), trades=len(o.allocation.trades))
            self.node.emit("auctioneer_decided", round=inst.round, digest=summary["digest"], bids=summary["bids"],
                           trades=summary["trades"], seconds=round(inst.phase_times.get("done", 0.0), 4))
        else:
            self.aborted += 1
            summary.update(reason=result.reason, culprits=[self.node.n(c.hex()) for c in result.culprits],
                           proved=result.proved)
            self.node.emit("auctioneer_bottom", round=inst.round, reason=result.reason,
                           culprits=[c.hex() for c in result.culprits], proved=result.proved)
            self.node.note(f"auctioneer round {inst.round}: ⊥ ({result.reason})")
        self.recent.append(summary)
        held = result.vector.bids or result.vector.excluded if isinstance(result, Decided) else inst.machine.view.bids
        if not held:
            self.empty += 1  # a round nobody bid in: counted, not recorded (a silent peer would fill the file)
            return
        summary["recorded"] = True
        self.last_recorded = inst.round
        try:
            async with self._append_lock:
                self.head = await self.node.run_sync(append_record, self.path, record, self.head)
        except OSError as exc:
            summary["recorded"] = False
            self.node.emit("error", reason=f"auctioneer round {inst.round} not recorded: {exc}")

    def status(self) -> dict[str, Any]:
        now = self.host.wallclock()
        return {
            "cluster": str(self.cluster.source), "auction": self.cluster.base.auction, "k": self.cluster.base.k,
            "providers": [self.cluster.name_of(p) for p in self.cluster.providers],
            "interval": self.cluster.interval, "bid_window": self.cluster.base.bid_window,
            "next_round": self.next_round,
            "next_round_in": round(max(0.0, self.cluster.start_of(self.next_round) - now), 3) if self.next_round else None,
            "live": [{"round": i.round, "phase": i.phase} for i in self.table if isinstance(i, AuctionRound)],
            "decided": self.decided, "bottom": self.aborted, "empty": self.empty,
            "recent": list(self.recent)[-10:], "records": str(self.path),
        }
