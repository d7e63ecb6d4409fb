"""The node shell's side of bid equivocation: signing Bids, checking them, passing receipts up, proofs.

:class:`BidGuard` is a collaborator of :class:`peer.sra.shell.SraShell` (one
per node).  What it does, in protocol order:

* signs every Bid this node sends (salt and signature over the commitment,
  :mod:`peer.sra.equivocation`), after sending the receipts of its subtree
  to the same parent (``BidReceipts``, same FIFO link, so they arrive first);
* checks every Bid it receives from an invitee it waits for: a Bid whose
  signature does not open to (auction, sender, us, amount) is refused, so an
  accepted Bid always leaves a receipt here;
* takes an invitee's ``BidReceipts`` only while it waits for that invitee's
  reply, verifies every signature before keeping any (a forged one is blamed on
  the link that brought it, and changes nothing), bounded per auction;
* on two conflicting receipts of one bidder: keeps the fraud proof on the
  ledger, floods it, logs ``fraud``, puts an abuse point on the culprit's
  link if it is a neighbour, and convicts it in the auction's machine.
  Proofs that arrive by gossip (``on_proofs``) convict it the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import trio

from peer.ledger import FraudProof, FraudProofs, StoreError, find_culprits
from peer.net.identity import Identity, verify
from peer.sra.equivocation import (
    BidReceipt,
    ReceiptBook,
    ReceiptError,
    bid_commitment,
    chunks,
    receipt_signed_bytes,
    salt_from,
    salt_message,
    unpack_receipts,
)
from peer.sra.instance import SraAuction
from peer.sra.messages import Bid, BidReceipts

if TYPE_CHECKING:
    from peer.sra.shell import SraShell


def sign_bid(identity: Identity, msg: Bid, to: str) -> Bid:
    """``msg`` with the bidder's salt and its signature over the commitment to (itself, ``to``, amount)."""
    salt = salt_from(identity.sign(salt_message(msg.auction)))
    commitment = bid_commitment(msg.auction, identity.public_hex, to, msg.amount, salt)
    signed = receipt_signed_bytes(msg.auction, identity.public_hex, commitment)
    return dataclasses.replace(msg, salt=salt, sig=identity.sign(signed))


def receipt_ok(receipt: BidReceipt) -> bool:
    return verify(bytes.fromhex(receipt.bidder), receipt.signed_bytes(), receipt.sig)


class BidGuard:
    """Bid signatures, receipts and equivocation proofs for every auction of one node."""

    def __init__(self, shell: SraShell) -> None:
        self.shell = shell
        self.node = shell.node

    @staticmethod
    def book(inst: SraAuction) -> ReceiptBook:
        if inst.receipts is None:
            inst.receipts = ReceiptBook(inst.key)
        return inst.receipts

    # ------------------------------------------------------------ sending

    def sign(self, msg: Bid, to: str) -> Bid:
        return sign_bid(self.node.identity, msg, to)

    def outgoing(self, inst: SraAuction) -> list[BidReceipts]:
        """The receipts of our subtree, for our parent, in frames that fit."""
        if inst.receipts is None:
            return []
        return [BidReceipts(auction=inst.key, receipts=c) for c in chunks(inst.receipts.to_forward())]

    # ------------------------------------------------------------ receiving

    async def check_bid(self, inst: SraAuction, peer: str, msg: Bid, now: float) -> str | None:
        """Why ``msg`` is refused, or None.  Keeps its receipt (and acts on a conflict) when accepted."""
        machine = inst.machine
        if not machine.awaiting_reply(peer) or peer in machine.convicted:
            return None  # the machine refuses it with the precise reason
        if not (isinstance(msg.salt, bytes) and len(msg.salt) == 32 and isinstance(msg.sig, bytes)):
            return "a Bid without its bidder's salt and signature"
        try:
            receipt = BidReceipt(auction=inst.key, bidder=peer, sig=msg.sig,
                                 commitment=bid_commitment(inst.key, peer, self.node.me, msg.amount, msg.salt))
        except (ReceiptError, OverflowError, TypeError) as exc:
            return f"malformed Bid: {exc}"
        if not receipt_ok(receipt):
            return "a Bid not signed by its bidder for this parent and amount"
        try:
            conflict = self.book(inst).add(receipt)
        except ReceiptError as exc:
            return str(exc)
        if conflict is not None:
            await self._proved(inst, *conflict, now=now)
        return None

    async def on_receipts(self, inst: SraAuction, peer: str, msg: BidReceipts, now: float) -> None:
        machine = inst.machine
        if not machine.awaiting_reply(peer):
            self.node.reject(peer, "bid receipts from a node whose stage-2 reply this node does not wait for")
            return
        try:
            receipts = unpack_receipts(inst.key, msg.receipts)
        except ReceiptError as exc:
            self.node.reject(peer, f"malformed bid receipts: {exc}")
            return
        book = self.book(inst)
        # Cheap checks before any signature (a dishonest child can mint receipts with throwaway
        # keys): room in the book, and receipts we already hold verbatim are not checked again.
        fresh = [r for r in receipts if book.kept.get(r.bidder) != r and r.bidder not in book.convicted]
        if len(book.kept) + len(fresh) > book.limit:
            self.node.reject(peer, f"more than {book.limit} bid receipts in one auction")
            return
        # Every signature first, so a batch with one forgery changes nothing.
        if not all(receipt_ok(r) for r in fresh):
            self.node.reject(peer, "a bid receipt not signed by its bidder")
            return
        for receipt in fresh:
            try:
                conflict = book.add(receipt)
            except ReceiptError as exc:
                self.node.reject(peer, str(exc))
                return
            if conflict is not None:
                await self._proved(inst, *conflict, now=now)

    # ------------------------------------------------------------ proofs

    async def _proved(self, inst: SraAuction, first: BidReceipt, second: BidReceipt, *, now: float) -> None:
        """We hold two conflicting receipts: keep and flood the proof, then convict."""
        proof = FraudProof(first, second)
        node = self.node
        try:
            await node.run_sync(node.store.add_fraud_proofs, [proof])
        except (StoreError, OSError) as exc:
            # The proof is self-verifying: it goes out even if our disk cannot keep it.
            node.emit("error", auction=inst.key, reason=f"cannot keep a fraud proof: {exc}")
        node.publish(FraudProofs((proof,)))  # before anything else we send: see docs/protocol.md
        await self.convict(inst, proof, now, relayed=False)

    async def on_proofs(self, proofs: Iterable[FraudProof]) -> None:
        """New proofs our ledger took from gossip: convict bid equivocators in live auctions."""
        for proof in proofs:
            if not isinstance(proof.first, BidReceipt):
                continue
            inst = self.node.instances.get(proof.auction)  # type: ignore[attr-defined]
            if isinstance(inst, SraAuction) and not inst.finished:
                await self.convict(inst, proof, trio.current_time(), relayed=True)

    async def convict(self, inst: SraAuction, proof: FraudProof, now: float, *, relayed: bool) -> None:
        node = self.node
        for culprit in sorted(find_culprits(proof.first, proof.second)):
            if culprit == node.me or culprit in inst.machine.convicted:
                continue
            book = self.book(inst)
            book.kept.pop(culprit, None)
            book.convicted.setdefault(culprit, (proof.first, proof.second))  # type: ignore[arg-type]
            fields: dict[str, Any] = {"relayed": True} if relayed else {}
            node.emit("fraud", auction=inst.key, position=proof.position, proof="bid", culprits=[node.n(culprit)],
                      culprit_key=culprit, **fields)
            node.note(f"{node.n(culprit)} signed two different bids in {inst.machine.item}: its bids are refused")
            if culprit in node.neighbours:
                node.reject(culprit, "signed two different stage-2 bids in one auction (fraud proof kept)")
            await self.shell.apply(inst, inst.machine.convict(culprit, now))
