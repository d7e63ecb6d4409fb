"""Counterexample C (bid shading through a host's tie-break) with the private coin and verifiable coins.

docs/findings.md, Counterexample C: on a-b a-s b-e d-e e-s with a=2, b=3, d=2,
e=1, b gains by bidding 2 when s's tie between a and e goes to e and e's tie
between b and d goes to b.  With the private coin those ties follow the run
seed's stream; with verifiable coins they follow the hosts' signatures over
(auction id, hop).  Each run seed is a different auction id, so this counts,
over seeds 1..N, how often shading pays, split by b's own parent coin.

Run: ``python bench/tie_coins_bench.py [--seeds 400]``.
"""

from __future__ import annotations

import argparse
import time

from peer.experiments.coin_sweep import play_coins
from peer.experiments.deviation_instances import Instance
from peer.experiments.deviation_model import Deviation
from peer.sra.machine import Behaviour

EDGES = (("a", "b"), ("a", "s"), ("b", "e"), ("d", "e"), ("e", "s"))
VALUES = (("a", 2), ("b", 3), ("d", 2), ("e", 1), ("s", 0))
SHADE = Deviation("shade", Behaviour(bid=2))


def measure(seeds: int, verifiable: bool) -> dict[str, list[int]]:
    """Per b's parent: [runs, honest utility total, shaded utility total, runs where shading paid]."""
    out: dict[str, list[int]] = {}
    for seed in range(1, seeds + 1):
        instance = Instance(edges=EDGES, values=VALUES, seller="s", seed=seed)
        honest = play_coins(instance, None, None, verifiable=verifiable)
        shaded = play_coins(instance, "b", SHADE, verifiable=verifiable)
        assert shaded.result.extra["status"] == "completed"  # shading is a legal message: nothing refused
        row = out.setdefault(honest.parents["b"][0], [0, 0, 0, 0])
        u_h, u_s = int(honest.result.utilities["b"]), int(shaded.result.utilities["b"])
        row[0] += 1
        row[1] += u_h
        row[2] += u_s
        row[3] += u_s > u_h
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=400)
    args = parser.parse_args()
    print(f"Counterexample C, run seeds 1..{args.seeds}: b honest (value 3) against b bidding 2")
    print("coins       b's parent  runs  honest u_b  shaded u_b  shading pays")
    for verifiable in (False, True):
        started = time.perf_counter()
        rows = measure(args.seeds, verifiable)
        label = "verifiable" if verifiable else "private"
        for parent in sorted(rows):
            runs, honest, shaded, pays = rows[parent]
            print(f"{label:<11} {parent:<11} {runs:>4}  {honest:>10}  {shaded:>10}  {pays:>12}")
        runs = sum(r[0] for r in rows.values())
        print(f"{label:<11} {'(all)':<11} {runs:>4}  {sum(r[1] for r in rows.values()) / runs:>10.4f}  "
              f"{sum(r[2] for r in rows.values()) / runs:>10.4f}  {sum(r[3] for r in rows.values()):>12}"
              f"   ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
