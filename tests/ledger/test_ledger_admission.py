"""#16.1 (ledger side): spam announcements are held in a bounded pending area, and chains that
never started expire.  Without a policy (today's behaviour) every valid announcement is stored."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from peer.ledger.admission import AdmissionPolicy
from peer.ledger.entries import Announcement
from peer.ledger.records import chain_file_name
from peer.ledger.store import LedgerStore

from ._helpers import announce, make_chain

NOW = 1_700_000_000.0
SMALL = AdmissionPolicy(max_pending=20, max_pending_per_seller=3, max_pending_per_auction=8, pending_ttl=60,
                        max_unstarted_per_seller=2, unstarted_ttl=3600)


def _throwaway(i: int) -> SigningKey:
    return SigningKey(hashlib.sha256(b"spam-%d" % i).digest())


def _spam(n: int, start: int = 0) -> list[Announcement]:
    return [Announcement.create(_throwaway(i), auction=f"spam-{i}", item="x" * 100, created_at_ms=1)
            for i in range(start, start + n)]


def _chain_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.glob("*.chain"))


def test_without_a_policy_every_spam_announcement_is_stored(tmp_path: Path) -> None:
    with LedgerStore(tmp_path) as store:
        assert len(store.merge(_spam(50)).accepted) == 50
    assert len(_chain_files(tmp_path)) == 50  # what #16.1 saw: 20,296 files after 20 s


def test_spam_waits_in_a_bounded_pending_area_and_never_reaches_the_disk(tmp_path: Path) -> None:
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        result = store.merge(_spam(50), now=NOW)
        assert result.accepted == [] and len(result.held) == 50 and not result.rejected
        assert store.pending() == SMALL.max_pending  # the oldest were dropped
        assert store.chains() == [] and store.summaries() == [] and store.digests().buckets == ()
    assert _chain_files(tmp_path) == []


def test_admit_merges_what_was_pending_and_what_comes_after(tmp_path: Path) -> None:
    chain = make_chain("real", hops=3)
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        assert len(store.merge(chain.entries[:2], now=NOW).held) == 2
        assert store.chain("real") is None
        result = store.admit("real", now=NOW)  # the seller's Invite arrived
        assert result.accepted == list(chain.entries[:2]) and store.pending() == 0
        assert store.merge(chain.entries[2:], now=NOW).accepted == list(chain.entries[2:])
        assert store.chain("real") == chain


def test_an_auction_admitted_before_its_announcement_is_merged_on_arrival(tmp_path: Path) -> None:
    chain = make_chain("early", hops=1)
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        assert store.admit("early", now=NOW).accepted == []
        assert store.merge(chain.entries, now=NOW).accepted == list(chain.entries)


def test_forged_announcements_are_not_held(tmp_path: Path) -> None:
    forged = dataclasses.replace(announce("f"), signature=bytes(64))
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        result = store.merge([forged], now=NOW)
        assert not result.held and "not signed" in result.rejected[0].reason
        assert store.pending() == 0


def test_one_seller_may_have_only_a_few_announcements_pending(tmp_path: Path) -> None:
    key = _throwaway(0)
    anns = [Announcement.create(key, auction=f"s{i}", item="", created_at_ms=1) for i in range(5)]
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        result = store.merge(anns, now=NOW)
        assert len(result.held) == 3 and len(result.rejected) == 2
        assert "already has 3 announcements waiting" in result.rejected[0].reason


def test_pending_entries_expire(tmp_path: Path) -> None:
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        store.merge(_spam(5), now=NOW)
        store.merge(_spam(1, start=100), now=NOW + SMALL.pending_ttl + 1)
        assert store.pending() == 1
        assert store.admit("spam-0", now=NOW + 61).accepted == []


def test_without_a_pending_area_a_seller_has_a_bounded_number_of_unstarted_chains(tmp_path: Path) -> None:
    key = _throwaway(0)
    anns = [Announcement.create(key, auction=f"s{i}", item="", created_at_ms=1) for i in range(5)]
    with LedgerStore(tmp_path) as store:
        store.set_admission(dataclasses.replace(SMALL, hold_pending=False))
        result = store.merge(anns, now=NOW)
        assert len(result.accepted) == 2 and len(result.rejected) == 3
        assert "never started" in result.rejected[0].reason
        assert store.unstarted(anns[0].seller) == 2


def test_chains_that_never_started_expire(tmp_path: Path) -> None:
    started = make_chain("started", hops=1)
    with LedgerStore(tmp_path) as store:
        store.merge([*_spam(3), *started.entries])
        store.set_admission(SMALL)
        old = NOW - SMALL.unstarted_ttl - 1
        for name in ("spam-0", "spam-1", "started"):
            os.utime(tmp_path / chain_file_name(name), (old, old))
        assert store.expire_unstarted(NOW, keep={"spam-1"}) == ["spam-0"]
        assert store.chain("spam-0") is None and store.chain("spam-1") and store.chain("spam-2")
        assert store.chain("started") == started
    assert chain_file_name("spam-0") not in _chain_files(tmp_path)
    with LedgerStore(tmp_path) as store:  # expired is gone, not "lost"
        assert not store.lost() and store.verify_all().ok


def test_expiry_needs_a_policy(tmp_path: Path) -> None:
    with LedgerStore(tmp_path) as store:
        store.merge(_spam(1))
        assert store.expire_unstarted(NOW + 10**9) == []


@pytest.mark.parametrize("bound", [1, 5])
def test_the_pending_area_never_exceeds_its_bound(tmp_path: Path, bound: int) -> None:
    with LedgerStore(tmp_path) as store:
        store.set_admission(dataclasses.replace(SMALL, max_pending=bound))
        for i in range(10):
            store.merge(_spam(1, start=i), now=NOW)
            assert store.pending() <= bound
