"""The provider process: the only place the auctioneer touches trio, sockets, clocks and disk.

It runs a :class:`peer.net.websocket.LinkManager` with a link to every other
executing provider (and accepts the configured bid clients), and feeds one
:class:`~peer.auctioneer.provider.ProviderMachine` per round with what
arrives.  Auctioneer messages travel inside origin-signed ``GossipEnvelope``
frames of topic ``auctioneer/v1`` (sent point to point, never flooded): the
link layer carries them unchanged, and the payload is our own strict codec.

Addresses: every process binds port 0 on 127.0.0.1 (or a given host) and
writes ``<dir>/<public key hex>.addr``; it learns the others' addresses by
watching that directory, so nothing needs a fixed port.  Each decided round is
written to ``<out>/round-<n>.json`` (outcome, vector digest, coin, every
signature) for :func:`peer.auctioneer.record.verify_record` to check offline.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from peer.auctioneer import codec
from peer.auctioneer import messages as m
from peer.auctioneer.effects import Aborted, Broadcast, Decided, Effect, Send, Wake
from peer.auctioneer.provider import ProviderMachine, RoundConfig
from peer.auctioneer.record import outcome_record
from peer.errors import PeerError
from peer.net.codec import GossipEnvelope
from peer.net.gossip import sign_envelope, to_ms
from peer.net.identity import Identity
from peer.net.link import LinkConfig
from peer.net.linkstate import LinkDown, LinkUp, Received
from peer.net.websocket import LinkManager, Neighbour, TcpTransport

log = logging.getLogger(__name__)
TOPIC = "auctioneer/v1"
ENVELOPE_TTL = 60.0


class ClusterError(PeerError):
    """A cluster file is missing or malformed."""


@dataclass(frozen=True, slots=True)
class Cluster:
    providers: tuple[bytes, ...]  # sorted
    clients: frozenset[bytes]
    k: int
    auction: str
    phase_timeout: float
    bid_window: float

    @staticmethod
    def load(path: Path) -> Cluster:
        try:
            raw = json.loads(path.read_text())
            providers = tuple(sorted(bytes.fromhex(p) for p in raw["providers"]))
            clients = frozenset(bytes.fromhex(c) for c in raw.get("clients", []))
            cluster = Cluster(
                providers, clients, int(raw["k"]), str(raw.get("auction", "double")),
                float(raw.get("phase_timeout", 5.0)), float(raw.get("bid_window", 30.0)),
            )
        except OSError as exc:
            raise ClusterError(f"{path}: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ClusterError(f"{path}: malformed cluster file ({exc!r})") from None
        if any(len(p) != 32 for p in (*cluster.providers, *cluster.clients)):
            raise ClusterError(f"{path}: keys are 64 hex characters")
        if not (0 < cluster.phase_timeout <= 3600 and 0 < cluster.bid_window <= 86400):
            raise ClusterError(f"{path}: phase_timeout must be in (0, 3600] s and bid_window in (0, 86400] s")
        try:
            RoundConfig(1, cluster.auction, cluster.providers, cluster.k, 0.0)
        except ValueError as exc:
            raise ClusterError(f"{path}: {exc}") from None
        return cluster

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps({
            "providers": [p.hex() for p in self.providers], "clients": [c.hex() for c in self.clients],
            "k": self.k, "auction": self.auction, "phase_timeout": self.phase_timeout, "bid_window": self.bid_window,
        }, indent=1))


def write_address(directory: Path, key: bytes, address: tuple[str, int]) -> None:
    tmp = directory / f".{key.hex()}.tmp"
    tmp.write_text(f"{address[0]}:{address[1]}\n")
    os.replace(tmp, directory / f"{key.hex()}.addr")  # atomic: a reader never sees half an address


def read_address(directory: Path, key: bytes) -> tuple[str, int] | None:
    try:
        host, _, port = (directory / f"{key.hex()}.addr").read_text().strip().rpartition(":")
        return host, int(port)
    except (OSError, ValueError):
        return None


async def learn_addresses(links: LinkManager, directory: Path, keys: tuple[bytes, ...], timeout: float) -> None:
    """Poll ``directory`` until every key's address is known (bounded by ``timeout``)."""
    missing = set(keys)
    with trio.move_on_after(timeout):
        while missing:
            for key in sorted(missing):
                address = read_address(directory, key)
                if address is not None:
                    links.set_address(key, address)
                    missing.discard(key)
            await trio.sleep(0.02)
    if missing:
        log.warning("no address after %.0fs for %s", timeout, ", ".join(k.hex()[:12] for k in missing))


MAX_PENDING = 4096


class Sender:
    """Wraps messages in origin-signed envelopes and queues them on the links.

    A message for a peer whose link is not up yet (or whose outbox is full) waits, in order,
    in a bounded per-peer queue that :meth:`flush` empties when the link comes up: a provider
    that finishes collecting before its links to the others are all up loses nothing.
    """

    def __init__(self, identity: Identity, links: LinkManager) -> None:
        self.identity, self.links = identity, links
        self.seq = time.time_ns() // 1000  # strictly increasing across restarts
        self.pending: dict[bytes, list[GossipEnvelope]] = {}

    def flush(self, to: bytes) -> None:
        queue = self.pending.get(to, [])
        while queue and self.links.send_nowait(to, queue[0]):
            queue.pop(0)
        if not queue:
            self.pending.pop(to, None)

    def send(self, to: bytes, msg: m.Message) -> bool:
        return self.send_many((to,), msg)

    def send_many(self, recipients: tuple[bytes, ...], msg: m.Message) -> bool:
        """One encoding and one envelope signature for every recipient (point to point, so sharing is safe)."""
        self.seq += 1
        env = sign_envelope(self.identity, self.seq, to_ms(time.time() + ENVELOPE_TTL), TOPIC, codec.encode(msg))
        ok = True
        for to in recipients:
            if to in self.pending:
                self.flush(to)
            if to not in self.pending and self.links.send_nowait(to, env):
                continue
            queue = self.pending.setdefault(to, [])
            if len(queue) >= MAX_PENDING:
                log.warning("dropping %s to %s: %d messages already wait", type(msg).__name__, to.hex()[:12], len(queue))
                ok = False
            else:
                queue.append(env)
        return ok


def unwrap(event: Received) -> tuple[bytes, m.Message] | None:
    """The sender and message of an auctioneer frame, or ``None`` for anything else or anything malformed."""
    env = event.msg
    if not isinstance(env, GossipEnvelope) or env.topic != TOPIC:
        return None
    sender = bytes.fromhex(event.peer)
    if env.origin != sender:  # point to point only: the link peer is the author
        return None
    try:
        return sender, codec.decode(env.payload)
    except codec.WireError as exc:
        log.info("malformed auctioneer message from %s: %s", event.peer[:12], exc)
        return None


class ProviderShell:
    def __init__(
        self, identity: Identity, cluster: Cluster, directory: Path, out: Path | None, *,
        rounds: int = 1, share_source: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.identity, self.cluster, self.directory, self.out = identity, cluster, directory, out
        self.rounds = rounds
        self._random = share_source
        self.others = tuple(p for p in cluster.providers if p != identity.public_key)
        neighbours = [Neighbour(p) for p in self.others] + [Neighbour(c) for c in cluster.clients]
        config = LinkConfig(defer_dial=0.2, connect_timeout=2.0, handshake_timeout=3.0)
        self.links = LinkManager(identity, neighbours, TcpTransport("127.0.0.1", 0), config=config)
        self.sender = Sender(identity, self.links)
        self.machines: dict[int, ProviderMachine] = {}
        self.results: dict[int, Decided | Aborted] = {}  # the last two rounds' outputs
        self.finished: dict[int, bool] = {}  # every finished round: decided (True) or ⊥
        self.submitters: dict[int, set[bytes]] = {}
        self._wakes: list[tuple[float, int]] = []
        self.phase_times: dict[int, dict[str, float]] = {}  # round -> phase -> seconds since its first message
        self._round_start: dict[int, float] = {}
        self._round_cpu: dict[int, float] = {}
        self._woken = trio.Event()
        self._machine_lock = trio.Lock()

    def machine_for(self, round_no: int) -> ProviderMachine | None:
        """The machine of ``round_no``, created on its first message; rounds beyond ``rounds`` or long past are refused."""
        if round_no in self.machines:
            return self.machines[round_no]
        if not 1 <= round_no <= self.rounds or round_no in self.finished:
            return None
        now = trio.current_time()
        config = self.round_config(round_no, now)
        machine = ProviderMachine(self.identity, config, share=self._random(32), nonce=self._random(16))
        self.machines[round_no] = machine
        self._round_start[round_no] = time.perf_counter()
        self._round_cpu[round_no] = time.process_time()
        self.phase_times[round_no] = {"collect": 0.0}
        self.apply(round_no, machine.start(now))
        return machine

    def round_config(self, round_no: int, now: float) -> RoundConfig:
        """The configuration of a round whose first message arrives at ``now`` (a subclass may schedule
        rounds itself or hand the allocator a context, as the Mirage provider does)."""
        return RoundConfig(
            round_no, self.cluster.auction, self.cluster.providers, self.cluster.k,
            bid_deadline=now + self.cluster.bid_window, phase_timeout=self.cluster.phase_timeout,
            closers=self.cluster.clients,
        )

    def apply(self, round_no: int, effects: list[Effect]) -> None:
        for e in effects:
            if isinstance(e, Send):
                self.sender.send(e.to, e.msg)
            elif isinstance(e, Broadcast):
                self.sender.send_many(self.others, e.msg)
            elif isinstance(e, Wake):
                self._wakes.append((e.at, round_no))
                self._woken.set()
            elif isinstance(e, (Decided, Aborted)):
                self.finish(round_no, e)

    def finish(self, round_no: int, result: Decided | Aborted) -> None:
        self.results[round_no] = result
        self.finished[round_no] = isinstance(result, Decided)
        # Keep the previous round's machine (a late peer may still need my view); drop older ones.
        for old in [r for r in self.machines if r < round_no - 1]:
            for table in (self.machines, self.results, self.phase_times, self._round_start, self._round_cpu, self.submitters):
                table.pop(old, None)
        for client in sorted(self.submitters.get(round_no, ())):
            if isinstance(result, Decided):
                o = result.outcome
                notice: m.Message = m.OutcomeNotice(round_no, o.outcome.digest(), o.signatures, len(o.outcome.allocation.trades))
            else:
                notice = m.AbortNotice(round_no, result.reason[:200], result.culprits)
            self.sender.send(client, notice)
        if self.out is not None:
            record = outcome_record(result, self.cluster.providers)
            record["phase_started_s"] = self.phase_times.get(round_no, {})
            # CPU this process spent on the round (links, codec, machine): what a core of its own would take
            record["cpu_s"] = time.process_time() - self._round_cpu.get(round_no, time.process_time())
            (self.out / f"round-{round_no}.json").write_text(json.dumps(record, indent=1))
        if isinstance(result, Decided):
            log.info("round %d decided %s", round_no, result.outcome.outcome.digest().hex()[:16])
        else:
            log.warning("round %d ⊥: %s", round_no, result.reason)

    async def step(self, call: Callable[[], list[Effect]]) -> list[Effect]:
        """Run one machine step.  A standard-auction step may solve MILPs for seconds, so it runs in
        a worker thread while the event loop keeps the links' heartbeats going; steps still run
        one at a time (the machine is never touched by two threads at once)."""
        if self.cluster.auction == "standard":
            async with self._machine_lock:
                return await trio.to_thread.run_sync(call)
        return call()

    async def on_event(self, event: object) -> None:
        if isinstance(event, LinkUp):
            log.info("link up %s", event.peer[:12])
            self.sender.flush(bytes.fromhex(event.peer))
        elif isinstance(event, LinkDown):
            log.info("link down %s: %s", event.peer[:12], event.reason)
        elif isinstance(event, Received):
            got = unwrap(event)
            if got is None:
                return
            sender, msg = got
            round_no = getattr(msg, "round", 0)
            if sender in self.cluster.clients:
                self.submitters.setdefault(round_no, set()).add(sender)
            machine = self.machine_for(round_no)
            if machine is None:
                return
            now = trio.current_time()
            effects = await self.step(lambda: machine.on_message(sender, msg, now))
            self._note_phase(round_no, machine)
            self.apply(round_no, effects)

    def _note_phase(self, round_no: int, machine: ProviderMachine) -> None:
        times = self.phase_times[round_no]
        if machine.phase not in times:
            times[machine.phase] = time.perf_counter() - self._round_start[round_no]

    async def run_timers(self) -> None:
        while True:
            self._woken = trio.Event()
            due = min((at for at, _ in self._wakes), default=None)
            if due is None:
                await self._woken.wait()
                continue
            with trio.move_on_at(due):
                await self._woken.wait()
            now = trio.current_time()
            ready = [(at, r) for at, r in self._wakes if at <= now]
            self._wakes = [(at, r) for at, r in self._wakes if at > now]
            for _, r in ready:
                machine = self.machines.get(r)
                if machine is not None and r not in self.finished:
                    effects = await self.step(lambda: machine.on_tick(now))
                    self._note_phase(r, machine)
                    self.apply(r, effects)

    async def run(self, *, idle_exit: float | None = None) -> None:
        """Serve until every round has an output (then linger ``idle_exit`` s for late peers) or cancelled."""
        async with trio.open_nursery() as nursery:
            address = await nursery.start(self.links.run)
            write_address(self.directory, self.identity.public_key, address)
            nursery.start_soon(learn_addresses, self.links, self.directory, self.others, 60.0)
            nursery.start_soon(self.run_timers)
            async for event in self.links.events:
                await self.on_event(event)
                if idle_exit is not None and len(self.finished) >= self.rounds:
                    nursery.start_soon(self._exit_after, nursery, idle_exit)
                    idle_exit = None

    async def _exit_after(self, nursery: trio.Nursery, delay: float) -> None:
        await trio.sleep(delay)
        nursery.cancel_scope.cancel()
