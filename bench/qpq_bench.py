"""QPQ figures: `peer qpq sim` on 1,024 players in 32 clusters for 1,000 rounds (target: under 60 s).

Run: /work/venv/bin/python bench/qpq_bench.py [--rounds N] [--machine-rounds M]

Prints the fast path's wall time for the scenario (scenario load included), then
the full machine path (every node's QpqNode, every message routed) on a few
rounds of the same scenario, and checks that both record the same ledger.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from peer.qpq.fast import run_fast
from peer.qpq.router import run_machines
from peer.qpq.scenario import load_qpq_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "qpq-1024.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--machine-rounds", type=int, default=3)
    parser.add_argument("--no-cli", action="store_true", help="Skip the end-to-end CLI run.")
    args = parser.parse_args()

    if not args.no_cli:
        # End to end, as `peer qpq sim` runs it: a fresh interpreter, imports, load, run, table.
        started = time.perf_counter()
        cmd = [sys.executable, "-c", "from peer.qpq.cli import qpq_app; qpq_app()", "sim", str(SCENARIO),
               "--rounds", str(args.rounds)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        status = "OK" if done.returncode == 0 and seconds < 60 else f"exit {done.returncode}, {seconds:.1f} s"
        print(f"`peer qpq sim {SCENARIO.relative_to(ROOT)} --rounds {args.rounds}` end to end: {seconds:.1f} s  [{status}]")

    started = time.perf_counter()
    setup = replace(load_qpq_scenario(SCENARIO), rounds=args.rounds)
    run = run_fast(setup)
    total = time.perf_counter() - started
    m = setup.membership
    per = run.traffic.per_round(run.rounds)
    verdict = "OK" if total < 60 else "OVER the 60 s target"
    print(f"fast path: n={m.n} k={m.k} rounds={run.rounds}: {total:.1f} s wall "
          f"({run.seconds:.1f} s in the rounds, {1000 * run.seconds / run.rounds:.1f} ms/round)  [{verdict}]")
    print(f"  per resource: {per['frames']:.0f} frames, {per['values']:.0f} values direct; "
          f"relay model {per['relay_values']:.0f} values (formula n + sum n_c^2 + k + nk)")
    honest = run.mean_utility(m.nodes)
    print(f"  mean normalised utility {honest:.6f} vs 1/(n+1) = {1 / (m.n + 1):.6f}; "
          f"replaced declarations {sum(run.replaced.values())} of {m.n * run.rounds}")

    if args.machine_rounds > 0:
        small = replace(setup, rounds=args.machine_rounds)
        started = time.perf_counter()
        machines = run_machines(small)
        seconds = time.perf_counter() - started
        check = run_fast(small)
        same = [e.hash for e in machines.entries] == [e.hash for e in check.entries]
        print(f"machine path: {args.machine_rounds} rounds, {len(m.nodes)} QpqNodes: {seconds:.1f} s "
              f"({seconds / args.machine_rounds:.2f} s/round, "
              f"{machines.traffic.per_round(machines.rounds)['frames']:.0f} frames/round); "
              f"same ledger as the fast path: {same}; disagreements {machines.disagreements}")


if __name__ == "__main__":
    main()
