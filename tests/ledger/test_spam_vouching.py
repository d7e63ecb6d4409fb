"""#16.1, ledger side of the anti-entropy path: chains signed with throwaway keys (announcement and
hops) that a neighbour's anti-entropy answer carries.  Before, the node admitted every started chain
such an answer carried and served it on; now the neighbour vouches for a bounded number, recorded
on disk, never served on, and every chain merged from peers has a bounded length."""

from __future__ import annotations

import json
from pathlib import Path

from peer.ledger.admission import AdmissionPolicy
from peer.ledger.codec import Summaries, Summary
from peer.ledger.entries import SignedHop
from peer.ledger.store import LedgerStore
from peer.node.recovery import servable

from ._helpers import make_chain
from ._spam import pk, spam_chain, spam_entries, throwaway

NOW = 1_700_000_000.0
M = "aa" * 32  # the flooding neighbour's key
N = "bb" * 32  # an honest neighbour
SMALL = AdmissionPolicy(max_vouched_per_neighbour=5, max_vouched_length=4, max_chain_length=6)


def test_a_neighbour_vouches_for_at_most_its_quota_and_the_rest_never_reaches_the_disk(tmp_path: Path) -> None:
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        result = store.merge(spam_entries(40, hops=2), now=NOW, vouched_by=M)
        assert len(store.chains()) == 5 and store.vouched(M) == 5
        # The rest is dropped, not held: an honest answer comes again at the next exchange.
        assert len(result.accepted) == 15 and not result.held and store.pending() == 0
        again = store.merge(spam_entries(40, hops=2, start=100), now=NOW, vouched_by=M)
        assert again.accepted == [] and len(store.chains()) == 5
        # Another neighbour has its own quota: the flooder cannot use it up.
        honest = make_chain("honest", hops=2)
        assert len(store.merge(honest.entries, now=NOW, vouched_by=N).accepted) == 3
        assert store.vouched_by("honest") == N
    assert len(list(tmp_path.glob("*.chain"))) == 6


def test_bare_announcements_are_never_vouched_for(tmp_path: Path) -> None:
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        result = store.merge([c.announcement for c in (spam_chain(i) for i in range(5))], now=NOW, vouched_by=M)
        assert result.accepted == [] and store.chains() == []
        # An announcement pending from the live flood, then its hop in an answer: a started chain.
        chain = spam_chain(9)
        assert store.merge([chain.announcement], now=NOW).held
        assert len(store.merge(list(chain.hops), now=NOW, vouched_by=M).accepted) == 2  # with its announcement
        assert store.chain(chain.auction) == chain


def test_vouching_is_remembered_across_a_restart_and_an_invite_makes_the_chain_ours(tmp_path: Path) -> None:
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        store.merge(spam_entries(3), now=NOW, vouched_by=M)
    assert sorted(json.loads((tmp_path / "vouched.json").read_text()).values()) == [M] * 3
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        assert store.vouched(M) == 3 and store.vouched_by("spam-t-1") == M
        store.admit("spam-t-1", now=NOW)  # its Invite reached us: we have a stake now
        assert store.vouched_by("spam-t-1") is None and store.vouched(M) == 2
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        assert store.vouched(M) == 2


def test_a_chain_merged_from_peers_has_a_bounded_length(tmp_path: Path) -> None:
    # Whoever holds a chain's last buyer key can extend it with throwaway hops for ever.
    long = spam_chain(0, hops=9)
    own = spam_chain(1, hops=9)
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        store.admit(long.auction, now=NOW)
        result = store.merge(long.entries, now=NOW)
        assert store.chain(long.auction).length == SMALL.max_chain_length
        assert {r.entry.position for r in result.rejected} >= {6, 7, 8, 9}
        store.merge(own.entries, now=NOW, vouched_by=M)  # on a neighbour's word: shorter still
        assert store.chain(own.auction).length == SMALL.max_vouched_length
        for entry in own.entries[SMALL.max_vouched_length:]:  # our own appends are not bounded
            assert store.append(entry)
        assert store.chain(own.auction).length == 10


def test_a_chain_held_on_a_neighbours_word_is_not_served_whole_but_a_copy_is_completed(tmp_path: Path) -> None:
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        store.merge(spam_chain(0, hops=2).entries, now=NOW, vouched_by=M)
        store.admit("ours", now=NOW)
        ours = make_chain("ours", hops=2)
        store.merge(ours.entries, now=NOW)
        lacking_all = store.answer_summaries(Summaries((), tuple(range(256)))).entries
        assert {e.auction for e in lacking_all} == {"spam-t-0", "ours"}
        assert {e.auction for e in servable(store, lacking_all, Summaries((), tuple(range(256))))} == {"ours"}
        # A neighbour that holds the announcement gets the rest of the chain, whoever vouched for it.
        held = Summaries((Summary("spam-t-0", 1, store.chain("spam-t-0").announcement.digest),))
        tail = store.answer_summaries(held).entries
        assert [e.position for e in servable(store, tail, held)] == [1, 2]


def test_a_hop_signed_by_the_flooder_itself_gives_it_no_more_quota(tmp_path: Path) -> None:
    # A "stake" the flooder signs for itself costs it nothing, so vouching counts chains, not keys.
    flooder = throwaway("flooder", 0)
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        chains = [spam_chain(i, hops=1, tag="own", buyer=flooder) for i in range(20)]
        assert all(isinstance(c.entries[1], SignedHop) and c.entries[1].body.buyer == pk(flooder) for c in chains)
        store.merge([e for c in chains for e in c.entries], now=NOW, vouched_by=pk(flooder))
        assert len(store.chains()) == SMALL.max_vouched_per_neighbour


def test_a_neighbour_vouches_at_a_bounded_rate(tmp_path: Path) -> None:
    # Each chain stored is a few fsyncs the node waits for: a burst, then vouch_rate a second.
    policy = AdmissionPolicy(vouch_rate=1.0, vouch_burst=3.0)
    with LedgerStore(tmp_path) as store:
        store.set_admission(policy)
        store.merge(spam_entries(10), now=NOW, vouched_by=M)
        assert store.vouched(M) == 3
        store.merge(spam_entries(10), now=NOW + 0.5, vouched_by=M)
        assert store.vouched(M) == 3
        store.merge(spam_entries(10), now=NOW + 2.5, vouched_by=M)  # 2.5 tokens: two more whole chains
        assert store.vouched(M) == 5
        assert len(store.merge(make_chain("honest", hops=1).entries, now=NOW + 2.5, vouched_by=N).accepted) == 2
