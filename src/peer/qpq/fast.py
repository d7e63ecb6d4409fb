"""The in-process simulator's fast path: one decision per cluster instead of one per member.

Every honest member of a cluster runs :func:`decide_level` on the same reveals
and the same histories, so they all compute the same result; this path runs it
once per cluster (and once for the winners) on a shared history store, builds
the declarations, nonces and commitments with the same functions the machines
use, and counts the frames the machines would send.  ``tests/qpq/test_fast.py``
checks, round by round, that it agrees with the full machine run
(:mod:`peer.qpq.router`): winners, ledger entries, flags and traffic.

It covers the profile faults (absent, silent, mismatch); network faults (a
late reveal) need the machines and the router.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from peer.qpq.commit import commit_digest, commit_ok, derive_nonce, sim_secret
from peer.qpq.decide import Fault, Level, LevelResult, decide_level
from peer.qpq.fixed import ONE
from peer.qpq.history import HistoryStore
from peer.qpq.ledger import AllocationEntry, stream_genesis
from peer.qpq.result import QpqRun
from peer.qpq.setup import QpqSetup, preference_block

BLOCK = 256  # rounds of preferences drawn at a time


def run_fast(
    setup: QpqSetup, *, rounds: int | None = None, measure_from: int = 0,
    progress: Callable[[int], None] | None = None,
) -> QpqRun:
    started = time.perf_counter()
    m = setup.membership
    total = setup.rounds if rounds is None else rounds
    run = QpqRun(setup=setup, mode="fast", rounds=total, measure_from=measure_from)
    gof, stream, n = setup.config.gof, setup.stream, m.n
    index = {node: i for i, node in enumerate(m.nodes)}
    secrets = {node: sim_secret(setup.seed, node) for node in m.nodes}
    profiles = {node: setup.profile(node) for node in m.nodes}
    stores = {cid: HistoryStore(members, gof.window) for cid, members in m.clusters.items()}
    winner_store = HistoryStore(m.ids, gof.window)
    head = stream_genesis(stream, m.digest)
    prefs = preference_block(setup, 0, 0)
    for r in range(total):
        if r % BLOCK == 0:
            prefs = preference_block(setup, r, min(BLOCK, total - r))
        col = r % BLOCK
        results: dict[str, LevelResult] = {}
        for cid, members in m.clusters.items():
            result = _cluster_level(run, setup, r, cid, members, prefs, col, index, secrets, profiles, stores[cid])
            results[cid] = result
            for member, fault in zip(members, result.faults):
                if fault is not None:
                    run.flags.add((r, int(Level.CLUSTER), member, fault.value))
                    if fault is Fault.FAILED_TEST and r >= measure_from:
                        run.replaced[member] += 1
        if m.k == 1:
            deciding, cluster = results[m.ids[0]], m.ids[0]
        else:
            deciding = _winner_level(run, setup, r, results, secrets, winner_store, n)
            cluster = deciding.winner_slot or ""
        winner = deciding.winner_entrant or ""
        entry = AllocationEntry(
            stream=stream, round=r, winner=winner, cluster=cluster if winner else "",
            value=deciding.winner_value or 0, transcript=deciding.transcript.hex(), membership=m.digest, prev=head,
        )
        head = entry.hash
        run.entries.append(entry)
        run.winners.append(winner)
        won = float(prefs[index[winner], col]) / ONE if winner else 0.0
        run.won_values.append(won)
        if winner:
            run.wins[winner] += 1
            if r >= measure_from:
                run.utility[winner] += won
        if progress is not None:
            progress(1)
    run.seconds = time.perf_counter() - started
    return run


def _cluster_level(  # type: ignore[no-untyped-def]
    run, setup, r, cid, members, prefs, col, index, secrets, profiles, store
) -> LevelResult:
    stream, level = setup.stream, int(Level.CLUSTER)
    values: list[int | None] = []
    nonces: list[bytes | None] = []
    faults: list[Fault | None] = []
    fan_out = len(members) - 1
    commits = reveals = 0
    for member in members:
        prof = profiles[member]
        if not prof.takes_part:
            values.append(None), nonces.append(None), faults.append(Fault.MISSING_COMMIT)
            continue
        pref = int(prefs[index[member], col])
        declared = pref if prof.honest else prof.declare(pref, secrets[member], stream, r)
        nonce = derive_nonce(secrets[member], stream, r, level)
        digest = commit_digest(stream, r, level, member, declared, nonce)
        commits += 1
        if not prof.reveals:
            values.append(None), nonces.append(None), faults.append(Fault.MISSING_REVEAL)
            continue
        revealed = prof.reveal_value(declared)
        reveals += 1
        if commit_ok(digest, stream, r, level, member, revealed, nonce):
            values.append(revealed), nonces.append(nonce), faults.append(None)
        else:
            values.append(None), nonces.append(None), faults.append(Fault.BAD_REVEAL)
    run.traffic.add("cluster", "commit", fan_out, commits)
    run.traffic.add("cluster", "reveal", fan_out, reveals)
    return decide_level(
        stream=stream, round_no=r, level=Level.CLUSTER, group=cid, slots=members, entrants=members,
        values=values, nonces=nonces, faults=faults, shapes=(1,) * len(members), store=store, gof=setup.config.gof,
    )


def _winner_level(run, setup, r, results, secrets, store, n) -> LevelResult:  # type: ignore[no-untyped-def]
    stream, level = setup.stream, int(Level.WINNER)
    shapes: list[int] = []
    entrants: list[str] = []
    values: list[int | None] = []
    nonces: list[bytes | None] = []
    faults: list[Fault | None] = []
    for cid, result in results.items():
        claimant = result.winner_entrant
        shapes.append(result.support if claimant is not None else 1)
        if claimant is None:
            entrants.append(""), values.append(None), nonces.append(None), faults.append(Fault.NO_CLAIM)
            run.flags.add((r, level, cid, Fault.NO_CLAIM.value))
            continue
        value = result.winner_value
        nonce = derive_nonce(secrets[claimant], stream, r, level)
        digest = commit_digest(stream, r, level, claimant, value, nonce)  # type: ignore[arg-type]
        run.traffic.add("winner", "commit", n - 1)
        run.traffic.add("winner", "reveal", n - 1)
        ok = commit_ok(digest, stream, r, level, claimant, value, nonce)  # type: ignore[arg-type]
        entrants.append(claimant)
        values.append(value if ok else None), nonces.append(nonce if ok else None)
        faults.append(None if ok else Fault.BAD_REVEAL)
    deciding = decide_level(
        stream=stream, round_no=r, level=Level.WINNER, group="winners", slots=setup.membership.ids,
        entrants=entrants, values=values, nonces=nonces, faults=faults, shapes=shapes, store=store,
        gof=setup.config.gof,
    )
    for entrant, fault in zip(entrants, deciding.faults):
        if fault is Fault.FAILED_TEST:
            run.winner_replaced += r >= run.measure_from
            run.flags.add((r, level, entrant, fault.value))
    return deciding
