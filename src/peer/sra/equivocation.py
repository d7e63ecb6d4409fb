"""Stage-2 bid equivocation made provable: signed bid commitments, receipts and their book.

Why.  An honest node reports its stage-2 Bid to exactly one inviter, its
parent.  A node that reports to two inviters (Bid(100) to one, Bid(1) to the
other, each claiming the receiver as parent) sits in both subtrees and can
tell each what suits it in stage 3 (docs/adversaries.md, ``equivocate``).
Link frames are signed per hop, which convinces the receiver and nobody
else; a proof must convince a third party.  So every Bid carries the
bidder's own signature, and the signed statement binds the receiver:

* ``commitment = H(domain, auction, bidder, parent, amount, salt)``: the
  parent is the receiver, so one signed Bid cannot be shown to two inviters;
  the salt (the hash of the bidder's deterministic signature over the auction
  id, so secret until revealed and one per auction) hides parent and amount
  from whoever sees only the commitment;
* the bidder signs ``(domain, auction, bidder, commitment)``.

A :class:`BidReceipt` is that signed commitment without its opening: what the
parent keeps and passes up the tree.  An honest node signs one commitment per
auction, so two receipts of one bidder for one auction with different
commitments prove that it reported twice: anyone checks the two signatures
and nothing else (:func:`peer.ledger.entries.find_culprits`).  The pair is a
ledger :class:`~peer.ledger.entries.FraudProof` like a fork, stored, flooded
and reported the same way; its position is :data:`BID_POSITION` (no chain
position: a bid is not an entry).

Detection (docs/protocol.md, "Bid equivocation").  Each node passes the
receipts of its whole subtree to its parent (``BidReceipts`` frames, just
before its Bid, on the same FIFO link); any honest node that gets two
conflicting receipts, at the latest the seller, holds the proof before stage
3 begins.  :class:`ReceiptBook` is that node's side, pure: fed receipts whose
signatures the shell verified, it keeps one per bidder and returns each
conflict once.

This module is pure (hashlib only); signing and verifying are the shell's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

DOMAIN_COMMITMENT = b"peer/sra/bid-commitment/v1"
DOMAIN_BID = b"peer/sra/bid/v1"
DOMAIN_SALT = b"peer/sra/bid-salt/v1"
#: The ``position`` of a bid receipt: not a chain position (hops are >= 1, the announcement 0).
BID_POSITION = -1
KEY_BYTES = 32
SALT_BYTES = 32
SIG_BYTES = 64
RECEIPT_BYTES = KEY_BYTES + 32 + SIG_BYTES  # bidder, commitment, signature: 128 bytes packed
#: Receipts per BidReceipts frame: 40 KiB, well inside a 64 KiB frame with its envelope.
RECEIPTS_PER_MESSAGE = 320
#: Receipts one node keeps per auction (a dishonest child can mint receipts with throwaway keys).
MAX_RECEIPTS = 65_536


def _lp(raw: bytes) -> bytes:
    return len(raw).to_bytes(4, "big") + raw


def salt_message(auction: str) -> bytes:
    """What a bidder signs to derive its salt (Ed25519 is deterministic: one salt per auction)."""
    return _lp(DOMAIN_SALT) + _lp(auction.encode())


def salt_from(signature: bytes) -> bytes:
    return hashlib.sha256(DOMAIN_SALT + signature).digest()


def bid_commitment(auction: str, bidder: str, parent: str, amount: int, salt: bytes) -> str:
    """The commitment (hex) to a stage-2 Bid of ``bidder`` (a key in hex) to ``parent``."""
    body = (_lp(DOMAIN_COMMITMENT) + _lp(auction.encode()) + _lp(bidder.encode()) + _lp(parent.encode())
            + amount.to_bytes(16, "big") + _lp(salt))
    return hashlib.sha256(body).hexdigest()


def receipt_signed_bytes(auction: str, bidder: str, commitment: str) -> bytes:
    """What the bidder signs: domain-separated from every other signature in the project."""
    return _lp(DOMAIN_BID) + _lp(auction.encode()) + bytes.fromhex(bidder) + bytes.fromhex(commitment)


def _is_hex32(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 64 or value != value.lower():
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


class ReceiptError(ValueError):
    """A receipt or a packed batch that is malformed (the sender's fault)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BidReceipt:
    """A bidder's signed commitment to one stage-2 Bid in ``auction`` (the opening stays with its parent)."""

    auction: str
    bidder: str  # public key, hex
    commitment: str  # sha256, hex
    sig: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.auction, str) or not 1 <= len(self.auction.encode(errors="replace")) <= 256:
            raise ReceiptError("a receipt's auction must be 1..256 bytes")
        if not (_is_hex32(self.bidder) and _is_hex32(self.commitment)):
            raise ReceiptError("a receipt's bidder and commitment are 64 lowercase hex chars")
        if not isinstance(self.sig, bytes) or len(self.sig) != SIG_BYTES:
            raise ReceiptError(f"a receipt's signature is {SIG_BYTES} bytes")

    @property
    def position(self) -> int:
        return BID_POSITION

    def signed_bytes(self) -> bytes:
        return receipt_signed_bytes(self.auction, self.bidder, self.commitment)

    @property
    def digest(self) -> str:
        """The statement's identity: two signatures over one commitment are one bid."""
        return hashlib.sha256(self.signed_bytes()).hexdigest()

    hash = digest  # what ledger views print for an entry


def pack_receipts(receipts: Iterable[BidReceipt]) -> bytes:
    """Receipts of one auction as one flat byte string (link messages are flat maps)."""
    return b"".join(bytes.fromhex(r.bidder) + bytes.fromhex(r.commitment) + r.sig for r in receipts)


def unpack_receipts(auction: str, data: object) -> list[BidReceipt]:
    """The inverse of :func:`pack_receipts`; ``ReceiptError`` on anything malformed."""
    if not isinstance(data, bytes) or len(data) % RECEIPT_BYTES or len(data) > RECEIPTS_PER_MESSAGE * RECEIPT_BYTES:
        raise ReceiptError("packed receipts must be a whole number of 128-byte receipts, at most "
                           f"{RECEIPTS_PER_MESSAGE}")
    out = []
    for at in range(0, len(data), RECEIPT_BYTES):
        raw = data[at : at + RECEIPT_BYTES]
        out.append(BidReceipt(auction=auction, bidder=raw[:32].hex(), commitment=raw[32:64].hex(), sig=raw[64:]))
    return out


def chunks(receipts: list[BidReceipt]) -> list[bytes]:
    """Packed batches that each fit one BidReceipts frame."""
    return [pack_receipts(receipts[i : i + RECEIPTS_PER_MESSAGE]) for i in range(0, len(receipts), RECEIPTS_PER_MESSAGE)]


class BookFull(ReceiptError):
    """More receipts than one node keeps for one auction."""


class ReceiptBook:
    """One node's receipts of one auction: one per bidder, and the bidders proved to equivocate.

    Every receipt fed to :meth:`add` must have a verified signature (the shell
    checks it first, so a forged one is blamed on the link that brought it).
    """

    def __init__(self, auction: str, limit: int = MAX_RECEIPTS) -> None:
        self.auction = auction
        self.limit = limit
        self.kept: dict[str, BidReceipt] = {}  # bidder -> its one receipt
        self.convicted: dict[str, tuple[BidReceipt, BidReceipt]] = {}  # bidder -> the conflicting pair

    def add(self, receipt: BidReceipt) -> tuple[BidReceipt, BidReceipt] | None:
        """Keep ``receipt``; the (kept, new) pair if it conflicts with the one kept for its bidder.

        Raises:
            ReceiptError: another auction's receipt; BookFull past ``limit`` bidders.
        """
        if receipt.auction != self.auction:
            raise ReceiptError(f"a receipt of auction {receipt.auction!r} in {self.auction!r}")
        if receipt.bidder in self.convicted:
            return None  # already proved; a third version adds nothing
        held = self.kept.get(receipt.bidder)
        if held is None:
            if len(self.kept) >= self.limit:
                raise BookFull(f"more than {self.limit} bid receipts in one auction")
            self.kept[receipt.bidder] = receipt
            return None
        if held.commitment == receipt.commitment:
            return None  # the same bid, relayed along another path
        del self.kept[receipt.bidder]
        self.convicted[receipt.bidder] = (held, receipt)
        return held, receipt

    def to_forward(self) -> list[BidReceipt]:
        """What this node passes to its parent: one receipt per bidder not yet proved (proofs flood)."""
        return [self.kept[b] for b in sorted(self.kept)]
