"""Bid agreement on signed bids (Property 1), and the agreed bid vector.

Each provider holds a :class:`BidView`: the validly signed bids it received,
at most one per bidder, plus the bidders it has *proof* equivocated (two
different signed bids for the round), who get the neutral bid: excluded.

Agreement: every provider sends the digest of its view to every other.  If all
digests equal its own, its view is the agreed vector (the fast path, one small
message per pair).  Otherwise it sends its whole view to everyone (once) and
waits for everyone's whole view, merging each into its own: the union of all
signed bids, where a bidder with two different bids anywhere in the union is
excluded with the proof.  Receiving a whole view also triggers sending one's
own, so once one honest provider takes the slow path every provider does.
The union is order-independent, so providers that see the same views output
the same vector; those that see different ones are stopped by input
validation.  Why this meets Property 1 and k-resilience is in docs/auctioneer.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from peer.auctioneer.bids import Equivocation, SignedBid, bid_problem

_VIEW = b"peer/auctioneer/v1/view"
_VECTOR = b"peer/auctioneer/v1/vector"
CHUNK_BIDS = 300  # ~40 KiB of bids per chunk: fits one 64 KiB link frame with room to spare


@dataclass(frozen=True)
class BidVector:
    """The agreed input of the allocator: one bid per included bidder, sorted; excluded bidders, sorted."""

    round: int
    bids: tuple[SignedBid, ...]
    excluded: tuple[bytes, ...]

    def digest(self) -> bytes:
        return self._digest

    @cached_property
    def _digest(self) -> bytes:  # asked for at validation, signing and recording: hashed once
        # One update of the joined records hashes the same bytes as one update per record, faster.
        records = [b"\x00" + bid.digest() for bid in self.bids] + [b"\x01" + bidder for bidder in self.excluded]
        return hashlib.sha256(_VECTOR + self.round.to_bytes(8, "big") + b"".join(records)).digest()


class BidView:
    """What one provider holds.  ``classify`` never mutates; ``add``/``add_proof`` only after checks."""

    def __init__(self, round_no: int) -> None:
        self.round = round_no
        self.bids: dict[bytes, SignedBid] = {}
        self.proofs: dict[bytes, Equivocation] = {}
        self._digest: bytes | None = None  # cached; every mutation clears it

    def classify(self, bid: SignedBid) -> str:
        """``"same"``, ``"excluded"``, ``"conflict"`` (a second, different bid) or ``"new"``."""
        if bid.bidder in self.proofs:
            return "excluded"
        held = self.bids.get(bid.bidder)
        if held is None:
            return "new"
        return "same" if held.digest() == bid.digest() else "conflict"

    def add(self, bid: SignedBid, kind: str | None = None) -> Equivocation | None:
        """Add a bid whose signature was checked.  Returns the proof if it convicts its bidder.

        ``kind``: what ``classify(bid)`` just said, if the caller asked (each bid is classified once).
        """
        if kind is None:
            kind = self.classify(bid)
        if kind in ("new", "conflict"):
            self._digest = None
        if kind == "new":
            self.bids[bid.bidder] = bid
        elif kind == "conflict":
            proof = Equivocation.of(self.bids.pop(bid.bidder), bid)
            self.proofs[bid.bidder] = proof
            return proof
        return None

    def add_proof(self, proof: Equivocation) -> None:
        """Add a proof that was checked (``proof.problem(round) is None``)."""
        self._digest = None
        self.bids.pop(proof.bidder, None)
        self.proofs.setdefault(proof.bidder, proof)

    def digest(self) -> bytes:
        """Depends only on which bid each bidder has and who is excluded, not on which proof convicted them."""
        if self._digest is not None:
            return self._digest
        bids, proofs = self.bids, self.proofs
        records = [
            b"\x01" + bidder if bidder in proofs else b"\x00" + bids[bidder].digest()
            for bidder in sorted(bids.keys() | proofs.keys())
        ]
        self._digest = hashlib.sha256(_VIEW + self.round.to_bytes(8, "big") + b"".join(records)).digest()
        return self._digest

    def vector(self) -> BidVector:
        return BidVector(
            self.round,
            tuple(self.bids[b] for b in sorted(self.bids)),
            tuple(sorted(self.proofs)),
        )

    def chunks(self) -> list[tuple[tuple[SignedBid, ...], tuple[Equivocation, ...]]]:
        """The whole view in pieces that each fit a frame (proofs count as two bids)."""
        bids = [self.bids[b] for b in sorted(self.bids)]
        proofs = [self.proofs[b] for b in sorted(self.proofs)]
        out: list[tuple[tuple[SignedBid, ...], tuple[Equivocation, ...]]] = []
        for start in range(0, len(proofs), CHUNK_BIDS // 2):
            out.append(((), tuple(proofs[start : start + CHUNK_BIDS // 2])))
        for start in range(0, len(bids), CHUNK_BIDS):
            out.append((tuple(bids[start : start + CHUNK_BIDS]), ()))
        return out or [((), ())]


def check_foreign(view: BidView, bids: tuple[SignedBid, ...], proofs: tuple[Equivocation, ...]) -> str | None:
    """Why a chunk of another provider's view is invalid, or ``None``.  Verifies only what ``view`` lacks."""
    for proof in proofs:
        if proof.bidder in view.proofs:
            continue
        problem = proof.problem(view.round)
        if problem is not None:
            return f"bad equivocation proof: {problem}"
    seen: set[bytes] = set()
    for bid in bids:
        if bid.bidder in seen:
            return "two bids of one bidder in one view"
        seen.add(bid.bidder)
        if view.classify(bid) in ("same", "excluded"):
            continue  # already held or already convicted: nothing new to verify
        problem = bid_problem(bid, view.round)
        if problem is not None:
            return f"bid of {bid.bidder.hex()[:12]}: {problem}"
    return None


def merge(view: BidView, bids: tuple[SignedBid, ...], proofs: tuple[Equivocation, ...]) -> list[Equivocation]:
    """Merge a chunk that passed :func:`check_foreign`; returns the equivocations it revealed."""
    for proof in proofs:
        view.add_proof(proof)
    found = []
    for bid in bids:
        proof = view.add(bid)
        if proof is not None:
            found.append(proof)
    return found
