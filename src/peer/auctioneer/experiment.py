"""Sec. 6 reproduced: running time against the number of users (the paper's Figures 4 and 5).

Each distributed point is one simulated round (sim.run_round with ``cpu_time``):
every provider is charged the measured CPU time of each of its handlers and
runs on a core of its own, as on the paper's testbed (one CPU per provider);
messages travel with ``latency`` seconds.  The running time is from the bids
leaving the client to the client holding every provider's signed outcome.
Durations are CPU time (``time.process_time``), so the other work on a shared
machine does not inflate them.  The centralised point is one trusted auctioneer on one core: check every bid's
signature, then run the allocator.

* Figure 4: double auction, centralised and k = 1, 2, 3 with 3, 5, 8 providers;
* Figure 5: standard auction with exact VCG, 8 providers, p = 1 (centralised),
  p = 2 (k = 3) and p = 4 (k = 1) payment groups.
"""

from __future__ import annotations

import csv
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from peer.auctioneer.bids import bid_problem
from peer.auctioneer.double import double_auction
from peer.auctioneer.scenario import make_instance
from peer.auctioneer.sim import run_round
from peer.auctioneer.vcg import standard_auction

DOUBLE_SERIES = (("centralised", 1, 0), ("k=1, 3 providers", 3, 1), ("k=2, 5 providers", 5, 2), ("k=3, 8 providers", 8, 3))
STANDARD_SERIES = (("p=1 (centralised)", 1, 0), ("p=2 (k=3)", 8, 3), ("p=4 (k=1)", 8, 1))


@dataclass(frozen=True, slots=True)
class Row:
    auction: str
    series: str
    users: int
    round: int
    seconds: float
    outcome: str  # "decided" or the ⊥ reason


def centralised(auction: str, bids) -> float:
    started = time.process_time()
    for b in bids:
        if bid_problem(b, b.round) is not None:
            raise AssertionError("the generated bids are valid")
    if auction == "double":
        double_auction(bids, bytes(32))
    else:
        standard_auction(bids)
    return time.process_time() - started


def run(
    auction: str, users: Sequence[int], rounds: int, seed: int, latency: float,
    progress: Callable[[Row], None] = lambda row: None,
) -> list[Row]:
    series = DOUBLE_SERIES if auction == "double" else STANDARD_SERIES
    rows = []
    for n in users:
        for r in range(rounds):
            instance = make_instance(seed + r, n, 8, auction)
            for name, executors, k in series:
                if executors == 1:
                    row = Row(auction, name, n, r, centralised(auction, instance.bids), "decided")
                else:
                    result = run_round(
                        instance, executors=executors, k=k, seed=seed + r, latency=latency, cpu_time=True,
                        phase_timeout=3600.0,
                    )
                    aborted = result.aborted()
                    status = "decided" if not aborted else next(iter(aborted.values())).reason
                    row = Row(auction, name, n, r, result.makespan, status)
                rows.append(row)
                progress(row)
    return rows


def write_csv(rows: Sequence[Row], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["auction", "series", "users", "round", "seconds", "outcome"])
        for row in rows:
            writer.writerow([row.auction, row.series, row.users, row.round, f"{row.seconds:.6f}", row.outcome])


def plot(rows: Sequence[Row], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(r.series for r in rows):
        points = sorted({r.users for r in rows if r.series == name})
        means = [statistics.mean(r.seconds for r in rows if r.series == name and r.users == n) for n in points]
        ax.plot(points, means, marker="o", label=name)
    ax.set_xlabel("users")
    ax.set_ylabel("running time (s)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summary(rows: Sequence[Row]) -> list[tuple[str, str, int, float]]:
    keys = dict.fromkeys((r.auction, r.series, r.users) for r in rows)
    return [
        (a, s, n, statistics.mean(r.seconds for r in rows if (r.auction, r.series, r.users) == (a, s, n)))
        for a, s, n in keys
    ]
