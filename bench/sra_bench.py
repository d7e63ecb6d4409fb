"""Benchmark: one SRA auction in the in-memory simulator at 1,000 and 10,000 nodes.

Prints wall time (best of a few runs), messages per stage and the outcome.
Targets from the SRA core issue: 1,000-node BA under 1 s, 10,000-node under 10 s.

    python bench/sra_bench.py
    python bench/sra_bench.py --large [N ...]   # 20,000 and 100,000 nodes (or N), once each: CPU per
                                                # phase, peak memory, the check against the replay
    python bench/sra_bench.py --limits [N ...]  # the machines' share of the run against the network's
    python bench/sra_bench.py --phases [N ...]  # CPU of each phase of one run: graph, machines, event
                                                # loop, verdict, result, the collector's pass
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from peer.scenario.load import load_scenario, parse_scenario
from peer.sim.run import simulate

ROOT = Path(__file__).resolve().parent.parent

BA_10K = """
name = "ba-10000"
seller = "max_degree"
seed = 3
[graph]
generator = "barabasi_albert"
n = 10000
m = 3
[value_model]
kind = "uniform"
low = 0
high = 1000
"""


def bench(label: str, scenario, repeats: int, mode: str) -> None:  # type: ignore[no-untyped-def]
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result, _network = simulate(scenario, mode=mode)
        times.append(time.perf_counter() - start)
    assert result is not None
    total = sum(result.messages.values())
    per_stage = ", ".join(f"{k} {v}" for k, v in result.messages.items())
    print(
        f"{label:<28} {mode:<6} nodes {scenario.graph.number_of_nodes():>6}  edges {scenario.graph.number_of_edges():>6}  "
        f"best {min(times):6.3f} s  median {statistics.median(times):6.3f} s  "
        f"messages {total} ({per_stage})  hops {len(result.hops)}  winner {result.winner}"
    )


# Main's simulator (commit 9a7fc09, before the speed work), this script's --large on 2026-12-07:
# nodes -> (load average, graph, auction, GC pass, total), CPU seconds.  docs/benchmarks.md.
BEFORE = {20_000: (130.7, 0.46, 6.25, 0.41, 7.13), 100_000: (160.4, 3.89, 39.40, 2.46, 45.74)}


def large(n: int, mode: str = "rounds") -> None:
    """One auction on a generated social-network-like graph (BA, m = 3), once: CPU and wall time
    per phase, peak RSS, and the run checked without the machines (peer.reference.check_run)."""
    import gc
    import os
    import resource

    from peer.reference.check_run import run_problems

    def phase(fn):  # type: ignore[no-untyped-def]
        cpu, wall = time.process_time(), time.perf_counter()
        out = fn()
        return out, time.process_time() - cpu, time.perf_counter() - wall

    load = os.getloadavg()[0]
    scenario, g_cpu, g_wall = phase(lambda: parse_scenario(BA_10K.replace("10000", str(n)), source=f"<ba-{n}>"))
    (result, network), s_cpu, s_wall = phase(lambda: simulate(scenario, mode=mode))
    # The run leaves ~17 GC-tracked objects per node (its machines' sets, lists and dicts); the
    # simulator keeps the collector off while it runs, so the first full pass over them comes
    # after it.  It is owed by any process that holds the run: counted here.
    _, c_cpu, c_wall = phase(gc.collect)
    problems, k_cpu, _ = phase(lambda: run_problems(result, scenario.graph, scenario.values, rounds=mode == "rounds"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    events = network.stats.events
    total_cpu, total_wall = g_cpu + s_cpu + c_cpu, g_wall + s_wall + c_wall
    print(f"ba-{n:<7} {mode:<6} load {load:5.1f}  graph {g_cpu:5.2f} s  auction {s_cpu:6.2f} s  "
          f"owed GC pass {c_cpu:4.2f} s  = {total_cpu:6.2f} s CPU ({total_wall:6.2f} s wall)  "
          f"events {events:,} ({s_cpu / events * 1e6:.1f} us CPU each)  messages {sum(result.messages.values()):,}  "
          f"hops {len(result.hops)}  peak RSS {peak:,.0f} MiB  "
          f"checked against the replay in {k_cpu:.2f} s: {'same' if not problems else problems}")
    if n in BEFORE and mode == "rounds":
        b_load, b_graph, b_auction, b_gc, b_total = BEFORE[n]
        print(f"{'':<10} before (main 9a7fc09, load {b_load}): graph {b_graph:5.2f} s  auction {b_auction:6.2f} s  "
              f"GC pass {b_gc:4.2f} s  = {b_total:6.2f} s CPU; target: under 10 s and 4 GiB")


def limits(n: int) -> None:
    """Where the auction's time goes: the machines against the network around them.

    Runs the auction once recording every answer of every machine, then runs the
    network again with stand-ins that replay those answers: the second run is the
    network's own work (queue, dispatch, ledger checks, counting) and the rest is the
    machines' (receive, on_timer, next_deadline).
    """
    import gc
    from collections import defaultdict, deque

    from peer.sim.network import RoundDelays, SimNetwork
    from peer.sim.run import build_machines, default_config
    from peer.sra.machine import SraNode

    scenario = parse_scenario(BA_10K.replace("10000", str(n)), source=f"<ba-{n}>")
    config = default_config(scenario, "rounds", None, min_transit=1.0)
    tapes: dict[str, deque] = defaultdict(deque)  # type: ignore[type-arg]

    class Playback:
        def __init__(self, m: SraNode) -> None:
            self.tape, self.seller, self.genesis = tapes[m.id], m.seller, m.genesis
            self.config, self.behaviour, self.result = m.config, m.behaviour, None

        def receive(self, sender, msg, now):  # type: ignore[no-untyped-def]
            return self.tape.popleft()

        on_timer = next_deadline = lambda self, *a: self.tape.popleft()  # noqa: E731

    class Recorder:
        """The machine itself, noting each answer of receive, on_timer and next_deadline."""

        def __init__(self, m: SraNode) -> None:
            self.machine, self.tape = m, tapes[m.id]

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(self.machine, name)

        def receive(self, *a):  # type: ignore[no-untyped-def]
            self.tape.append(self.machine.receive(*a))
            return self.tape[-1]

        def on_timer(self, *a):  # type: ignore[no-untyped-def]
            self.tape.append(self.machine.on_timer(*a))
            return self.tape[-1]

        def next_deadline(self):  # type: ignore[no-untyped-def]
            self.tape.append(self.machine.next_deadline())
            return self.tape[-1]

    def recorded(machines: dict[str, SraNode]) -> dict[str, SraNode]:
        return {name: Recorder(m) for name, m in machines.items()}  # type: ignore[misc]

    gc.disable()
    try:
        plain = build_machines(scenario, scenario.seed, config, "a")
        net = SimNetwork(plain, RoundDelays())
        net.start(scenario.seller)
        start = time.process_time()
        net.run()
        whole = time.process_time() - start
        machines = recorded(build_machines(scenario, scenario.seed, config, "a"))
        rec = SimNetwork(machines, RoundDelays())
        rec.start(scenario.seller)
        rec.run()
        fresh = build_machines(scenario, scenario.seed, config, "a")
        opening = fresh[scenario.seller].start(0.0)
        play = SimNetwork({k: Playback(m) for k, m in fresh.items()}, RoundDelays())  # type: ignore[misc]
        play._apply(scenario.seller, opening, 0.0)
        start = time.process_time()
        play.run()
        alone = time.process_time() - start
    finally:
        gc.enable()
    events = net.stats.events
    print(f"ba-{n:<7} network.run {whole:5.2f} s CPU for {events:,} events: the network's own work "
          f"{alone:5.2f} s ({alone / events * 1e6:.1f} us/event), the machines' {whole - alone:5.2f} s "
          f"({(whole - alone) / events * 1e6:.1f} us/event)")


def phases(n: int) -> None:
    """CPU seconds of each phase of one rounds-mode run, the collector off from the machines to the
    result as ``simulate`` has it, and its one full pass after (the pass the run leaves owed)."""
    import gc
    import os
    import resource

    from peer.sim.network import RoundDelays, SimNetwork
    from peer.sim.outcome import judge
    from peer.sim.run import build_machines, build_result, default_config, run_horizon

    cpu: dict[str, float] = {}

    def phase(name, fn):  # type: ignore[no-untyped-def]
        start = time.process_time()
        out = fn()
        cpu[name] = time.process_time() - start
        return out

    load = os.getloadavg()[0]
    scenario = phase("graph", lambda: parse_scenario(BA_10K.replace("10000", str(n)), source=f"<ba-{n}>"))
    gc.disable()
    try:
        config = phase("depth bound (BFS)", lambda: default_config(scenario, "rounds", None, min_transit=1.0))
        machines = phase("machines", lambda: build_machines(scenario, scenario.seed, config, "a"))
        network = SimNetwork(machines, RoundDelays())
        horizon = run_horizon(config, len(machines), 1.0)

        def loop() -> None:
            network.start(scenario.seller)
            network.run(until=horizon)

        phase("event loop", loop)
        verdict = phase("verdict", lambda: judge(network, set(machines), horizon))
        phase("result", lambda: build_result(scenario, scenario.seed, network, verdict, {}))
    finally:
        gc.enable()
    phase("GC pass", gc.collect)
    events = network.stats.events
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"ba-{n:<7} load {load:5.1f}  " + "  ".join(f"{k} {v:.2f} s" for k, v in cpu.items())
          + f"  = {sum(cpu.values()):.2f} s CPU  ({cpu['event loop'] / events * 1e6:.1f} us per event, "
          f"{events:,} events)  peak RSS {peak:,.0f} MiB  {verdict.status}")


def main() -> int:
    print(f"python {sys.version.split()[0]}")
    sizes = [int(a) for a in sys.argv[1:] if a.isdigit()] or [20_000, 100_000]
    if "--large" in sys.argv:
        for n in sizes:
            large(n)
        return 0
    if "--phases" in sys.argv:
        for n in sizes:
            phases(n)
        return 0
    if "--limits" in sys.argv:
        for n in sizes:
            limits(n)
        return 0
    ba1k = load_scenario(ROOT / "scenarios" / "ba-1000.toml")
    ba10k = parse_scenario(BA_10K, source="<ba-10000>")
    for mode in ("rounds", "async"):
        bench("ba-1000 (scenarios/)", ba1k, 5, mode)
        bench("ba-10000 (generated)", ba10k, 3, mode)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
