"""Every message of the distributed auctioneer: frozen dataclasses with exact-integer fields.

Bids come from users (or a client acting for many); everything else travels
between the executing providers, except the receipts and outcome notices that
go back to whoever submitted bids.  The sender is always the authenticated
link peer, never a field, so no message can claim to be from someone else.
"""

from __future__ import annotations

from dataclasses import dataclass

from peer.auctioneer.bids import Equivocation, SignedBid


@dataclass(frozen=True, slots=True)
class BidBatch:
    """One or more signed bids (of one user, or of many users from one client)."""

    round: int
    bids: tuple[SignedBid, ...]


@dataclass(frozen=True, slots=True)
class BidReceipt:
    """The provider took ``accepted`` bids of the batch; ``rejected`` names the others and why."""

    round: int
    accepted: int
    rejected: tuple[tuple[bytes, str], ...]


@dataclass(frozen=True, slots=True)
class CloseBids:
    """Stop collecting bids now rather than at the deadline (only from a configured closer)."""

    round: int


@dataclass(frozen=True, slots=True)
class ViewDigest:
    """Bid agreement, step 1: the digest of the bids (and proven equivocators) this provider holds."""

    round: int
    digest: bytes
    count: int


@dataclass(frozen=True, slots=True)
class ViewChunk:
    """Bid agreement, slow path: part ``index`` of ``total`` of this provider's whole view."""

    round: int
    index: int
    total: int
    bids: tuple[SignedBid, ...]
    proofs: tuple[Equivocation, ...]


@dataclass(frozen=True, slots=True)
class VectorDigest:
    """Input validation: the digest of the agreed bid vector."""

    round: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class CoinCommit:
    round: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class CoinReveal:
    round: int
    share: bytes
    nonce: bytes


@dataclass(frozen=True, slots=True)
class TaskResult:
    """Data transfer: the result of ``task``, signed by its sender so a wrong one is evidence."""

    round: int
    task: str
    payload: bytes
    sig: bytes


@dataclass(frozen=True, slots=True)
class OutcomeSig:
    """The sender's signature on the digest of the outcome it computed."""

    round: int
    digest: bytes
    sig: bytes


@dataclass(frozen=True, slots=True)
class OutcomeNotice:
    """To bid submitters: the agreed outcome's digest and every executing provider's signature on it."""

    round: int
    digest: bytes
    signatures: tuple[tuple[bytes, bytes], ...]
    trades: int


@dataclass(frozen=True, slots=True)
class BidderOutcome:
    """To a submitter of a few bidders' bids: their part of the outcome whose digest is ``digest``.

    It cannot be checked against the digest without the whole allocation, so a
    user accepts it only when every executing provider sent the same one: a
    coalition of at most k < m providers cannot make all m say the same wrong thing.
    """

    round: int
    digest: bytes
    trades: tuple[tuple[bytes, bytes, int], ...]  # (user, provider, quantity)
    charges: tuple[tuple[bytes, int], ...]  # what each of its users pays, minor units
    credits: tuple[tuple[bytes, int], ...]  # what each of its providers receives


@dataclass(frozen=True, slots=True)
class AbortNotice:
    """To bid submitters: this provider output ⊥ for the round, and why."""

    round: int
    reason: str
    culprits: tuple[bytes, ...]


Message = (
    BidBatch | BidReceipt | CloseBids | ViewDigest | ViewChunk | VectorDigest | CoinCommit | CoinReveal
    | TaskResult | OutcomeSig | OutcomeNotice | BidderOutcome | AbortNotice
)
PROVIDER_MESSAGES = (ViewDigest, ViewChunk, VectorDigest, CoinCommit, CoinReveal, TaskResult, OutcomeSig)
