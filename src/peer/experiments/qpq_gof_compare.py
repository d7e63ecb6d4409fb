"""QPQ's goodness-of-fit test: Kolmogorov-Smirnov (the default) against chi-squared, side by side.

n players in k clusters, ``cheaters`` of them (spread over clusters) with one
cheating profile, the rest honest; the fast path on the same seeds for both
tests.  Per (profile, test): the cheaters' and the honest players' mean
normalised utility against 1/(n+1), and the share of their declarations the
test replaced (for honest players: the false-positive rate).

Run: ``python -m peer.experiments.qpq_gof_compare [--rounds 2000]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from peer.qpq.exp_common import mean_se, population, spread
from peer.qpq.fast import run_fast
from peer.qpq.gof import GofConfig
from peer.qpq.preferences import parse_profile

PROFILES = ("beta_cheater(1.25)", "beta_cheater(1.5)", "beta_cheater(3)", "uniform_liar")


@dataclass(frozen=True)
class GofRow:
    test: str
    profile: str
    cheater_mean: float
    honest_mean: float
    theory: float
    cheater_replaced: float
    honest_replaced: float
    winner_level_replaced: int


def compare(*, n: int = 64, k: int = 8, cheaters: int = 4, rounds: int = 2000, warmup: int = 200,
            window: int = 100, threshold: float = 0.01, seed: int = 1,
            profiles: Sequence[str] = PROFILES) -> list[GofRow]:
    rows = []
    for spec in profiles:
        profile = parse_profile(spec)
        for test in ("ks", "chi2"):
            gof = GofConfig(test=test, window=window, threshold=threshold, min_history=10)
            setup = population(n, k, seed=seed, rounds=rounds, gof=gof,
                               special={i: profile for i in spread(cheaters, n)}, name=f"gof-{test}")
            run = run_fast(setup, measure_from=warmup)
            groups = run.by_profile()
            bad, good = groups.get(profile.spec, []), groups.get("honest", [])
            per_round = max(1, run.measured_rounds)
            rows.append(GofRow(
                test, spec, mean_se(run.group_series(bad))[0], mean_se(run.group_series(good))[0], 1 / (n + 1),
                sum(run.replaced[x] for x in bad) / (max(1, len(bad)) * per_round),
                sum(run.replaced[x] for x in good) / (max(1, len(good)) * per_round),
                run.winner_replaced,
            ))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--k", type=int, default=8)
    args = parser.parse_args(argv)
    rows = compare(n=args.n, k=args.k, rounds=args.rounds)
    print(f"n={args.n} k={args.k} 4 cheaters, window 100, threshold 0.01, {args.rounds} rounds (first 200 not "
          "measured)")
    print("test  profile              cheater u  honest u  1/(n+1)  cheater replaced  honest replaced  "
          "winner-level replaced")
    for r in rows:
        print(f"{r.test:<5} {r.profile:<20} {r.cheater_mean:>9.5f}  {r.honest_mean:>8.5f}  {r.theory:>7.5f}  "
              f"{r.cheater_replaced:>16.3f}  {r.honest_replaced:>15.4f}  {r.winner_level_replaced:>21}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
