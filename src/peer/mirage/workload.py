"""The seeded job stream: who wants how many nodes, for how long, worth what, and when.

Drawn once per scenario and seed, so every mechanism and every strategy faces
the same jobs.  Arrivals are Poisson per hour, multiplied in the scenario's
peaks (conference deadlines); values per node-hour are log-uniform (Fig. 2's
orders of magnitude) and grow toward the end of a peak (Fig. 3's rise).
Floats are used only to draw; each value becomes integer minor units once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from peer.mirage.scenario import MirageScenario
from peer.money import SCALE


@dataclass(frozen=True, slots=True)
class JobSpec:
    job_id: str
    user: str
    arrival: int
    order: int  # position among the hour's arrivals
    nodes: int
    hours: int
    rate: int  # minor units per node-hour
    latest: int


def users_of(scenario: MirageScenario) -> list[str]:
    return [f"u{i:02d}" for i in range(scenario.users)]


def strategists_of(scenario: MirageScenario) -> list[str]:
    """The users who play the strategy under test: a seeded choice, the same in every run."""
    rng = np.random.default_rng([scenario.seed, 1])
    users = users_of(scenario)
    return sorted(rng.choice(users, size=scenario.strategy.strategists, replace=False).tolist())


def peak_factor(scenario: MirageScenario, hour: int) -> tuple[float, float]:
    """(load multiplier, value multiplier) at ``hour``: the load jumps in a peak, the value grows through it."""
    day = hour / 24
    for start, end, load in scenario.workload.peaks:
        if start <= day < end:
            progress = (day - start) / (end - start) if end > start else 1.0
            return load, scenario.workload.deadline_value_growth ** progress
    return 1.0, 1.0


def draw_jobs(scenario: MirageScenario) -> list[JobSpec]:
    w = scenario.workload
    rng = np.random.default_rng([scenario.seed, 0])
    users = users_of(scenario)
    node_p = np.asarray(w.nodes_weights) / sum(w.nodes_weights)
    peak_node_p = np.asarray(w.peak_nodes_weights) / sum(w.peak_nodes_weights)
    hour_p = np.asarray(w.hours_weights) / sum(w.hours_weights)
    lo, hi = math.log(w.value_per_node_hour[0]), math.log(w.value_per_node_hour[1])
    jobs: list[JobSpec] = []
    for hour in range(scenario.rounds):
        load, growth = peak_factor(scenario, hour)
        for order in range(int(rng.poisson(w.arrivals_per_hour * load))):
            rate = math.exp(rng.uniform(lo, hi)) * growth
            jobs.append(JobSpec(
                job_id=f"j{len(jobs):05d}",
                user=users[int(rng.integers(len(users)))],
                arrival=hour,
                order=order,
                nodes=int(rng.choice(w.nodes, p=peak_node_p if load > 1 else node_p)),
                hours=int(rng.choice(w.hours, p=hour_p)),
                rate=max(1, round(rate * SCALE)),
                latest=hour + w.patience_hours,
            ))
    return jobs
