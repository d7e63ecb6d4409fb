"""The processes of a live Mirage market: providers that clear hourly rounds, users that bid through their nodes.

Only this module touches trio, sockets, clocks and disk for Mirage.

* :class:`MirageProviderShell` is the auctioneer's provider process
  (:class:`peer.auctioneer.shell.ProviderShell`) with the Mirage allocator: it
  opens round r at ``start + (r - 1) x hour`` whether or not bids came, closes
  its bids ``bid_window`` of an hour later, hands the round its market state
  (:class:`peer.mirage.live.MirageBook`), books each output in round order,
  writes ``round-N.json`` and sends every user the round's public view (topic
  ``mirage/v1``, point to point, origin-signed like every frame).
* :class:`MirageUserNode` is a user's own node: it links to every provider,
  takes a round's view once k+1 providers sent the identical one (a coalition
  of at most k providers cannot feed it a false view, nor hold it up by
  sending its own late), and sends its signed bids for the next round to every
  provider before the bid deadline.

Start: each process writes ``<dir>/<key>.ready`` once its links are up; the
launcher then writes ``<dir>/start.json`` (the wall-clock start of round 1),
which every process waits for (bounded).  Every wait has a timeout.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from peer.auctioneer import messages as m
from peer.auctioneer.deviations import wrong_result
from peer.auctioneer.effects import Aborted, Decided, Effect, Wake
from peer.auctioneer.provider import RoundConfig
from peer.auctioneer.shell import ENVELOPE_TTL, Cluster, ProviderShell, Sender, learn_addresses, unwrap, write_address
from peer.mirage.live import MirageBook, adopt
from peer.mirage.live_config import LiveCluster
from peer.mirage.live_sim import canonical_view, mirage_record
from peer.mirage.live_user import LiveUser
from peer.net.codec import GossipEnvelope
from peer.net.gossip import sign_envelope, to_ms
from peer.net.identity import Identity, verify
from peer.net.link import LinkConfig
from peer.net.linkstate import LinkUp, Received
from peer.net.websocket import LinkManager, Neighbour, TcpTransport

log = logging.getLogger(__name__)
UPDATE_TOPIC = "mirage/v1"
START_FILE = "start.json"
START_WAIT = 120.0  # seconds a process waits for the start (the launcher writes it once all are linked)
MAX_PENDING = 256


def write_ready(directory: Path, key: bytes) -> None:
    (directory / f"{key.hex()}.ready").write_text("ready\n")


async def wait_start(directory: Path, timeout: float | None = None) -> float:
    """The run's start (wall clock) from ``start.json``; TimeoutError if it does not appear in time."""
    timeout = START_WAIT if timeout is None else timeout
    with trio.move_on_after(timeout):
        while True:
            try:
                return float(json.loads((directory / START_FILE).read_text())["start_at"])
            except (OSError, ValueError, KeyError, TypeError):
                await trio.sleep(0.02)
    raise TimeoutError(f"no {START_FILE} in {directory} after {timeout:.0f} s")


def write_start(directory: Path, start_at: float) -> None:
    tmp = directory / f".{START_FILE}.tmp"
    tmp.write_text(json.dumps({"start_at": start_at}))
    os.replace(tmp, directory / START_FILE)  # atomic: nobody reads half of it


async def sleep_until_wall(at: float) -> None:
    await trio.sleep(max(0.0, at - time.time()))


class MirageProviderShell(ProviderShell):
    def __init__(self, identity: Identity, live: LiveCluster, directory: Path, out: Path | None, *,
                 lie_rounds: frozenset[int] = frozenset(), share_source: Callable[[int], bytes] = os.urandom) -> None:
        cluster = Cluster(live.providers, live.user_keys(), live.k, "mirage", live.phase_timeout, live.hour_seconds)
        super().__init__(identity, cluster, directory, None, rounds=live.rounds, share_source=share_source)
        self.live, self.record_dir, self.book = live, out, MirageBook(live.setup())
        self.users = tuple(sorted(live.user_keys()))
        self.start_at: float | None = None
        self.lie_rounds = lie_rounds
        # A deviant for tests and demonstrations: it reports a wrong (validly signed) task result.
        self._tamper = wrong_result(lambda _: identity) if lie_rounds else None
        if live.rules.mip:
            # Load the solver now: importing scipy inside a round's first MIP task took longer than a
            # phase on a busy machine, and every round queued behind it timed out.
            import peer.mirage.mip  # noqa: F401
        self._waiting: dict[int, tuple[Decided | Aborted, Any]] = {}  # outputs that wait for an earlier round
        self._forwarded: dict[int, tuple[bytes, tuple[tuple[bytes, bytes], ...]]] = {}  # peers' full signature sets
        self.outputs: dict[int, str] = {}

    def round_config(self, round_no: int, now: float) -> RoundConfig:
        if self.start_at is None:  # a peer's message before our start file: the bid window from now
            deadline = now + self.live.bid_window * self.live.hour_seconds
        else:
            deadline = now + max(0.0, self.live.round_times(self.start_at, round_no)[1] - time.time())
        return RoundConfig(round_no, "mirage", self.cluster.providers, self.cluster.k, bid_deadline=deadline,
                           phase_timeout=self.cluster.phase_timeout, closers=frozenset(),
                           context=self.book.context_source(round_no))

    def apply(self, round_no: int, effects: list[Effect]) -> None:
        if self._tamper is not None and round_no in self.lie_rounds:
            effects = self._tamper(self.identity.public_key, effects)
        super().apply(round_no, effects)

    async def step(self, call: Callable[[], list[Effect]]) -> list[Effect]:
        if self.live.rules.mip:  # a MIP may solve for seconds: keep the links' heartbeats going meanwhile
            async with self._machine_lock:
                return await trio.to_thread.run_sync(call)
        return call()

    def finish(self, round_no: int, result: Decided | Aborted) -> None:
        if round_no in self.finished:
            return  # decided by forwarded signatures already; the machine's own later timeout changes nothing
        machine = self.machines.get(round_no)
        if isinstance(result, Aborted) and machine is not None and round_no in self._forwarded:
            result = adopt(machine, *self._forwarded[round_no]) or result
        self._waiting[round_no] = (result, machine.plan if machine is not None else None)
        super().finish(round_no, result)
        if isinstance(result, Decided):  # forward every signature: a peer still waiting for one can decide too
            o = result.outcome
            self._send(self.others, json.dumps({"kind": "signatures", "round": round_no, "digest": o.outcome.digest().hex(),
                                                "signatures": [[p.hex(), s.hex()] for p, s in o.signatures]}).encode())
        # Book in round order: a round that ended early (⊥ while the one before still ran) waits.
        while self.book.settled + 1 in self._waiting:
            self._book(self.book.settled + 1, *self._waiting.pop(self.book.settled + 1))

    def _book(self, round_no: int, result: Decided | Aborted, plan: Any) -> None:
        decided = isinstance(result, Decided)
        if decided:
            section = self.book.apply(round_no, result.vector, result.outcome.outcome.allocation, plan)
        else:
            section = self.book.skip(round_no)
        self.outputs[round_no] = "decided" if decided else f"⊥ {result.reason}"
        if self.record_dir is not None:
            record = mirage_record(result, self.cluster.providers, section)
            # Seconds from the round's opening to each phase here (its own timing: not compared across copies).
            record["phase_started_s"] = {k: round(v, 4) for k, v in self.phase_times.get(round_no, {}).items()}
            (self.record_dir / f"round-{round_no}.json").write_text(json.dumps(record, indent=1))
        self._send(self.users, canonical_view(self.book.view(round_no, decided)))
        winners = len(section.get("allocations", []))
        print(f"round {round_no} (hour {section['hour']}): "
              + (f"decided, {winners} allocation(s), {section.get('algorithm', '?')}" if decided else f"⊥ {result.reason}"),
              flush=True)

    def _send(self, recipients: tuple[bytes, ...], payload: bytes) -> None:
        self.sender.seq += 1
        env = sign_envelope(self.identity, self.sender.seq, to_ms(time.time() + ENVELOPE_TTL), UPDATE_TOPIC, payload)
        for to in recipients:  # the Sender's per-peer queue carries any envelope; LinkUp flushes it
            if to in self.sender.pending:
                self.sender.flush(to)
            if to not in self.sender.pending and self.links.send_nowait(to, env):
                continue
            queue = self.sender.pending.setdefault(to, [])
            if len(queue) < MAX_PENDING:
                queue.append(env)

    async def on_event(self, event: object) -> None:
        if isinstance(event, Received) and isinstance(event.msg, GossipEnvelope) and event.msg.topic == UPDATE_TOPIC:
            self._on_signatures(bytes.fromhex(event.peer), event.msg)
            return
        await super().on_event(event)

    def _on_signatures(self, sender: bytes, env: GossipEnvelope) -> None:
        """A peer's full signature set of a round it decided (checked by :func:`adopt` before any use)."""
        if env.origin != sender or sender not in self.others:
            return
        try:
            raw = json.loads(env.payload)
            round_no, digest = int(raw["round"]), bytes.fromhex(raw["digest"])
            sigs = tuple((bytes.fromhex(p), bytes.fromhex(s)) for p, s in raw["signatures"])
        except (ValueError, KeyError, TypeError):
            return
        if round_no in self.finished or not 1 <= round_no <= self.rounds:
            return
        if tuple(p for p, _ in sigs) != self.cluster.providers or not all(verify(p, digest, s) for p, s in sigs):
            return  # not every provider's valid signature on one digest: proves nothing
        machine = self.machines.get(round_no)
        decided = adopt(machine, digest, sigs) if machine is not None else None
        if decided is not None:
            self.finish(round_no, decided)
        else:  # not at the sign phase yet, or another digest: kept for when this round would time out
            self._forwarded[round_no] = (digest, sigs)

    async def run(self, *, idle_exit: float | None = 1.0) -> None:
        """Serve every round (then linger ``idle_exit`` s); bounded: gives up at the start wait or the schedule's end."""
        async with trio.open_nursery() as nursery:
            address = await nursery.start(self.links.run)
            write_address(self.directory, self.identity.public_key, address)
            nursery.start_soon(learn_addresses, self.links, self.directory, self.others, 60.0)
            nursery.start_soon(self.run_timers)
            nursery.start_soon(self._schedule, nursery, idle_exit or 0.0)
            linked: set[bytes] = set()
            async for event in self.links.events:
                if isinstance(event, LinkUp):
                    linked.add(bytes.fromhex(event.peer))
                    if linked >= set(self.others) and not (self.directory / f"{self.identity.public_hex}.ready").exists():
                        write_ready(self.directory, self.identity.public_key)
                await self.on_event(event)

    async def _cut(self, round_no: int) -> None:
        """Round ``round_no``'s time is up once the next round stops collecting: the next round needs
        the market state when its tasks start.  Still running here, it ends as its phase timeout
        would end it (⊥, naming whoever it still waits for), so one stuck round never holds up the
        rounds after it; fed to the machine as a tick at the end of time, through its public input."""
        machine = self.machines.get(round_no)
        for _ in range(2):  # still collecting: the first tick closes the bids, the second times the round out
            if machine is None or round_no in self.finished:
                return
            effects = await self.step(lambda: machine.on_tick(math.inf))
            self.apply(round_no, [e for e in effects if not isinstance(e, Wake)])

    async def _schedule(self, nursery: trio.Nursery, linger: float) -> None:
        if not self.others:
            write_ready(self.directory, self.identity.public_key)
        self.start_at = await wait_start(self.directory)
        for round_no in range(1, self.live.rounds + 1):
            opens, deadline = self.live.round_times(self.start_at, round_no)
            await sleep_until_wall(opens)
            self.machine_for(round_no)  # a round runs, and the hour passes, whether or not anyone bid
            await sleep_until_wall(deadline)
            await self._cut(round_no - 1)
        # The last round gets the time every round gets: until a next round would stop collecting.
        end = self.live.round_times(self.start_at, self.live.rounds + 1)[1]
        with trio.move_on_at(trio.current_time() + max(0.0, end - time.time())):
            while self.book.settled < self.live.rounds:
                await trio.sleep(0.02)
        await self._cut(self.live.rounds)
        await trio.sleep(linger)  # late peers may still need my view or signature
        nursery.cancel_scope.cancel()


class MirageUserNode:
    def __init__(self, identity: Identity, live: LiveCluster, directory: Path, out: Path | None, user: LiveUser) -> None:
        self.identity, self.live, self.directory, self.out, self.user = identity, live, directory, out, user
        self.providers = live.providers
        self.links = LinkManager(identity, [Neighbour(p) for p in self.providers], TcpTransport("127.0.0.1", 0),
                                 config=LinkConfig(defer_dial=0.0, connect_timeout=2.0, handshake_timeout=3.0))
        self.sender = Sender(identity, self.links)
        self.views: dict[int, dict[bytes, bytes]] = {}
        self.disagreements: list[int] = []
        self.rejected: list[tuple[int, str]] = []
        self._linked: set[bytes] = set()
        self._got_view = trio.Event()

    def on_event(self, event: object) -> None:
        if isinstance(event, LinkUp):
            peer = bytes.fromhex(event.peer)
            self._linked.add(peer)
            self.sender.flush(peer)
            return
        if not isinstance(event, Received):
            return
        env = event.msg
        if isinstance(env, GossipEnvelope) and env.topic == UPDATE_TOPIC:
            self._on_view(bytes.fromhex(event.peer), env)
            return
        got = unwrap(event)
        if got is not None and isinstance(got[1], m.BidReceipt):
            self.rejected += [(got[1].round, reason) for _, reason in got[1].rejected]

    def _on_view(self, sender: bytes, env: GossipEnvelope) -> None:
        if env.origin != sender or sender not in self.providers:
            return
        try:
            view = json.loads(env.payload)
            round_no = int(view["round"])
        except (ValueError, KeyError, TypeError):
            log.info("malformed view from %s", sender.hex()[:12])
            return
        if not 1 <= round_no <= self.live.rounds:
            return
        held = self.views.setdefault(round_no, {})
        held.setdefault(sender, env.payload)
        # k+1 identical copies include an honest provider's, and honest providers send identical views:
        # take it then, rather than wait for a deviant that delays its own (it cannot forge k+1 copies).
        if sum(1 for p in held.values() if p == env.payload) >= self.live.k + 1:
            try:
                self.user.on_update(view)
            except (KeyError, TypeError, ValueError) as exc:  # k+1 providers sent it: a bug, not an attack
                log.warning("view of round %d not usable: %r", round_no, exc)
                return
            self._got_view.set()
        if len(held) == len(self.providers) and len(set(held.values())) > 1 and round_no not in self.disagreements:
            self.disagreements.append(round_no)
        for old in [r for r in self.views if r < round_no - 1]:
            del self.views[old]

    async def _view_of(self, round_no: int, until_wall: float) -> None:
        with trio.move_on_at(trio.current_time() + max(0.0, until_wall - time.time())):
            while self.user.view["round"] < round_no:
                self._got_view = trio.Event()
                await self._got_view.wait()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.links.run)
            nursery.start_soon(learn_addresses, self.links, self.directory, self.providers, 60.0)
            nursery.start_soon(self._events)
            with trio.move_on_after(60.0):
                while not self._linked >= set(self.providers):
                    await trio.sleep(0.02)
            if not self._linked >= set(self.providers):
                raise TimeoutError("no link to every provider after 60 s")
            write_ready(self.directory, self.identity.public_key)
            start = await wait_start(self.directory)
            hour = self.live.hour_seconds
            for round_no in range(1, self.live.rounds + 1):
                opens, deadline = self.live.round_times(start, round_no)
                # The view of the round before, until a margin before this round's deadline.
                await self._view_of(round_no - 1, deadline - 0.2 * self.live.bid_window * hour)
                bids = self.user.bids_for(round_no)
                if bids and time.time() < deadline:
                    self.sender.send_many(self.providers, m.BidBatch(round_no, bids))
            # The providers end the last round by the next would-be deadline at the latest; then its view comes.
            last = self.live.round_times(start, self.live.rounds + 1)[1] + 2.0
            await self._view_of(self.live.rounds, last)
            nursery.cancel_scope.cancel()

    async def _events(self) -> None:
        async for event in self.links.events:
            self.on_event(event)

    def summary(self) -> dict[str, Any]:
        r = self.user.report
        return {"name": r.name, "key": self.identity.public_hex, "strategy": r.strategy, "jobs": r.jobs,
                "bids_signed": r.bids_signed, "rounds_bid": r.rounds_bid, "rounds_missed": r.rounds_missed,
                "won": r.won, "realised": r.realised, "paid": r.paid, "balance": r.balance,
                "last_view": self.user.view["round"], "views_differed": self.disagreements,
                "rejected": self.rejected[:20]}
