"""The distributed auctioneer's headline figures (issue #12).

1. Double auction, real processes: ``--providers`` provider processes on
   127.0.0.1 (port 0) and one in-process bid client that signs ``--users``
   users' bids (and the 8 sellers' asks) and sends them to every provider;
   time from the first bid sent to the client holding every provider's notice
   of the identical, fully signed outcome, with each provider's phase start
   times (from its own round record).  Then the same instance in the
   in-process simulator: its CPU time with all providers run serially in one
   process, with full Ed25519 and in the fast mode (symbolic signatures,
   shared task results; the same outcome digest is asserted), and the
   one-core-per-provider running time.  The load average is printed beside
   every figure.  The real providers draw their coin from os.urandom, so the
   bench also replays the allocator on the real run's coin and asserts the
   real outcome digest.
   With ``--nodes`` the providers are ``peer run --provider`` nodes instead
   (scheduled rounds; the client picks the next open round once its links are
   up and closes it when its bids are sent), and the records are each node's
   ``rounds.ndjson``.
2. Standard auction, exact VCG, 125 users and 8 providers: the centralised run
   (p = 1) and the simulated distributed runs for p = 2 (k = 3) and p = 4
   (k = 1), with the payment work each group did.

    .venv/bin/python bench/auctioneer_bench.py [--users 1000] [--rounds 3] [--skip-standard] [--nodes]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from peer.auctioneer.client import submit
from peer.auctioneer.cluster import NodeCluster
from peer.auctioneer.double import double_auction
from peer.auctioneer.outcome import Outcome
from peer.auctioneer.scenario import make_instance
from peer.auctioneer.shell import Cluster
from peer.auctioneer.sim import SimResult, run_round
from peer.net.identity import Identity

PHASES = ("agree", "validate", "coin", "tasks", "sign", "done")
# Seconds between scheduled rounds of the node providers, with a bid window 2 s shorter.  The client
# closes each round once its bids are sent, so a long window costs nothing, and on a loaded machine
# sending 1,008 bids to 8 providers can take 4 s: a window that ends first makes the views differ.
NODE_INTERVAL = 12.0
FAST_REPEATS = 5  # the fast simulation takes tens of ms: its median over a few runs damps the other load


def outcome_digest(result: SimResult) -> bytes:
    digests = {d.outcome.outcome.digest() for d in result.decided().values()}
    assert len(result.decided()) == len(result.results) and len(digests) == 1, result.aborted()
    return digests.pop()


def simulate(instance, providers: int, k: int, seed: int) -> tuple[SimResult, SimResult, float]:
    """The same round in the simulator with full crypto, then in the fast mode (median CPU of a few runs);
    both must decide the same outcome."""
    full = run_round(instance, executors=providers, k=k, seed=seed, phase_timeout=60)
    fast_runs = [run_round(instance, executors=providers, k=k, seed=seed, phase_timeout=60, fast=True)
                 for _ in range(FAST_REPEATS)]
    for fast in fast_runs:
        assert outcome_digest(fast) == outcome_digest(full), "the fast mode decided another outcome"
    return full, fast_runs[0], statistics.median(f.cpu for f in fast_runs)


def start_providers(workdir: Path, n: int, k: int, rounds: int) -> tuple[Cluster, Identity, list[subprocess.Popen]]:
    keys = []
    for i in range(n):
        ident = Identity.generate()
        ident.save(workdir / f"provider-{i}.key")
        keys.append(ident.public_key)
    client = Identity.generate()
    cluster = Cluster(tuple(sorted(keys)), frozenset({client.public_key}), k, "double", 10.0, 60.0)
    cluster.dump(workdir / "cluster.json")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "peer", "auctioneer", "provider", "--key", f"provider-{i}.key", "--cluster",
             "cluster.json", "--dir", "addr", "--out", f"out{i}", "--rounds", str(rounds), "--linger", "1"],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for i in range(n)
    ]
    wait_for_addresses(workdir, n)
    return cluster, client, procs


def wait_for_addresses(workdir: Path, n: int, limit: float = 120.0) -> None:
    """Until every provider published its address (process start-up is slow on a loaded machine)."""
    deadline = time.monotonic() + limit
    while len(list((workdir / "addr").glob("*.addr"))) < n and time.monotonic() < deadline:
        time.sleep(0.1)


def start_nodes(workdir: Path, n: int, k: int) -> tuple[NodeCluster, Identity, list[subprocess.Popen]]:
    """``n`` ``peer run --provider`` nodes on 127.0.0.1 port 0, finding each other through ``addr/``."""
    keys = []
    for i in range(n):
        ident = Identity.generate()
        ident.save(workdir / f"provider-{i}.key")
        keys.append(ident.public_hex)
    client = Identity.generate()
    (workdir / "cluster.json").write_text(json.dumps({
        "providers": [f"provider-{i}=#{key}" for i, key in enumerate(keys)], "clients": [client.public_hex],
        "k": k, "auction": "double", "interval": NODE_INTERVAL, "bid_window": NODE_INTERVAL - 2,
        "phase_timeout": 10.0, "epoch": float(math.ceil(time.time())), "address_dir": "addr",
    }))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "peer", "run", "--port", "0", "--key", f"provider-{i}.key", "--name", f"provider-{i}",
             "--data-dir", f"d{i}", "--provider", "cluster.json", "--no-tui"],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for i in range(n)
    ]
    wait_for_addresses(workdir, n)
    return NodeCluster.load(workdir / "cluster.json"), client, procs


def node_records(workdir: Path, r: int) -> list[dict]:
    out = []
    for path in workdir.glob("d*/auctioneer/rounds.ndjson"):
        out += [rec for rec in map(json.loads, path.read_text().splitlines()) if rec["round"] == r]
    return out


def double_real(users: int, providers: int, k: int, rounds: int, seed: int, nodes: bool = False) -> None:
    kind = "peer run --provider nodes" if nodes else "provider processes"
    print(f"== double auction, {users} users, {providers} {kind}, k = {k}, {rounds} round(s)")
    with tempfile.TemporaryDirectory(prefix="auctioneer-bench-") as tmp:
        workdir = Path(tmp)
        if nodes:
            scheduled, client, procs = start_nodes(workdir, providers, k)
            cluster = scheduled.base
        else:
            cluster, client, procs = start_providers(workdir, providers, k, rounds)
        try:
            totals, sims, fasts, makespans, loads = [], [], [], [], []
            previous = 0
            for i in range(1, rounds + 1):
                picked: dict[str, object] = {}

                async def prepare(i: int = i) -> tuple[int, tuple]:
                    r = i
                    if nodes:  # the next scheduled round, from its start: its whole window for the bids
                        now = time.time()
                        r = max(scheduled.round_at(now) + 1, previous + 1)
                        await trio.sleep(max(0.0, scheduled.start_of(r) - now))
                    picked["instance"] = make_instance(seed + i, users, 8, "double", round_no=r)
                    return r, picked["instance"].bids

                report = trio.run(lambda: submit(client, cluster, workdir / "addr", i, (), round_timeout=60.0,
                                                 prepare=prepare))
                r, instance = report.round, picked["instance"]
                previous = r
                if report.seconds is None:
                    print(f"round {r}: no common outcome: {report.aborts or 'timeout'}")
                    continue
                totals.append(report.seconds)
                deadline = time.monotonic() + 10
                records = []
                while time.monotonic() < deadline and len(records) < providers:
                    records = (node_records(workdir, r) if nodes else
                               [json.loads(p.read_text()) for p in workdir.glob(f"out*/round-{r}.json")])
                    time.sleep(0.05)
                assert {rec["digest"] for rec in records} == {report.digest.hex()}, "records differ"
                print(f"round {r}: {report.seconds * 1000:7.1f} ms first bid sent -> every provider's signed outcome "
                      f"(all bids acknowledged by all at {report.receipts_at - report.first_sent:.3f} s); "
                      f"{len(records)} identical records, {records[0]['bids']} bids, {len(records[0]['trades'])} trades")
                cpu = [rec["cpu_s"] for rec in records]
                print(f"    CPU per provider process for the round: median {statistics.median(cpu) * 1000:.1f} ms, "
                      f"max {max(cpu) * 1000:.1f} ms")
                # A node's round opens on schedule, before the client's first bid: its phases are
                # shown from the close of the bids (agree) instead.
                origin = {id(rec): rec["phase_started_s"].get("agree", 0.0) if nodes else 0.0 for rec in records}
                for phase in PHASES:
                    starts = [rec["phase_started_s"].get(phase) - origin[id(rec)] for rec in records
                              if rec["phase_started_s"].get(phase) is not None]
                    if starts:
                        print(f"    {phase:9} started at {statistics.median(starts) * 1000:7.1f} ms (median), "
                              f"{max(starts) * 1000:7.1f} ms (last provider)" + (" after the close" if nodes else ""))
                load_real = os.getloadavg()[0]
                full, fast, fast_cpu = simulate(instance, providers, k, seed + r)
                agreed = next(iter(fast.decided().values()))
                assert agreed.outcome.outcome.vector_digest.hex() == records[0]["vector_digest"], "sim agreed another vector"
                # The real providers drew their coin from os.urandom; on that coin, the allocator the
                # simulator runs must reproduce the real run's signed outcome digest exactly.
                coin = bytes.fromhex(records[0]["coin"])
                replay = Outcome(r, "double", agreed.vector.digest(), coin, double_auction(agreed.vector.bids, coin))
                assert replay.digest() == report.digest, "the allocator on the real coin gives another outcome"
                timed = run_round(instance, executors=providers, k=k, seed=seed + r, cpu_time=True, phase_timeout=60)
                print(f"    sim, same instance: full crypto {full.cpu * 1000:.1f} ms CPU ({full.seconds * 1000:.1f} ms wall), "
                      f"fast mode {fast_cpu * 1000:.1f} ms CPU (median of {FAST_REPEATS}), same outcome digest "
                      f"{agreed.outcome.outcome.digest().hex()[:16]}; one core per provider {timed.makespan * 1000:.1f} ms; "
                      f"load {load_real:.1f} (real round), {os.getloadavg()[0]:.1f} (sims)")
                sims.append(full.cpu)
                fasts.append(fast_cpu)
                makespans.append(timed.makespan)
                loads.append(load_real)
            if totals:
                real = statistics.median(totals)
                print(f"real processes: median {real * 1000:.1f} ms over {len(totals)} round(s), load average "
                      f"{min(loads):.1f}-{max(loads):.1f}")
                print(f"in-process sim (all {providers} providers serially, one process), median CPU: full crypto "
                      f"{statistics.median(sims) * 1000:.1f} ms (real / sim = {real / statistics.median(sims):.1f}x), "
                      f"fast mode {statistics.median(fasts) * 1000:.1f} ms (real / sim = {real / statistics.median(fasts):.1f}x); "
                      f"{statistics.median(makespans) * 1000:.1f} ms running time with one core per provider")
            for p in procs:
                if nodes:
                    p.terminate()  # a node runs until stopped
                _, err = p.communicate(timeout=60)
                if p.returncode and not (nodes and p.returncode == 128 + 15):
                    print(f"provider exited {p.returncode}: {err.strip()[-300:]}")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.communicate(timeout=10)


def standard(users: int, seed: int) -> None:
    from peer.auctioneer import vcg
    from peer.auctioneer.experiment import centralised

    print(f"== standard auction, exact VCG (HiGHS), {users} users, 8 providers")
    instance = make_instance(seed, users, 8, "standard")
    print(f"p=1 (centralised): {centralised('standard', instance.bids):.2f} s CPU")
    original = vcg.solve
    for p, k in ((2, 3), (4, 1)):
        calls: list[float] = []

        def timed(*args, **kwargs):
            began = time.process_time()
            out = original(*args, **kwargs)
            if kwargs.get("without") is not None:
                calls.append(time.process_time() - began)
            return out

        vcg.solve = timed
        try:
            result = run_round(instance, executors=8, k=k, seed=seed, cpu_time=True, phase_timeout=3600)
        finally:
            vcg.solve = original
        decided = result.decided()
        assert len(decided) == 8, result.aborted()
        market = vcg.Market.of(instance.bids)
        winners = len(next(iter(decided.values())).outcome.outcome.allocation.trades)
        per_group = [
            sum(1 for i in subset if market.users[i] in {t.user for t in next(iter(decided.values())).outcome.outcome.allocation.trades})
            for subset in vcg.subsets(len(market.users), p)
        ]
        print(f"p={p} (k={k}): {result.makespan:.2f} s with one core per provider; {winners} winners, "
              f"payment MILPs per group {per_group} (each run by every member of its group), "
              f"{sum(calls):.2f} s CPU in payment MILPs across all providers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--providers", type=int, default=8)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--standard-users", type=int, default=125)
    parser.add_argument("--skip-standard", action="store_true")
    parser.add_argument("--skip-double", action="store_true")
    parser.add_argument("--nodes", action="store_true", help="providers are peer run --provider nodes")
    args = parser.parse_args()
    if not args.skip_double:
        double_real(args.users, args.providers, args.k, args.rounds, args.seed, nodes=args.nodes)
    if not args.skip_standard:
        standard(args.standard_users, args.seed)


if __name__ == "__main__":
    main()
