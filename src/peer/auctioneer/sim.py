"""One round of the distributed auctioneer in one process: an in-memory router, seeded, virtual time.

The router plays the shells: it delivers every ``Send``/``Broadcast`` in FIFO
order after ``latency`` virtual seconds (optionally through the wire codec, as
real links would), fires ``Wake``s, and sends each provider's result to the
bid client as an ``OutcomeNotice``/``AbortNotice``.  Virtual time only moves
when nothing is deliverable, so a timeout is reached exactly when the protocol
is stuck.

``fast=True`` (what ``peer auctioneer sim`` runs) swaps Ed25519 for the
round's symbolic signatures and shares pure task results between providers
with identical inputs; the outcome is the full run's (docs/auctioneer.md, "The
simulator's fast mode").
"""

from __future__ import annotations

import hashlib
import heapq
import time
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any

from peer.auctioneer import codec
from peer.auctioneer import messages as m
from peer.auctioneer.allocators import shared_task_results
from peer.auctioneer.bids import shared_verification
from peer.auctioneer.effects import (
    Aborted,
    Broadcast,
    Decided,
    Effect,
    Rejected,
    Send,
    Wake,
)
from peer.auctioneer.provider import ProviderMachine, RoundConfig
from peer.auctioneer.scenario import Instance, identity_for
from peer.auctioneer.signing import signature_scheme
from peer.auctioneer.symbolic import SymbolicSignatures
from peer.auctioneer.user import BidSubmitter

Tamper = Callable[[bytes, list[Effect]], list[Effect]]


@dataclass
class SimResult:
    results: dict[bytes, Decided | Aborted | None]
    client: BidSubmitter
    seconds: float
    makespan: float = 0.0
    messages: int = 0
    wire_bytes: int = 0
    rejected: list[tuple[bytes, Rejected]] = field(default_factory=list)
    cpu: float = 0.0  # CPU seconds (user+sys of this process) the simulation took, setup included
    symbolic: SymbolicSignatures | None = None  # the fast mode's signatures: check its outcomes under them

    def checking(self) -> ExitStack:
        """The signature scheme this round signed with, to check its outcomes' signatures afterwards."""
        stack = ExitStack()
        if self.symbolic is not None:
            stack.enter_context(signature_scheme(self.symbolic))
        return stack

    def decided(self) -> dict[bytes, Decided]:
        return {p: r for p, r in self.results.items() if isinstance(r, Decided)}

    def aborted(self) -> dict[bytes, Aborted]:
        return {p: r for p, r in self.results.items() if isinstance(r, Aborted)}


def coin_secret(seed: int, provider: bytes) -> tuple[bytes, bytes]:
    """A simulated provider's coin share and nonce (a real one draws them from os.urandom)."""
    raw = hashlib.sha256(b"peer/auctioneer/sim-coin/" + seed.to_bytes(8, "big") + provider).digest()
    return raw, hashlib.sha256(raw).digest()[:16]


def run_round(
    instance: Instance, *, executors: int, k: int, seed: int = 0, phase_timeout: float = 5.0,
    latency: float = 0.0, wire: bool = False, tamper: dict[bytes, Tamper] | None = None,
    client_bids: dict[bytes, tuple] | None = None, max_events: int = 10_000_000, cpu_time: bool = False,
    fast: bool = False,
) -> SimResult:
    """One round (see ``_run_round``).

    ``fast``: symbolic signatures (``peer.auctioneer.symbolic``) instead of Ed25519, and a pure
    task's result computed once and reused by every provider that runs it on the same inputs
    (``allocators.shared_task_results``).  Every provider machine still handles every message and
    runs every step; the outcome, its digest and every message's content but the signature bytes
    are those of the full run (``tests/auctioneer/test_sim_fast.py``).  Deviations run unchanged.
    It cannot be combined with ``cpu_time``: shared work has no owner to charge it to.
    """
    if fast and cpu_time:
        raise ValueError("the fast mode shares work between providers, so it cannot charge each its own CPU time")
    symbolic = SymbolicSignatures() if fast else None
    with ExitStack() as stack:
        # Sharing verified signatures between the simulated providers is exact, but it would hide
        # each provider's own verification cost from the one-core-per-provider model.
        stack.enter_context(nullcontext() if cpu_time else shared_verification())
        if symbolic is not None:
            stack.enter_context(signature_scheme(symbolic))
            stack.enter_context(shared_task_results())
        result = _run_round(
            instance, executors=executors, k=k, seed=seed, phase_timeout=phase_timeout, latency=latency, wire=wire,
            tamper=tamper, client_bids=client_bids, max_events=max_events, cpu_time=cpu_time, symbolic=symbolic,
        )
    result.symbolic = symbolic
    return result


def _run_round(
    instance: Instance, *, executors: int, k: int, seed: int, phase_timeout: float, latency: float, wire: bool,
    tamper: dict[bytes, Tamper] | None, client_bids: dict[bytes, tuple] | None, max_events: int, cpu_time: bool,
    symbolic: SymbolicSignatures | None,
) -> SimResult:
    """Run one round; ``tamper[p]`` rewrites provider p's effects (a deviation); ``client_bids[p]``
    replaces the bids the client sends to provider p (a user that equivocates).

    With ``cpu_time`` every party has its own CPU: a handler starts when its input arrives and
    its party is free, occupies it for the handler's measured CPU time (``process_time``, so
    other load on the machine does not count), and its messages leave
    when it ends.  ``makespan`` is then the round's running time as if each provider ran on its
    own core (the paper's testbed), from the bids leaving the client to its last notice."""
    tamper = tamper or {}
    execs = tuple(sorted(p.public_key for p in instance.providers[:executors]))
    client = identity_for(seed, "client", 0).public_key
    config = RoundConfig(
        instance.round, instance.auction, execs, k, bid_deadline=60.0, phase_timeout=phase_timeout,
        closers=frozenset({client}),
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    machines = {}
    bids = instance.bids
    if symbolic is not None:
        # The simulated users sign their bids in the round's symbolic scheme, as the providers sign
        # their messages; the instance's own (Ed25519) signatures are not used.  ``client_bids`` keep
        # theirs: a test's forged or equivocating bid is checked as Ed25519, exactly as without ``fast``.
        bids = symbolic.resign_bids(bids, {i.public_key: i for i in instance.users + instance.providers})
    for ident in instance.providers[:executors]:
        share, nonce = coin_secret(seed, ident.public_key)
        signer = ident if symbolic is None else symbolic.signer(ident)
        machines[ident.public_key] = ProviderMachine(signer, config, share=share, nonce=nonce)  # type: ignore[arg-type]
    submitter = BidSubmitter(instance.round, bids, execs, resend_every=30.0, give_up_at=50.0)
    queue: list[tuple[float, int, bytes, bytes, Any]] = []  # (time, seq, to, from, msg or None for a wake)
    seq = 0
    sent = size = 0
    rejected: list[tuple[bytes, Rejected]] = []
    results: dict[bytes, Decided | Aborted | None] = {p: None for p in execs}
    busy: dict[bytes, float] = {}
    last_notice = 0.0

    def push(at: float, to: bytes, frm: bytes, msg: Any) -> None:
        nonlocal seq, sent, size
        if msg is not None:
            sent += 1
            if wire:
                raw = codec.encode(msg)
                size += len(raw)
                msg = codec.decode(raw)
        heapq.heappush(queue, (at, seq, to, frm, msg))
        seq += 1

    def handle(owner: bytes, now: float, effects: list[Effect]) -> None:
        if owner in tamper:
            effects = tamper[owner](owner, effects)
        for e in effects:
            if isinstance(e, Send):
                push(now + latency, e.to, owner, e.msg)
            elif isinstance(e, Broadcast):
                for p in execs:
                    if p != owner:
                        push(now + latency, p, owner, e.msg)
            elif isinstance(e, Wake):
                push(e.at, owner, owner, None)
            elif isinstance(e, Rejected):
                rejected.append((owner, e))
            elif isinstance(e, Decided):
                results[owner] = e
                sigs = e.outcome.signatures
                push(now + latency, client, owner, m.OutcomeNotice(instance.round, e.outcome.outcome.digest(), sigs, len(e.outcome.outcome.allocation.trades)))
            elif isinstance(e, Aborted):
                results[owner] = e
                push(now + latency, client, owner, m.AbortNotice(instance.round, e.reason[:200], e.culprits))

    for p, machine in machines.items():
        handle(p, 0.0, machine.start(0.0))
    if client_bids:
        for p in execs:
            for batch in ([m.BidBatch(instance.round, client_bids[p])] if p in client_bids else submitter.batches):
                push(latency, p, client, batch)
        submitter.receipts = {}
    else:
        handle(client, 0.0, submitter.start(0.0))
    for p in execs:
        push(latency, p, client, m.CloseBids(instance.round))
    events = 0
    while queue and events < max_events:
        arrived, _, to, frm, msg = heapq.heappop(queue)
        events += 1
        now = max(arrived, busy.get(to, 0.0)) if cpu_time else arrived
        began = time.process_time()
        if to == client:
            if msg is None:
                effects = submitter.on_tick(now)
            else:
                effects = submitter.on_message(frm, msg, now)
        else:
            machine = machines[to]
            effects = machine.on_tick(now) if msg is None else machine.on_message(frm, msg, now)
        if cpu_time:
            now += time.process_time() - began
            busy[to] = now
        if to == client and msg is not None:
            last_notice = max(last_notice, now)
        handle(to, now, effects)
        if all(r is not None for r in results.values()) and (not queue or queue[0][0] > now):
            if len(submitter.notices) + len(submitter.aborts) >= len(execs):
                break
    return SimResult(results, submitter, time.perf_counter() - started, last_notice, sent, size, rejected,
                     cpu=time.process_time() - cpu_started)
