"""A bid submitter: the sans-I/O machine of one user (or one client acting for many users).

It sends the signed bids to every executing provider, resends to any provider
that has not acknowledged them until ``give_up_at``, and then waits for the
outcome notices: the round is settled for it when every provider reported the
same outcome digest, each notice carrying a valid signature from every
executing provider.
"""

from __future__ import annotations

from peer.auctioneer import messages as m
from peer.auctioneer.agreement import CHUNK_BIDS
from peer.auctioneer.bids import SignedBid
from peer.auctioneer.effects import Effect, Rejected, Send, Wake
from peer.auctioneer.signing import signature_ok


class BidSubmitter:
    def __init__(
        self, round_no: int, bids: tuple[SignedBid, ...], providers: tuple[bytes, ...], *,
        resend_every: float = 1.0, give_up_at: float = float("inf"), batch: int = CHUNK_BIDS,
    ) -> None:
        if not providers:
            raise ValueError("no provider to send bids to")
        self.round = round_no
        self.providers = providers
        self.batches = [
            m.BidBatch(round_no, bids[i : i + batch]) for i in range(0, len(bids), batch)
        ] or [m.BidBatch(round_no, ())]
        self.resend_every, self.give_up_at = resend_every, give_up_at
        self.receipts: dict[bytes, int] = {}
        self.rejected: dict[bytes, list[tuple[bytes, str]]] = {}
        self.notices: dict[bytes, m.OutcomeNotice] = {}
        self.aborts: dict[bytes, m.AbortNotice] = {}
        self.parts: dict[bytes, m.BidderOutcome] = {}  # each provider's account of our bidders' part

    def _send_all(self, to: bytes) -> list[Effect]:
        return [Send(to, batch) for batch in self.batches]

    def start(self, now: float) -> list[Effect]:
        out: list[Effect] = [e for p in self.providers for e in self._send_all(p)]
        return out + [Wake(now + self.resend_every)]

    def on_tick(self, now: float) -> list[Effect]:
        if now >= self.give_up_at:
            return []
        out: list[Effect] = []
        for p in self.providers:
            if self.receipts.get(p, 0) < len(self.batches):
                self.receipts[p] = 0  # receipts of a resent set are counted afresh
                out += self._send_all(p)
        return out + ([Wake(now + self.resend_every)] if out else [])

    def on_message(self, sender: bytes, msg: object, now: float) -> list[Effect]:
        if sender not in self.providers:
            return [Rejected(sender, "not an executing provider")]
        if getattr(msg, "round", None) != self.round:
            return [Rejected(sender, "not a message of this round")]
        if isinstance(msg, m.BidReceipt):
            self.receipts[sender] = self.receipts.get(sender, 0) + 1
            if msg.rejected:
                self.rejected.setdefault(sender, []).extend(msg.rejected)
            return []
        if isinstance(msg, m.OutcomeNotice):
            signers = tuple(p for p, _ in msg.signatures)
            if signers != tuple(sorted(self.providers)):
                return [Rejected(sender, "outcome not signed by exactly the executing providers")]
            if not all(signature_ok(p, msg.digest, s) for p, s in msg.signatures):
                return [Rejected(sender, "an outcome signature does not verify")]
            self.notices[sender] = msg
            return []
        if isinstance(msg, m.BidderOutcome):
            self.parts[sender] = msg
            return []
        if isinstance(msg, m.AbortNotice):
            self.aborts[sender] = msg
            return []
        return [Rejected(sender, f"unexpected {type(msg).__name__}")]

    def settled(self) -> bytes | None:
        """The outcome digest once every provider sent the same fully signed outcome."""
        if len(self.notices) != len(self.providers):
            return None
        digests = {n.digest for n in self.notices.values()}
        return digests.pop() if len(digests) == 1 else None

    def part(self) -> m.BidderOutcome | None:
        """Our bidders' part of the outcome, once every provider sent the same one for the settled digest."""
        digest = self.settled()
        if digest is None or len(self.parts) != len(self.providers):
            return None
        parts = set(self.parts.values())
        if len(parts) != 1:
            return None
        part = parts.pop()
        return part if part.digest == digest else None
