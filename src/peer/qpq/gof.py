"""The goodness-of-fit test, vectorised over the members of a level.

Every member tests every other member's *history window plus the new value*
with the one-sample Kolmogorov-Smirnov test against U[0, 1]; at the winner
level the values are first mapped through the Beta(m, 1) CDF x -> x**m (exactly,
in integers, by :mod:`peer.qpq.decide`), so that test too is against U[0, 1].  The decision is scipy's: reject iff the exact
two-sided p-value ``kstwo.sf(D, m)`` is below ``threshold``.  Because the p-value
is decreasing in D, that is ``D > kstwo.isf(threshold, m)``; the critical values
are computed once per (threshold, m), and D for a whole level is one numpy pass.
``tests/qpq/test_gof.py`` checks that the decisions equal ``scipy.stats.kstest``'s.

A window shorter than ``min_history`` is not tested: with a handful of points the
KS test only rejects extreme values, which would punish honest players exactly
when they value a resource most.

``test = "chi2"`` is the other test the paper allows: Pearson's chi-squared
goodness of fit against U[0, 1] on equal-width bins, ``bins_for(m)`` of them
for a sample of m (at least 5 expected per bin, between 2 and 20 bins), with
scipy's p-value ``chi2.sf(X2, bins - 1)``: the decisions equal
``scipy.stats.chisquare``'s on the binned counts (tested).  It is coarser than
KS (it sees only bin counts) and cheaper to explain; it is not the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.stats import chi2, kstwo

from peer.qpq.fixed import ONE

TESTS = ("ks", "chi2", "off")


@dataclass(frozen=True, slots=True)
class GofConfig:
    """Which test, on how much history.  ``off`` accepts everything (the paper's perfect test for honest players)."""

    test: str = "ks"
    window: int = 100  # past declarations kept per member (and per cluster at the winner level)
    threshold: float = 0.01  # significance level: reject when the p-value is below it
    min_history: int = 10  # test only once this many past declarations are known

    def __post_init__(self) -> None:
        if self.test not in TESTS:
            raise ValueError(f"unknown test {self.test!r}; known: {', '.join(TESTS)}")
        if self.window < 1:
            raise ValueError("window must be at least 1")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be in (0, 1)")
        if self.min_history < 0:
            raise ValueError("min_history must be >= 0")


@lru_cache(maxsize=64)
def critical_values(threshold: float, max_size: int) -> np.ndarray:
    """``crit[m]`` = the KS statistic above which a sample of size m is rejected (crit[0] = inf)."""
    sizes = np.arange(1, max_size + 1)
    crit = np.empty(max_size + 1)
    crit[0] = np.inf
    crit[1:] = kstwo.isf(threshold, sizes)
    crit.setflags(write=False)
    return crit


def ks_statistic(samples: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Two-sided KS statistic against U[0,1] of each row's first ``sizes[i]`` finite values.

    ``samples`` is (m, S) with unused cells set to +inf (they sort to the end).
    """
    x = np.sort(samples, axis=1)
    width = x.shape[1]
    i = np.arange(1, width + 1, dtype=np.float64)[None, :]
    s = sizes.astype(np.float64)[:, None]
    valid = i <= s
    d_plus = np.where(valid, i / s - x, -np.inf).max(axis=1)
    d_minus = np.where(valid, x - (i - 1.0) / s, -np.inf).max(axis=1)
    return np.maximum(d_plus, d_minus)


def gof_reject(windows: np.ndarray, counts: np.ndarray, new: np.ndarray, cfg: GofConfig) -> np.ndarray:
    """For each row, does (history window + new value) fail the test against U[0, 1]?

    ``windows`` (m, W) are past fixed-point values; the first min(count, W)
    cells of a row are valid (order does not matter to KS).  Values that should
    follow Beta(n, 1) are transformed exactly to uniforms by the caller
    (:func:`peer.qpq.fixed.beta_cdf`).
    """
    m = len(new)
    if cfg.test == "off" or m == 0:
        return np.zeros(m, dtype=bool)
    if cfg.test == "chi2":
        return _chi2_reject(windows, counts, new, cfg)
    width = windows.shape[1]
    held = np.minimum(counts, width)
    x = np.full((m, width + 1), np.inf)
    cells = np.arange(width)[None, :] < held[:, None]
    x[:, :width] = np.where(cells, windows / ONE, np.inf)
    x[:, width] = new / ONE
    sizes = held + 1
    stat = ks_statistic(x, sizes)
    crit = critical_values(cfg.threshold, width + 1)
    return (counts >= cfg.min_history) & (stat > crit[sizes])


MIN_EXPECTED = 5  # expected count per bin: the usual condition for the chi-squared approximation
MAX_BINS = 20


def bins_for(size: int) -> int:
    """Equal-width bins for a sample of ``size``: at least 5 expected per bin, 2..20 bins."""
    return max(2, min(MAX_BINS, size // MIN_EXPECTED))


def chi2_statistic(samples: np.ndarray, sizes: np.ndarray, bins: int) -> np.ndarray:
    """Pearson's X2 against U[0,1] on ``bins`` equal bins of each row's first ``sizes[i]`` finite values."""
    valid = np.isfinite(samples)
    cells = np.clip(np.floor(np.where(valid, samples, 0.0) * bins), 0, bins - 1).astype(np.int64)
    observed = np.zeros((samples.shape[0], bins))
    rows = np.broadcast_to(np.arange(samples.shape[0])[:, None], samples.shape)
    np.add.at(observed, (rows[valid], cells[valid]), 1.0)
    expected = sizes.astype(np.float64)[:, None] / bins
    return ((observed - expected) ** 2 / expected).sum(axis=1)


def _chi2_reject(windows: np.ndarray, counts: np.ndarray, new: np.ndarray, cfg: GofConfig) -> np.ndarray:
    m = len(new)
    width = windows.shape[1]
    held = np.minimum(counts, width)
    x = np.full((m, width + 1), np.inf)
    cells = np.arange(width)[None, :] < held[:, None]
    x[:, :width] = np.where(cells, windows / ONE, np.inf)
    x[:, width] = new / ONE
    sizes = held + 1
    reject = np.zeros(m, dtype=bool)
    for size in np.unique(sizes):  # rows of one size share the bins and the critical value
        rows = sizes == size
        bins = bins_for(int(size))
        stat = chi2_statistic(x[rows], sizes[rows], bins)
        reject[rows] = chi2.sf(stat, bins - 1) < cfg.threshold
    return (counts >= cfg.min_history) & reject
