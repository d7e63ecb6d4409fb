"""The one-hop local VCG auction (Eqs. 1-2 of the paper) as a pure function."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter

import pytest

from peer.sra.local_auction import LocalResult, run_local_auction, tie_break_rng


def rng(seed: int = 0) -> random.Random:
    return tie_break_rng(seed, "h", 1)


def test_no_participants_host_keeps_at_its_reserve() -> None:
    assert run_local_auction(3, 5, {}, rng()) == LocalResult(None, 5, None, None)
    assert run_local_auction(0, 0, {}, rng(), origin=True) == LocalResult(None, 0, None, None)


def test_second_price_with_reserve() -> None:
    assert run_local_auction(3, 5, {"x": 9, "y": 6, "z": 1}, rng()) == LocalResult("x", 6, 9, 6)
    assert run_local_auction(3, 7, {"x": 9, "y": 6}, rng()) == LocalResult("x", 7, 9, 6)


def test_single_participant_pays_the_reserve() -> None:
    assert run_local_auction(0, 3, {"x": 5}, rng()) == LocalResult("x", 3, 5, None)


def test_best_bid_below_the_reserve_host_keeps() -> None:
    assert run_local_auction(0, 3, {"x": 2}, rng()) == LocalResult(None, 3, 2, None)


@pytest.mark.parametrize(("host", "winner"), [(5, "x"), (6, None), (7, None)])
def test_reselling_host_keeps_on_ties(host: int, winner: str | None) -> None:
    result = run_local_auction(host, 5, {"x": 9, "y": 6}, rng())
    assert result.winner == winner
    assert result.price == (6 if winner else 5)


def test_origin_with_reserve_zero_and_one_bidder_sells_for_nothing() -> None:
    assert run_local_auction(0, 0, {"x": 8}, rng(), origin=True) == LocalResult("x", 0, 8, None)


def test_origin_value_is_a_price_floor() -> None:
    assert run_local_auction(4, 0, {"x": 8, "y": 2}, rng(), origin=True).price == 4
    assert run_local_auction(4, 0, {"x": 8, "y": 6}, rng(), origin=True).price == 6
    # She sells on a tie with her reserve (she is no buyer), unlike a reselling host.
    assert run_local_auction(8, 0, {"x": 8}, rng(), origin=True) == LocalResult("x", 8, 8, None)
    assert run_local_auction(9, 0, {"x": 8, "y": 2}, rng(), origin=True).winner is None


def test_tie_for_first_pays_the_tied_amount() -> None:
    result = run_local_auction(0, 0, {"x": 7, "y": 7, "z": 3}, rng(), origin=True)
    assert result.winner in {"x", "y"}
    assert result.price == 7
    assert (result.first, result.second) == (7, 7)


def test_ties_are_broken_uniformly_over_seeds() -> None:
    wins: Counter[str | None] = Counter()
    for seed in range(600):
        wins[run_local_auction(0, 0, {"x": 7, "y": 7, "z": 7}, rng(seed), origin=True).winner] += 1
    assert set(wins) == {"x", "y", "z"}
    assert all(150 <= c <= 250 for c in wins.values()), wins


def test_tie_break_does_not_depend_on_arrival_order() -> None:
    for seed in range(50):
        a = run_local_auction(0, 0, {"x": 7, "y": 7, "z": 7}, rng(seed), origin=True)
        b = run_local_auction(0, 0, {"z": 7, "x": 7, "y": 7}, rng(seed), origin=True)
        assert a == b


def test_tie_break_rng_is_per_host_and_hop() -> None:
    draws = {
        (seed, host, hop): tie_break_rng(seed, host, hop).random()
        for seed in (0, 1)
        for host in ("a", "b")
        for hop in (1, 2)
    }
    assert len(set(draws.values())) == len(draws)
    assert tie_break_rng(3, "a", 2).random() == tie_break_rng(3, "a", 2).random()


def test_tie_break_rng_does_not_depend_on_the_hash_seed() -> None:
    code = "from peer.sra.local_auction import tie_break_rng; print(tie_break_rng(5, 'host', 3).random())"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": str(h), "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for h in (1, 2)
    }
    assert outputs == {f"{tie_break_rng(5, 'host', 3).random()}\n"}
