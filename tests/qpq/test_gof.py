"""The vectorised KS decisions are scipy's, and the test's accept/replace behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kstest

from peer.qpq.fixed import ONE
from peer.qpq.gof import GofConfig, critical_values, gof_reject, ks_statistic
from peer.qpq.history import HistoryStore


def _windows(rows: list[list[int]], width: int) -> tuple[np.ndarray, np.ndarray]:
    store = HistoryStore([f"s{i}" for i in range(len(rows))], width)
    for i, row in enumerate(rows):
        for v in row:
            store.append(np.array([i]), np.array([v], dtype=np.uint32))
    return store.buf, store.count


@pytest.mark.parametrize("threshold", [0.01, 0.05, 0.2])
def test_decisions_equal_scipy_kstest(threshold: float) -> None:
    rng = np.random.default_rng(7)
    width = 30
    cfg = GofConfig(window=width, threshold=threshold, min_history=0)
    rows, new = [], []
    for i in range(400):
        size = int(rng.integers(1, 60))  # some rows overflow the window: only the newest `width` count
        a = float(rng.choice([1.0, 1.0, 1.5, 3.0]))
        rows.append([int(x) for x in (rng.beta(a, 1.0, size) * ONE).astype(np.int64)])
        new.append(int(rng.integers(0, ONE)))
    buf, count = _windows(rows, width)
    got = gof_reject(buf, count, np.array(new), cfg)
    for i, row in enumerate(rows):
        sample = np.array(row[-width:] + [new[i]]) / ONE
        expected = kstest(sample, "uniform").pvalue < threshold
        assert got[i] == expected, (i, kstest(sample, "uniform"))


def test_statistic_matches_scipy_on_ragged_rows() -> None:
    rng = np.random.default_rng(3)
    x = np.full((50, 20), np.inf)
    sizes = rng.integers(1, 21, 50)
    for i, s in enumerate(sizes):
        x[i, :s] = rng.random(s)
    stat = ks_statistic(x, sizes)
    for i, s in enumerate(sizes):
        assert stat[i] == pytest.approx(kstest(x[i, :s], "uniform").statistic, abs=1e-12)


def test_honest_uniform_values_pass_and_beta_values_fail() -> None:
    rng = np.random.default_rng(11)
    cfg = GofConfig(window=100, threshold=0.01, min_history=10)
    honest = [[int(v) for v in rng.integers(0, ONE, 100)] for _ in range(200)]
    buf, count = _windows(honest, 100)
    rejected = gof_reject(buf, count, rng.integers(0, ONE, 200), cfg)
    assert rejected.mean() < 0.05  # a size-1% test
    cheats = [[int(v) for v in (rng.beta(20, 1, 100) * ONE)] for _ in range(50)]
    buf, count = _windows(cheats, 100)
    assert gof_reject(buf, count, rng.integers(0, ONE, 50), cfg).all()


def test_short_histories_are_not_tested_and_off_accepts_everything() -> None:
    cfg = GofConfig(window=50, min_history=10)
    top = ONE - 1
    buf, count = _windows([[top] * 9, [top] * 10], 50)
    assert gof_reject(buf, count, np.array([top, top]), cfg).tolist() == [False, True]
    off = GofConfig(test="off", window=50)
    assert not gof_reject(buf, count, np.array([top, top]), off).any()


def test_critical_values_are_scipy_isf() -> None:
    crit = critical_values(0.05, 40)
    assert crit[0] == np.inf and len(crit) == 41
    from scipy.stats import kstwo

    assert crit[17] == pytest.approx(kstwo.isf(0.05, 17))


def test_config_validates() -> None:
    with pytest.raises(ValueError):
        GofConfig(test="anderson")
    with pytest.raises(ValueError):
        GofConfig(threshold=1.5)
    with pytest.raises(ValueError):
        GofConfig(window=0)


# ------------------------------------------------------------------ the chi-squared option


@pytest.mark.parametrize("threshold", [0.01, 0.05])
def test_chi2_decisions_equal_scipy_chisquare_on_the_binned_counts(threshold: float) -> None:
    from scipy.stats import chisquare

    from peer.qpq.gof import bins_for

    rng = np.random.default_rng(5)
    width = 40
    cfg = GofConfig(test="chi2", window=width, threshold=threshold, min_history=0)
    rows, new = [], []
    for _ in range(300):
        size = int(rng.integers(1, 70))
        a = float(rng.choice([1.0, 1.0, 2.0, 5.0]))
        rows.append([int(x) for x in (rng.beta(a, 1.0, size) * ONE).astype(np.int64)])
        new.append(int(rng.integers(0, ONE)))
    buf, count = _windows(rows, width)
    got = gof_reject(buf, count, np.array(new), cfg)
    assert 0 < got.sum() < len(got)  # both outcomes occur
    for i, row in enumerate(rows):
        sample = np.array(row[-width:] + [new[i]]) / ONE
        bins = bins_for(len(sample))
        observed = np.bincount(np.minimum((sample * bins).astype(int), bins - 1), minlength=bins)
        assert got[i] == (chisquare(observed).pvalue < threshold), i


def test_chi2_passes_honest_values_and_catches_beta_cheaters() -> None:
    rng = np.random.default_rng(13)
    cfg = GofConfig(test="chi2", window=100, threshold=0.01, min_history=10)
    honest = [[int(v) for v in rng.integers(0, ONE, 100)] for _ in range(200)]
    buf, count = _windows(honest, 100)
    assert gof_reject(buf, count, rng.integers(0, ONE, 200), cfg).mean() < 0.05
    cheats = [[int(v) for v in (rng.beta(20, 1, 100) * ONE)] for _ in range(50)]
    buf, count = _windows(cheats, 100)
    assert gof_reject(buf, count, (rng.beta(20, 1, 50) * ONE).astype(np.int64), cfg).all()
