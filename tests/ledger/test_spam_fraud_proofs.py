"""#16.1, the fraud-proof path: a fraud proof is self-verifying, so one about a throwaway chain
(its throwaway seller signed two announcements) is as valid as a real one.  Before, every node
kept every valid proof it heard in its fraud log, for good, whatever the auction, and any number
per auction.  Now a node keeps relayed proofs only for auctions it holds, a few per auction."""

from __future__ import annotations

from pathlib import Path

from peer.ledger.admission import AdmissionPolicy
from peer.ledger.records import FRAUD_FILE
from peer.ledger.store import LedgerStore

from ._spam import spam_chain, spam_proof

NOW = 1_700_000_000.0
POLICY = AdmissionPolicy(max_proofs_per_auction=2)


def test_proofs_about_auctions_we_do_not_hold_are_not_kept(tmp_path: Path) -> None:
    with LedgerStore(tmp_path) as store:
        store.set_admission(POLICY)
        assert store.add_fraud_proofs([spam_proof(i) for i in range(100)]) == []
        assert store.fraud_proofs() == []
    assert not (tmp_path / FRAUD_FILE).exists()


def test_a_few_proofs_per_auction_we_hold_are_kept(tmp_path: Path) -> None:
    chain = spam_chain(0, hops=1, tag="held")
    with LedgerStore(tmp_path) as store:
        store.set_admission(POLICY)
        store.admit(chain.auction, now=NOW)
        store.merge(chain.entries, now=NOW)
        proofs = [spam_proof(0, v, tag="held", auction=chain.auction) for v in range(10)]
        assert len(store.add_fraud_proofs(proofs)) == POLICY.max_proofs_per_auction
    with LedgerStore(tmp_path) as store:
        assert len(store.fraud_proofs()) == POLICY.max_proofs_per_auction


def test_without_a_policy_every_valid_proof_is_kept_as_before(tmp_path: Path) -> None:
    with LedgerStore(tmp_path) as store:
        assert len(store.add_fraud_proofs([spam_proof(i) for i in range(5)])) == 5
