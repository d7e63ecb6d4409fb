"""The pure link-management rules: backoff and one link per pair."""

from __future__ import annotations

import random

import pytest

from peer.net.linkstate import Backoff, LinkStats, keep_new_link, preferred_dialer

LOW, HIGH = b"\x01" * 32, b"\x02" * 32


def test_backoff_grows_with_jitter_caps_and_resets() -> None:
    backoff = Backoff(random.Random(7), base=1.0, factor=2.0, cap=8.0)
    delays = [backoff.next() for _ in range(6)]
    for delay, ceiling in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered
    backoff.reset()
    assert 0.5 <= backoff.next() <= 1.0
    again = Backoff(random.Random(7), base=1.0, factor=2.0, cap=8.0)
    assert [again.next() for _ in range(6)] == delays  # seeded: reproducible


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(random.Random(), base=0)
    with pytest.raises(ValueError):
        Backoff(random.Random(), base=2, cap=1)


@pytest.mark.parametrize(
    ("me", "peer", "current", "new", "keep_new"),
    [
        (LOW, HIGH, LOW, HIGH, False),  # the lower key's dial is kept, seen from the lower key
        (HIGH, LOW, LOW, HIGH, False),  # ... and from the higher key: both agree
        (LOW, HIGH, HIGH, LOW, True),  # the preferred dial replaces the other one
        (HIGH, LOW, HIGH, LOW, True),
        (LOW, HIGH, LOW, LOW, True),  # same direction: newer wins (the old one is likely half-open)
        (HIGH, LOW, HIGH, HIGH, True),
    ],
)
def test_one_link_per_pair_rule(me: bytes, peer: bytes, current: bytes, new: bytes, keep_new: bool) -> None:
    assert preferred_dialer(me, peer) == LOW
    assert keep_new_link(me, peer, current, new) is keep_new


def test_stats_snapshot_is_a_copy() -> None:
    stats = LinkStats(links=3)
    stats.bad_frames["forged"] += 2
    snap = stats.snapshot("ab", "name")
    stats.bad_frames["forged"] += 1
    assert (snap.reconnects, snap.bad_frames, snap.bad_by_kind) == (2, 2, {"forged": 2})
