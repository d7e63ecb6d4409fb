"""decide_level: the one decision path (accept, replace, forfeit, arg max, history)."""

from __future__ import annotations

import numpy as np

from peer.qpq.commit import replacement_value
from peer.qpq.decide import Fault, Level, decide_level
from peer.qpq.fixed import MAX_VALUE, ONE, beta_cdf
from peer.qpq.gof import GofConfig
from peer.qpq.history import HistoryStore

SLOTS = ("a", "b", "c", "d")
NONCES = [bytes([i]) * 16 for i in range(4)]
CFG = GofConfig(window=20, threshold=0.01, min_history=10)


def _decide(store: HistoryStore, values: list[int | None], faults: list[Fault | None] | None = None,
            level: Level = Level.CLUSTER, shapes: tuple[int, ...] = (1, 1, 1, 1), round_no: int = 0):  # type: ignore[no-untyped-def]
    faults = faults or [None if v is not None else Fault.MISSING_REVEAL for v in values]
    return decide_level(stream="s", round_no=round_no, level=level, group="c0", slots=SLOTS, entrants=SLOTS,
                        values=values, nonces=[n if v is not None else None for n, v in zip(NONCES, values)],
                        faults=faults, shapes=shapes, store=store, gof=CFG)


def _fill(store: HistoryStore, slot: str, values: list[int]) -> None:
    for v in values:
        store.append(store.rows([slot]), np.array([v], dtype=np.uint32))


def test_passing_values_are_kept_and_the_arg_max_wins() -> None:
    store = HistoryStore(SLOTS, 20)
    result = _decide(store, [10, 400, 30, 20])
    assert result.final == (10, 400, 30, 20) and not any(result.replaced)
    assert result.winner_entrant == "b" and result.support == 4
    assert store.count.tolist() == [1, 1, 1, 1]


def test_a_failing_value_is_replaced_by_the_transcript_hash() -> None:
    store = HistoryStore(SLOTS, 20)
    rng = np.random.default_rng(0)
    for slot in SLOTS:
        _fill(store, slot, [int(v) for v in rng.integers(0, ONE, 15)])
    _fill(store, "a", [MAX_VALUE] * 15)  # a's window is now mostly the top value: it fails
    result = _decide(store, [MAX_VALUE, ONE // 2, ONE // 3, ONE // 4])
    assert result.replaced == (True, False, False, False)
    assert result.faults[0] is Fault.FAILED_TEST
    assert result.final[0] == replacement_value(result.transcript, "a")
    assert result.declared[0] == MAX_VALUE  # what it declared is kept on record
    assert store.window_of("a")[-1] == MAX_VALUE  # and enters its window: replacement never cleans a history


def test_every_member_computes_the_same_result() -> None:
    # Two members with their own (equal) histories decide alike, replacement included.
    stores = [HistoryStore(SLOTS, 20) for _ in range(2)]
    rng = np.random.default_rng(5)
    results = []
    for store in stores:
        local = np.random.default_rng(5)
        for slot in SLOTS:
            _fill(store, slot, [int(v) for v in local.integers(0, ONE // 10, 15)])  # all skewed low: all fail
    values = [int(v) for v in rng.integers(0, ONE, 4)]
    for store in stores:
        results.append(_decide(store, list(values)))
    assert results[0] == results[1]
    assert all(results[0].replaced)
    assert stores[0].digest() == stores[1].digest()


def test_forfeits_cannot_win_and_add_no_history() -> None:
    store = HistoryStore(SLOTS, 20)
    result = _decide(store, [None, 5, None, 7], faults=[Fault.BAD_REVEAL, None, Fault.MISSING_COMMIT, None])
    assert result.final == (None, 5, None, 7)
    assert result.faults[0] is Fault.BAD_REVEAL and result.faults[2] is Fault.MISSING_COMMIT
    assert result.winner_entrant == "d" and result.support == 2
    assert store.count.tolist() == [0, 1, 0, 1]


def test_nobody_left_means_no_winner() -> None:
    store = HistoryStore(SLOTS, 20)
    result = _decide(store, [None] * 4)
    assert result.winner is None and result.winner_entrant is None


def test_ties_are_broken_by_the_transcript_not_the_name() -> None:
    winners = set()
    for r in range(40):
        store = HistoryStore(SLOTS, 20)
        winners.add(_decide(store, [9, 9, 9, 9], round_no=r).winner_entrant)
    assert winners == set(SLOTS)


def test_winner_level_tests_against_beta_of_the_support() -> None:
    # Cluster winners of 8 honest members are Beta(8,1): mapped by x**8 into the window, they pass;
    # the same values declared as the winners of 2-member clusters look far too high and fail.
    rng = np.random.default_rng(2)
    for support, should_fail in ((8, False), (2, True)):
        store = HistoryStore(SLOTS, 20)
        replaced = 0
        for r in range(60):
            values = [int(ONE * rng.random() ** (1 / 8)) for _ in SLOTS]
            result = _decide(store, values, level=Level.WINNER, shapes=(support,) * 4, round_no=r)
            replaced += sum(result.replaced)
        assert (replaced > 100) == should_fail, replaced
    assert store.window_of("a")[0] == beta_cdf(store.window_of("a")[0], 1)
