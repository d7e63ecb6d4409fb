"""Benchmark: a network that stays up and runs a stream of auctions (``tools/launch --auctions``).

Part 1, throughput: a 100-node Watts-Strogatz network of real ``peer run``
processes; for each concurrency (1, 5, 20 by default) it runs a batch of
auctions through the control sockets and prints sustained auctions/s, latency
p50/p95/max, SRA messages per auction, and how many auctions matched their
replay and every ledger copy.

Part 2, memory: a small network runs 10 auctions, then (a fresh network) the
long count (1,000 by default); it prints a node's memory (PSS, mean over the
nodes) after each, and their ratio.

    python bench/lives_bench.py [--nodes 100] [--per-level 20] [--levels 1,5,20] [--long 1000]

Every figure printed is measured in that run, on this machine (2 shared cores).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from peer.launch.workload import execute_workload
from peer.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parent.parent

SCENARIO = """
name = "ws-{n}"
seller = "0"
seed = 5
[graph]
generator = "watts_strogatz"
n = {n}
k = 4
p = 0.3
[value_model]
kind = "uniform"
low = 0
high = 50
"""

TIMEOUTS = dict(gather_window=0.2, reply_timeout=60.0, context_timeout=30.0, confirm_timeout=None,
                paper_resale=False, link_timeout=180.0, timeout=300.0)


def run(scenario_path: Path, auctions: int, concurrency: int) -> dict:
    scenario = load_scenario(scenario_path)
    with tempfile.TemporaryDirectory(prefix="lives-bench-") as tmp:
        started = time.monotonic()
        result, runs, error = execute_workload(scenario, Path(tmp), seed=scenario.seed, auctions=auctions,
                                               concurrency=concurrency, rate=None, **TIMEOUTS)
        if result is None:
            raise SystemExit(f"error: {error}")
        # Why an auction did not check out: its outcome (aborted, failed: a timeout at high load) or
        # which check failed (a ledger copy that differs, a replay that does not match).
        result["unchecked"] = [f"{r.outcome}{'' if r.outcome != 'completed' else ' ' + str(r.checks)}"
                               for r in runs if not (r.outcome == "completed" and r.checks.get("replay_matches")
                                                     and r.checks.get("ledger_identical"))]
        result["total_seconds"] = round(time.monotonic() - started, 1)
        result["load"] = load()
        return result


def load() -> str:
    """The 1-minute load average (this machine is shared: every figure is quoted with it)."""
    return f"{os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--per-level", type=int, default=20, help="auctions per concurrency level")
    parser.add_argument("--levels", default="1,5,20")
    parser.add_argument("--memory-nodes", type=int, default=3)
    parser.add_argument("--long", type=int, default=1000, help="auctions of the long memory run")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.toml"
        big.write_text(SCENARIO.format(n=args.nodes))
        small = Path(tmp) / "small.toml"
        small.write_text(SCENARIO.format(n=args.memory_nodes).replace("k = 4", "k = 2"))
        if not args.skip_throughput:
            print(f"throughput: ws-{args.nodes}, {args.per_level} auctions per level")
            print(f"(cores: {os.cpu_count()}; CPU s/auction is summed over every node process, and "
                  "cores / that is the most auctions/s this machine could sustain)")
            print("concurrency  auctions/s  p50 s  p95 s  max s  msgs/auction  checked  memory KiB/node"
                  "  CPU s/auction  ceiling/s  load")
            for level in (int(x) for x in args.levels.split(",")):
                r = run(big, max(args.per_level, level), level)
                cpu = r.get("cpu_seconds_per_auction")
                ceiling = round((os.cpu_count() or 1) / cpu, 2) if cpu else None
                print(f"{level:>11}  {r['throughput']:>10}  {r['latency_p50']:>5}  {r['latency_p95']:>5}  "
                      f"{r['latency_max']:>5}  {r['messages_per_auction']:>12}  "
                      f"{r['checked_ok']}/{r['auctions']:<5}  {r.get('memory_kib_per_node'):>15}  "
                      f"{cpu:>13}  {ceiling:>9}  {r['load']}", flush=True)
                for why in r["unchecked"]:
                    print(f"{'':>11}  not checked: {why}", flush=True)
        if args.skip_memory:
            return
        print(f"memory: ws-{args.memory_nodes}, a node's PSS after N auctions (fresh network each)")
        short = run(small, 10, 1)
        long = run(small, args.long, 5)
        for r in (short, long):
            print(f"  after {r['auctions']:>5} auctions: {r['memory_kib_per_node']} KiB mean, "
                  f"{r['memory_kib_max']} KiB max ({r['checked_ok']}/{r['auctions']} checked, "
                  f"{r['throughput']} auctions/s, load {r['load']})", flush=True)
        print(f"  ratio: {long['memory_kib_per_node'] / short['memory_kib_per_node']:.2f}")


if __name__ == "__main__":
    main()
