"""Benchmark: one SRA auction in the in-memory simulator at 1,000 and 10,000 nodes.

Prints wall time (best of a few runs), messages per stage and the outcome.
Targets from the SRA core issue: 1,000-node BA under 1 s, 10,000-node under 10 s.

    python bench/sra_bench.py
    python bench/sra_bench.py --large   # also 20,000 and 100,000 nodes, once each, with peak
                                        # memory and the check against the replay
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


def large(n: int) -> None:
    """One auction on a generated social-network-like graph (BA, m = 3): time per phase, peak RSS,
    and whether it sold exactly as the replay of the same run does."""
    import resource

    from peer.reference.replay import replay_run

    start = time.perf_counter()
    scenario = parse_scenario(BA_10K.replace("10000", str(n)), source=f"<ba-{n}>")
    loaded = time.perf_counter()
    result, _network = simulate(scenario)
    simulated = time.perf_counter()
    reference = replay_run(result, scenario.values)
    same = [(h.seller, h.buyer, h.price) for h in result.hops] == [(h.seller, h.buyer, h.price) for h in reference.hops]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"ba-{n:<7} graph {loaded - start:6.2f} s  auction {simulated - loaded:6.2f} s  "
          f"messages {sum(result.messages.values())}  hops {len(result.hops)}  "
          f"peak RSS {peak:,.0f} MiB  same as replay: {same}")


def main() -> int:
    print(f"python {sys.version.split()[0]}")
    if "--large" in sys.argv:
        for n in (20_000, 100_000):
            large(n)
        return 0
    ba1k = load_scenario(ROOT / "scenarios" / "ba-1000.toml")
    ba10k = parse_scenario(BA_10K, source="<ba-10000>")
    for mode in ("rounds", "async"):
        bench("ba-1000 (scenarios/)", ba1k, 5, mode)
        bench("ba-10000 (generated)", ba10k, 3, mode)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
