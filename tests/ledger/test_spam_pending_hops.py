"""#16.1, hop entries that arrive without an admitted announcement: they wait in the bounded
pending area (never on disk), and a forged hop that arrives first cannot take the place of the
real one: before, the first copy of a position won, so the real hop was dropped and the chain
admitted later lacked it until anti-entropy filled it in."""

from __future__ import annotations

from pathlib import Path

from peer.ledger.admission import AdmissionPolicy
from peer.ledger.entries import SignedHop, sign_hop
from peer.ledger.store import LedgerStore

from ._helpers import make_chain
from ._spam import pk, spam_chain, throwaway

NOW = 1_700_000_000.0
SMALL = AdmissionPolicy(max_pending=50, max_pending_per_auction=8)


def test_hops_without_an_announcement_stay_bounded_and_off_the_disk(tmp_path: Path) -> None:
    hops = [e for i in range(200) for e in spam_chain(i, hops=3, tag="hop").entries[1:]]
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        store.merge(hops, now=NOW)
        assert store.pending() <= SMALL.max_pending and store.chains() == []
    assert list(tmp_path.glob("*.chain")) == []


def forged_hop(real: SignedHop) -> SignedHop:
    """Same position and prev, another buyer: signed by throwaway keys, not the real seller."""
    key = throwaway("forger", 0)
    body = type(real.body)(auction=real.body.auction, hop=real.body.hop, seller=real.body.seller,
                           buyer=pk(key), price=1, prev=real.body.prev)
    return SignedHop(body=body, seller_sig=sign_hop(key, body), buyer_sig=sign_hop(key, body))


def test_a_forged_hop_cannot_squat_the_position_of_the_real_one(tmp_path: Path) -> None:
    chain = make_chain("real", hops=2)
    announcement, hop1, hop2 = chain.entries
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        store.merge([announcement], now=NOW)
        forged = store.merge([forged_hop(hop1)], now=NOW)
        assert forged.rejected and not forged.held  # checked against the announcement held
        store.merge([hop1, hop2], now=NOW)
        store.admit("real", now=NOW)
        assert store.chain("real") == chain


def test_a_real_hop_replaces_a_forged_one_that_came_before_its_announcement(tmp_path: Path) -> None:
    chain = make_chain("real", hops=1)
    announcement, hop1 = chain.entries
    with LedgerStore(tmp_path) as store:
        store.set_admission(SMALL)
        assert store.merge([forged_hop(hop1)], now=NOW).held  # nothing to check it against yet
        store.merge([announcement, hop1], now=NOW)
        store.admit("real", now=NOW)
        assert store.chain("real") == chain
