"""The simulator's pause of the garbage collector leaves the run's objects old, and the caller's GC state alone."""

from __future__ import annotations

import gc

from peer.sim.run import collector_paused, simulate
from tests.sim.fingerprint import ba_scenario


def test_the_run_leaves_its_objects_in_the_oldest_generation_and_the_collector_on() -> None:
    gc.enable()
    result, network = simulate(ba_scenario(300))
    assert gc.isenabled()
    some = next(iter(network.machines.values()))
    young = {id(o) for o in gc.get_objects(generation=0)} | {id(o) for o in gc.get_objects(generation=1)}
    assert id(some) not in young and id(network.stats.messages) not in young
    assert gc.get_freeze_count() == 0
    assert result.extra["status"] == "completed"


def test_a_caller_with_the_collector_off_or_objects_frozen_keeps_them_so() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
    keep = [[] for _ in range(10)]
    gc.freeze()
    try:
        with collector_paused():
            more = [[] for _ in range(10)]
        # Still frozen: in no generation the collector walks.  (Not the freeze count: any frozen
        # object another thread frees, e.g. an idle trio worker thread exiting, lowers it.)
        walked = {id(o) for generation in (0, 1, 2) for o in gc.get_objects(generation=generation)}
        assert gc.isenabled() and gc.get_freeze_count() > 0
        assert not any(id(k) in walked for k in keep)
        assert more and keep
    finally:
        gc.unfreeze()
