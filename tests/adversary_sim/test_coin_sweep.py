"""Choosing one's parent under the private coin and under verifiable coins (peer.experiments.coin_sweep)."""

from __future__ import annotations

from peer.experiments.coin_sweep import atlas_instances, render, sweep_instances


def test_verifiable_coins_refuse_every_naive_parent_choice_and_leave_only_covered_ones() -> None:
    instances = atlas_instances(4)
    private = sweep_instances(instances, verifiable=False)
    verifiable = sweep_instances(instances, verifiable=True)
    # With the private coin, choosing one's parent pays on some instance and nobody can tell.
    assert private.stats["naive"].profitable_unseen > 0
    assert private.stats["naive"].rejected == 0
    naive = verifiable.stats["naive"]
    assert naive.tried > 0 and naive.rejected == naive.tried and naive.profitable == 0
    # Covering the choice costs evidence (omit: refused Declines) or a timeout at the
    # inviters the coin ranks first (silent); no covered gain goes unseen.
    assert verifiable.stats["omit"].rejected == verifiable.stats["omit"].tried
    assert verifiable.stats["silent"].rejected == 0
    assert verifiable.stats["silent"].timeouts == verifiable.stats["silent"].tried
    for stats in verifiable.stats.values():
        assert stats.profitable_unseen == 0
    assert len(render([private, verifiable])) > 6
