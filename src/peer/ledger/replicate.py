"""Replication logic, pure: summaries, what to send a peer, and merging what a peer sent.

The transport is gossip (another module); this one only decides.  Chains are
append-only and short (one entry per resale hop), so the exchange is
SSB-like: each side sends a ``Summary`` per auction, and each side answers with
the entries after the common prefix.  When the heads disagree the prefix is
unknown from a summary alone, so the whole chain goes: a few hundred bytes per
hop, and it lets the receiver find the exact position of a fork and keep the
proof.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from peer.ledger.codec import Summary
from peer.ledger.entries import (
    Announcement,
    Chain,
    Entry,
    FraudProof,
    InvalidEntry,
    SignedHop,
    find_culprits,
    verify_announcement,
    verify_hop,
)


def summarize(chain: Chain) -> Summary:
    return Summary(chain.auction, chain.length, chain.head.digest)


def entries_to_send(chain: Chain, peer: Summary | None) -> list[Entry]:
    """What to send a peer whose summary of this auction is ``peer`` (None: it has nothing)."""
    if peer is None:
        return list(chain.entries)
    if peer.length > chain.length:
        return []  # it is ahead; its own answer to our summary brings us up to date
    theirs = chain.at(peer.length - 1)
    if theirs is not None and theirs.digest == peer.head:
        return list(chain.entries[peer.length:])
    return list(chain.entries)  # diverged somewhere: let the receiver locate the fork


def plan_sends(chains: Iterable[Chain], peer_summaries: Iterable[Summary]) -> list[Entry]:
    """Entries for every auction, against a peer's full set of summaries."""
    known = {s.auction: s for s in peer_summaries}
    out: list[Entry] = []
    for chain in sorted(chains, key=lambda c: c.auction):
        out.extend(entries_to_send(chain, known.get(chain.auction)))
    return out


@dataclass(frozen=True, slots=True)
class Rejection:
    entry: Entry
    reason: str


@dataclass(slots=True)
class MergeResult:
    """``accepted`` in append order; ``chains`` is the state after accepting them."""

    accepted: list[Entry] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    fraud_proofs: list[FraudProof] = field(default_factory=list)
    duplicates: int = 0
    chains: dict[str, Chain] = field(default_factory=dict)
    held: list[Entry] = field(default_factory=list)  # kept pending by the store's admission policy


def _conflict(local: Entry, remote: Entry, result: MergeResult, seen: set[object]) -> None:
    """``remote`` differs from our entry at the same position: a fraud proof, or a rejection."""
    if find_culprits(local, remote):
        proof = FraudProof(local, remote)
        if proof.key not in seen:
            seen.add(proof.key)
            result.fraud_proofs.append(proof)
        return
    who = "seller" if isinstance(local, Announcement) else "seller or buyer"
    result.rejected.append(Rejection(
        remote, f"conflicts with our entry at position {local.position} and carries no valid "
                f"signature of its {who}: not a fraud proof, just a bad entry"))


def merge(
    chains: Mapping[str, Chain], remote: Iterable[Entry], *, broken: Collection[str] = (),
) -> MergeResult:
    """Decide, without touching ``chains``, what of ``remote`` extends our chains.

    Entries are taken in (auction, position) order, each checked against the
    chain as extended by those accepted before it.  An entry that differs from
    ours at a position we already hold is never applied: if some party signed
    both versions the pair becomes a fraud proof, else it is rejected.
    ``broken`` names auctions whose local files are damaged: nothing is merged
    into them until an operator looks.
    """
    result = MergeResult(chains=dict(chains))
    state = result.chains
    seen: set[object] = set()
    for entry in sorted(remote, key=lambda e: (e.auction, e.position)):
        if entry.auction in broken:
            result.rejected.append(Rejection(entry, "our copy of this auction's chain is damaged"))
            continue
        chain = state.get(entry.auction)
        if isinstance(entry, Announcement):
            if chain is None:
                try:
                    verify_announcement(entry)
                except InvalidEntry as exc:
                    result.rejected.append(Rejection(entry, str(exc)))
                    continue
                state[entry.auction] = Chain(entry)
                result.accepted.append(entry)
            elif chain.announcement.digest == entry.digest:
                result.duplicates += 1
            elif chain.announcement.seller != entry.seller:
                result.rejected.append(Rejection(entry, "auction id already announced by another seller"))
            else:
                _conflict(chain.announcement, entry, result, seen)
            continue
        assert isinstance(entry, SignedHop)
        if chain is None:
            result.rejected.append(Rejection(entry, "unknown auction: no announcement for it"))
            continue
        local = chain.at(entry.position)
        if local is not None:
            if local.digest == entry.digest:
                result.duplicates += 1
            else:
                _conflict(local, entry, result, seen)
        elif entry.position > chain.length:
            result.rejected.append(Rejection(
                entry, f"gap: our chain ends at hop {chain.length - 1}, got hop {entry.position}"))
        else:
            try:
                verify_hop(chain.head, entry)
            except InvalidEntry as exc:
                result.rejected.append(Rejection(entry, str(exc)))
                continue
            state[entry.auction] = chain.appended(entry)
            result.accepted.append(entry)
    return result
