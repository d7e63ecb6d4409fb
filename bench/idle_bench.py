"""Benchmark: the CPU an idle, linked node costs per second, and its memory.

Starts N real node processes of a Barabási–Albert scenario (m = 2) through the
launcher's own planning and fork server (``--spawn exec`` for fresh
interpreters), waits until every node logged all its links up, lets them sit
idle (no auction: the seller waits for a signal that never comes), and reads
each node's CPU time from ``/proc/PID/schedstat`` at the start and the end of
the window (and once when all are linked: what a node's start cost).  Prints CPU per node per second (all, degree 2, degree >= 10), the
nodes' proportional set size, and the load average (the machine is shared).

    python bench/idle_bench.py [N] [--seconds 30] [--spawn fork|exec]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from peer.launch.plan import plan_nodes
from peer.launch.processes import Children, pss_kib
from peer.scenario.load import load_scenario

SCENARIO = """
name = "idle-{n}"
seller = "max_degree"
seed = 3
[graph]
generator = "barabasi_albert"
n = {n}
m = 2
[value_model]
kind = "uniform"
low = 0
high = 1000
"""


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` in nanosecond resolution (``/proc/PID/schedstat``; 0 if gone): the clock
    ticks of ``/proc/PID/stat`` are 10 ms, too coarse for a node that uses ~1 ms a second."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def linked(log: Path, degree: int) -> bool:
    try:
        lines = log.read_text().splitlines()
    except OSError:
        return False
    up: set[str] = set()
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("kind") == "link":
            (up.add if event.get("up") else up.discard)(event["peer"])
    return len(up) >= degree


def main() -> int:
    args = sys.argv[1:]
    options = {"--seconds": "30", "--spawn": "fork"}
    for name in list(options):
        if name in args:
            i = args.index(name)
            options[name] = args[i + 1]
            del args[i:i + 2]
    n = int(args[0]) if args else 30
    seconds = float(options["--seconds"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "idle.toml"
        path.write_text(SCENARIO.format(n=n))
        scenario = load_scenario(path)
        plans = plan_nodes(scenario, Path(tmp) / "w", seed=3, gather_window=0.2, reply_timeout=60.0,
                           context_timeout=30.0)
        children = Children(options["--spawn"])
        try:
            start = time.perf_counter()
            children.start(plans)
            pending = {p.name: p for p in plans}
            while pending and time.perf_counter() - start < 120:
                for name, plan in list(pending.items()):
                    if linked(plan.log_path, plan.degree):
                        del pending[name]
                time.sleep(0.2)
            if pending:
                print(f"not linked after 120 s: {sorted(pending)[:10]}")
                return 1
            link_time = time.perf_counter() - start
            pids = {p.name: children._pid(p.name) for p in plans}
            at_link = [cpu_seconds(pid) for pid in pids.values() if pid]
            time.sleep(2.0)  # let the link-up exchanges settle
            load0 = os.getloadavg()
            before = {name: cpu_seconds(pid) for name, pid in pids.items() if pid}
            t0 = time.perf_counter()
            time.sleep(seconds)
            after = {name: cpu_seconds(pid) for name, pid in pids.items() if pid}
            elapsed = time.perf_counter() - t0
            pss = [k for k in (pss_kib(pid) for pid in pids.values() if pid) if k]
            load1 = os.getloadavg()
        finally:
            children.stop()
    degree = {p.name: p.degree for p in plans}
    rate = {name: (after[name] - before[name]) / elapsed * 1000 for name in before}  # ms per s
    low = [r for name, r in rate.items() if degree[name] == 2]
    high = [r for name, r in rate.items() if degree[name] >= 10]
    print(
        f"n={n} spawn={options['--spawn']} linked in {link_time:.1f} s, {statistics.mean(at_link) * 1000:.1f} ms CPU "
        f"per node then; idle {elapsed:.0f} s: "
        f"CPU per node {statistics.mean(rate.values()):.3f} ms/s (median {statistics.median(rate.values()):.3f}; "
        f"degree 2: {statistics.mean(low) if low else float('nan'):.3f}; degree >= 10: "
        f"{statistics.mean(high) if high else float('nan'):.3f} over {len(high)}); "
        f"PSS {statistics.mean(pss) / 1024:.1f} MiB per node; "
        f"load {'/'.join(f'{x:.1f}' for x in load0)} -> {'/'.join(f'{x:.1f}' for x in load1)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
