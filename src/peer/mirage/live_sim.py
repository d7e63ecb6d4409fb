"""Live Mirage rounds in one process: the provider machines, books and users of a cluster, no sockets.

The same pieces the processes run (ProviderMachine with the Mirage allocator,
MirageBook, LiveUser), wired by an in-memory router in virtual time, with
seeded coin shares.  For tests, and to see a run's shape quickly; the real run
is ``peer launch scenarios/mirage/live.toml``.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from peer.auctioneer import messages as m
from peer.auctioneer.effects import Aborted, Broadcast, Decided, Effect, Send, Wake
from peer.auctioneer.provider import ProviderMachine, RoundConfig
from peer.auctioneer.record import outcome_record
from peer.auctioneer.sim import coin_secret
from peer.mirage.live import MirageBook, adopt
from peer.mirage.live_config import LiveCluster
from peer.mirage.live_user import LiveUser
from peer.net.identity import Identity

Tamper = Callable[[bytes, list[Effect]], list[Effect]]


def canonical_view(view: dict[str, Any]) -> bytes:
    """The bytes providers send users: equal views, equal bytes (users compare the copies)."""
    return json.dumps(view, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class SimRun:
    records: dict[bytes, list[dict[str, Any]]] = field(default_factory=dict)  # provider -> one record per round
    outputs: list[dict[bytes, str]] = field(default_factory=list)  # per round: provider -> "decided" | reason


def mirage_record(result: Decided | Aborted, providers: tuple[bytes, ...], section: dict[str, Any]) -> dict[str, Any]:
    record = outcome_record(result, providers)
    record["mirage"] = section
    return record


def run_rounds(cluster: LiveCluster, providers: list[Identity], users: list[LiveUser], *, seed: int = 1,
               tamper: dict[tuple[bytes, int], Tamper] | None = None) -> SimRun:
    """Every round of ``cluster``; ``tamper[(provider key, round)]`` rewrites that provider's effects."""
    ids = {p.public_key: p for p in providers}
    if tuple(sorted(ids)) != cluster.providers:
        raise ValueError("the identities are not the cluster's providers")
    books = {p: MirageBook(cluster.setup()) for p in cluster.providers}
    run = SimRun({p: [] for p in cluster.providers})
    tamper = tamper or {}
    for round_no in range(1, cluster.rounds + 1):
        bids = [b for u in users for b in u.bids_for(round_no)]
        machines = {}
        for p in cluster.providers:
            share, nonce = coin_secret(seed * 100_003 + round_no, p)
            config = RoundConfig(round_no, "mirage", cluster.providers, cluster.k, bid_deadline=1.0,
                                 phase_timeout=cluster.phase_timeout, context=books[p].context_source(round_no))
            machines[p] = ProviderMachine(ids[p], config, share=share, nonce=nonce)
        results: dict[bytes, Decided | Aborted] = {}
        queue: list[tuple[float, int, bytes, bytes | None, Any]] = []
        order = itertools.count()

        def handle(owner: bytes, effects: list[Effect], now: float) -> None:
            change = tamper.get((owner, round_no))
            for e in change(owner, effects) if change else effects:
                if isinstance(e, Send) and e.to in machines:
                    heapq.heappush(queue, (now, next(order), e.to, owner, e.msg))
                elif isinstance(e, Broadcast):
                    for to in machines:
                        if to != owner:
                            heapq.heappush(queue, (now, next(order), to, owner, e.msg))
                elif isinstance(e, Wake):
                    heapq.heappush(queue, (e.at, next(order), owner, None, None))
                elif isinstance(e, (Decided, Aborted)):
                    results.setdefault(owner, e)

        for p, machine in machines.items():
            handle(p, machine.start(0.0), 0.0)
            user = b"\x00" * 32  # the bid carrier: providers accept bids from anyone, as from a user's node
            machine.on_message(user, m.BidBatch(round_no, tuple(bids)), 0.0)
        while queue and len(results) < len(machines):
            at, _, to, frm, msg = heapq.heappop(queue)
            machine = machines[to]
            effects = machine.on_tick(at) if frm is None else machine.on_message(frm, msg, at)
            handle(to, effects, at)
        views: list[bytes] = []
        outputs = {}
        # As the provider shell does: a decided provider forwards every signature, so one still
        # waiting for a signature (a deviant sent it only to some) decides the same outcome.
        signed = next((r.outcome for r in results.values() if isinstance(r, Decided)), None)
        for p in cluster.providers:
            result = results.get(p) or Aborted("no output", (), False)
            if isinstance(result, Aborted) and signed is not None:
                result = adopt(machines[p], signed.outcome.digest(), signed.signatures) or result
            if isinstance(result, Decided):
                section = books[p].apply(round_no, result.vector, result.outcome.outcome.allocation,
                                         machines[p].plan)
                outputs[p] = "decided"
            else:
                section = books[p].skip(round_no)
                outputs[p] = result.reason
            run.records[p].append(mirage_record(result, cluster.providers, section))
            views.append(canonical_view(books[p].view(round_no, isinstance(result, Decided))))
        run.outputs.append(outputs)
        # Users take a view that k+1 providers sent identically (as MirageUserNode does).
        agreed = next((v for v in views if views.count(v) >= cluster.k + 1), None)
        if agreed is not None:
            for u in users:
                u.on_update(json.loads(agreed))
    return run
