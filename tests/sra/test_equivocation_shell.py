"""The shell's side of #15.7 (BidGuard) over a stand-in node: what it refuses, what a conflict does.

A stand-in for the node services (a real ledger store, recorded sends,
publications and refusals) and a real machine: p, invited by s, waits for the
Bids of its invitees e and c.  No links and no clock: each call is one input.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import pytest

from peer.ledger import FraudProof, FraudProofs, LedgerStore
from peer.net.identity import Identity
from peer.sra.config import SraConfig
from peer.sra.equivocation import pack_receipts, unpack_receipts
from peer.sra.equivocation_shell import sign_bid
from peer.sra.instance import SraAuction
from peer.sra.ledger_entry import genesis_hash
from peer.sra.machine import NodeStage, SraNode
from peer.sra.messages import Bid, BidReceipts, Invite
from peer.sra.shell import SraShell
from tests.sra.test_equivocation import signed_bid

AUCTION = "shell/1"


def ident(name: str) -> Identity:
    return Identity.from_seed(hashlib.sha256(f"equivocation-shell/{name}".encode()).digest())


S, P, E, C, X = (ident(n) for n in "specx")


class StandIn:
    """What SraShell and BidGuard use of a node."""

    def __init__(self, root: Path) -> None:
        self.identity = P
        self.me = P.public_hex
        self.neighbours = sorted(i.public_hex for i in (S, E, C))
        self.store = LedgerStore.open_data_dir(root)
        self.config: Any = None
        self.sent: list[tuple[str, Any]] = []
        self.published: list[Any] = []
        self.refused: list[tuple[str, str]] = []
        self.events: list[dict[str, Any]] = []
        self.instances: dict[str, SraAuction] = {}
        self.messages_out = 0
        self.store_failure = None

    def send(self, to: str, msg: Any) -> None:
        self.sent.append((to, msg))

    def publish(self, payload: Any) -> None:
        self.published.append(payload)

    def reject(self, peer: str, reason: str, **_: Any) -> None:
        self.refused.append((peer, reason))

    def emit(self, kind: str, **fields: Any) -> None:
        self.events.append({"kind": kind, **fields})

    def note(self, line: str) -> None:
        pass

    def n(self, key: str) -> str:
        return {i.public_hex: name for name, i in zip("specx", (S, P, E, C, X))}.get(key, key[:8])

    async def run_sync(self, fn: Any, *args: Any) -> Any:
        return fn(*args)


@pytest.fixture
def setup(tmp_path: Path):
    node = StandIn(tmp_path)
    shell = SraShell(node)  # type: ignore[arg-type]
    machine = SraNode(P.public_hex, node.neighbours, 5, auction=AUCTION, seed=1, seller=S.public_hex,
                      config=SraConfig(gather_window=0))
    machine.receive(S.public_hex, Invite(auction=AUCTION, item="item", seller=S.public_hex,
                                         genesis=genesis_hash(AUCTION, "item", S.public_hex)), 0.0)
    assert machine.awaiting_reply(E.public_hex) and machine.awaiting_reply(C.public_hex)
    inst = SraAuction(machine=machine, origin=S.public_hex, created=0.0, stall_after=60.0)
    node.instances[AUCTION] = inst
    yield node, shell, inst
    node.store.close()


def bid_from(bidder: Identity, parent: Identity, amount: int) -> Bid:
    """The Bid ``bidder``'s shell would send to ``parent``."""
    return sign_bid(bidder, Bid(auction=AUCTION, amount=amount), parent.public_hex)


async def test_a_signed_bid_is_taken_and_kept_as_a_receipt_for_the_parent(setup) -> None:
    node, shell, inst = setup
    await shell.receive(inst, E.public_hex, bid_from(E, P, 9), 1.0)
    assert node.refused == [] and inst.machine.children == {E.public_hex: 9}
    assert [r.bidder for r in inst.receipts.to_forward()] == [E.public_hex]
    # Our own Bid goes to s after the receipts of our subtree, and is signed for s.
    await shell.receive(inst, C.public_hex, bid_from(C, P, 4), 1.0)
    kinds = [(to, type(m).__name__) for to, m in node.sent]
    assert kinds == [(S.public_hex, "BidReceipts"), (S.public_hex, "Bid")]
    sent_bid = node.sent[1][1]
    assert sent_bid.amount == 9 and len(sent_bid.sig) == 64 and sent_bid == bid_from(P, S, 9)


@pytest.mark.parametrize("bad", ["unsigned", "for another parent", "another amount"])
async def test_a_bid_that_does_not_open_to_its_sender_us_and_its_amount_is_refused(setup, bad) -> None:
    node, shell, inst = setup
    msg = {"unsigned": Bid(auction=AUCTION, amount=9),
           "for another parent": bid_from(E, X, 9),
           "another amount": dataclasses.replace(bid_from(E, P, 9), amount=10)}[bad]
    await shell.receive(inst, E.public_hex, msg, 1.0)
    assert len(node.refused) == 1 and node.refused[0][0] == E.public_hex
    assert inst.machine.awaiting_reply(E.public_hex) and not inst.machine.children  # nothing changed
    assert inst.receipts is None or not inst.receipts.kept


async def test_receipts_with_one_forgery_change_nothing_and_blame_the_link(setup) -> None:
    node, shell, inst = setup
    good = signed_bid(X, E.public_hex, 3, auction=AUCTION)
    forged = dataclasses.replace(signed_bid(C, E.public_hex, 3, auction=AUCTION), sig=X.sign(b"x"))
    await shell.receive(inst, E.public_hex, BidReceipts(auction=AUCTION, receipts=pack_receipts([good, forged])), 1.0)
    assert node.refused == [(E.public_hex, "a bid receipt not signed by its bidder")]
    assert inst.receipts is None or not inst.receipts.kept
    # Receipts from a neighbour whose reply we do not wait for (s is our inviter) are refused too.
    await shell.receive(inst, S.public_hex, BidReceipts(auction=AUCTION, receipts=pack_receipts([good])), 1.0)
    assert node.refused[-1][0] == S.public_hex and (inst.receipts is None or not inst.receipts.kept)


async def test_a_conflict_keeps_floods_and_convicts_before_anything_else_is_sent(setup) -> None:
    node, shell, inst = setup
    # c passes up a receipt of e's Bid to c (e reported to c as well), then e Bids to us.
    to_c = signed_bid(E, C.public_hex, 0, auction=AUCTION)
    await shell.receive(inst, C.public_hex, BidReceipts(auction=AUCTION, receipts=pack_receipts([to_c])), 1.0)
    await shell.receive(inst, E.public_hex, bid_from(E, P, 9), 1.5)
    (proof,) = node.store.fraud_proofs()
    assert isinstance(node.published[0], FraudProofs) and node.published[0].proofs == (proof,)
    assert inst.machine.convicted == {E.public_hex} and E.public_hex not in inst.machine.children
    assert node.refused == [(E.public_hex, "signed two different stage-2 bids in one auction (fraud proof kept)")]
    assert [e for e in node.events if e["kind"] == "fraud"][0]["culprit_key"] == E.public_hex
    assert node.sent == []  # c's Bid is still awaited: nothing went out before the proof
    await shell.receive(inst, C.public_hex, bid_from(C, P, 4), 2.0)
    assert inst.machine.stage is NodeStage.REPORTED and node.sent[-1][1].amount == 5  # e's 9 never counted
    forwarded = [r.bidder for to, m in node.sent if isinstance(m, BidReceipts) for r in unpack_receipts(AUCTION, m.receipts)]
    assert E.public_hex not in forwarded and C.public_hex in forwarded


async def test_a_relayed_proof_convicts_in_a_live_auction(setup) -> None:
    node, shell, inst = setup
    await shell.receive(inst, E.public_hex, bid_from(E, P, 9), 1.0)
    proof = FraudProof(signed_bid(E, C.public_hex, 1, auction=AUCTION), signed_bid(E, X.public_hex, 2, auction=AUCTION))
    await shell.bids.on_proofs([proof])
    assert inst.machine.convicted == {E.public_hex} and not inst.machine.children
    assert node.refused[-1][0] == E.public_hex
    await shell.receive(inst, E.public_hex, bid_from(E, P, 9), 2.0)  # anything it bids later is refused
    assert node.refused[-1] == (E.public_hex, "proved to have signed two different stage-2 bids in this auction: "
                                              "its bids are refused")


async def test_receipts_already_held_are_not_checked_again_and_the_book_is_bounded(setup, monkeypatch) -> None:
    node, shell, inst = setup
    frame = BidReceipts(auction=AUCTION, receipts=pack_receipts([signed_bid(X, E.public_hex, 3, auction=AUCTION)]))
    await shell.receive(inst, E.public_hex, frame, 1.0)
    checked = []
    monkeypatch.setattr("peer.sra.equivocation_shell.receipt_ok", lambda r: checked.append(r) or True)
    await shell.receive(inst, E.public_hex, frame, 1.1)  # the same frame again: no signature to check
    assert checked == [] and node.refused == []
    inst.receipts.limit = 1
    other = BidReceipts(auction=AUCTION, receipts=pack_receipts([signed_bid(C, E.public_hex, 3, auction=AUCTION)]))
    await shell.receive(inst, E.public_hex, other, 1.2)
    assert checked == [] and node.refused == [(E.public_hex, "more than 1 bid receipts in one auction")]
    assert list(inst.receipts.kept) == [X.public_hex]
