"""Experiments on every core: the pooled and Dask paths give exactly the serial results."""

from __future__ import annotations

import pytest

from peer.parallel import ParallelError, map_runs
from peer.qpq.exp_cheaters import run_cheaters
from peer.qpq.exp_props import run_props
from peer.qpq.exp_traffic import run_traffic


def _square(x: int) -> int:
    return x * x


def test_map_runs_keeps_order_in_every_executor() -> None:
    tasks = list(range(23))
    assert map_runs(_square, tasks, workers=1) == map_runs(_square, tasks, workers=2) == [x * x for x in tasks]


def test_pooled_experiments_equal_serial_ones() -> None:
    kwargs = dict(rounds=120, warmup=20, seed=3)
    assert run_props([4], workers=2, **kwargs) == run_props([4], workers=1, **kwargs)
    cheaters = dict(n=12, k=3, cheaters=2, profiles=["uniform_liar"], rounds=120, warmup=20, window=40, seed=5)
    assert run_cheaters(workers=2, **cheaters) == run_cheaters(workers=1, **cheaters)
    # repr: rows that ran no machines hold NaN, which never equals itself
    assert repr(run_traffic([16], workers=2, machines_up_to=16)) == repr(run_traffic([16], workers=1, machines_up_to=16))


@pytest.mark.filterwarnings("ignore")  # distributed warns about ports and event loops on a LocalCluster
def test_dask_local_cluster_gives_the_serial_results() -> None:
    pytest.importorskip("dask.distributed")
    tasks = list(range(9))
    assert map_runs(_square, tasks, dask="local") == [x * x for x in tasks]


def test_unreachable_dask_scheduler_is_one_clear_error() -> None:
    pytest.importorskip("dask.distributed")
    with pytest.raises(ParallelError, match="cannot reach the Dask scheduler"):
        map_runs(_square, [1, 2], dask="tcp://127.0.0.1:9")
