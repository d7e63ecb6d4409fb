"""The node's own ledger writes and merges (a collaborator :class:`peer.node.node.Node` calls).

Persisting our own entries, merging what gossip brings, and what the node
does when the ledger cannot be written (issue #15.4): it says why once,
declines to take part until a probe finds the data directory writable again,
and then reopens the ledger (a failed write poisons the open store).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from peer.ledger import (
    Announcement,
    DecodeError,
    Digests,
    Entries,
    FraudProofs,
    InvalidEntry,
    Summaries,
    decode_payload,
    find_culprits,
)
from peer.ledger.admission import Buckets
from peer.ledger.store import FraudDetected, IntegrityError, LedgerStore, StoreError
from peer.net.codec import GossipEnvelope
from peer.net.identity import short_name
from peer.sra.ids import squatting
from peer.sra.instance import SraAuction

if TYPE_CHECKING:
    from peer.node.node import Node

PROBE_INTERVAL = 5.0  # seconds between two checks whether a failed ledger is writable again
LEDGER_TOPIC = "ledger"  # the flooded ledger topic (peer.node.node.LEDGER_TOPIC)
# Auctions new to this node that one neighbour may introduce on the flooded ledger topic, per
# second and at once (#16.1).  An honest neighbour introduces each auction's announcement once, a
# few a second in a busy network; a flooder's throwaway auctions beyond this are neither delivered
# nor relayed, so they stop here instead of costing every node downstream.
NEW_AUCTIONS_PER_LINK = 10.0
NEW_AUCTIONS_BURST = 100.0


class NodeLedger:
    """Ledger I/O of one node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.probe_at = -float("inf")
        self.introduced = Buckets(NEW_AUCTIONS_PER_LINK, NEW_AUCTIONS_BURST)
        # The payload the screen decoded, so that its delivery right after need not decode it again.
        self._screened: tuple[bytes, Any] | None = None
        node.gossip.screen = self.screen  # bound what one neighbour may make us relay (#16.1)
        node.store.set_owner(node.me)  # what we signed is fsync'd however it reaches the store

    def screen(self, via: str, env: GossipEnvelope, now: float) -> bool:
        """May this ledger envelope from neighbour ``via`` be delivered and relayed?  Only if what it
        introduces (auctions new to this node, or fraud proofs about such auctions) fits that link's
        budget.  Pure: no I/O."""
        if env.topic != LEDGER_TOPIC:
            return True
        try:
            payload = decode_payload(env.payload)
        except DecodeError:
            return True  # delivered, and reported against its origin as before
        self._screened = (env.payload, payload)
        expects = self.node.store.expects
        if isinstance(payload, Entries):
            cost = len({e.auction for e in payload.entries if not expects(e.auction)})
        elif isinstance(payload, FraudProofs):  # self-verifying, so as cheap to make up as entries
            cost = sum(1 for p in payload.proofs if not expects(p.auction))
        else:
            return True
        if not cost:
            return True
        if self.introduced.available(via, now) < cost:
            return False
        self.introduced.take(via, now, cost)
        return True

    async def persist(self, entries: Sequence[Any]) -> bool:
        """Append our own entries; False if the ledger could not be written (nothing to publish then)."""
        touched: set[str] = set()
        for entry in entries:
            try:
                added = await trio.to_thread.run_sync(self.node.store.append, entry)
            except InvalidEntry as exc:
                # Our own entry does not chain (only a deviating node's can): the ledger keeps nothing.
                self.node._emit("error", reason=f"own ledger entry refused: {exc}")
                continue
            except FraudDetected as exc:
                culprits = sorted(find_culprits(exc.proof.first, exc.proof.second))
                self.node._emit("fraud", auction=entry.auction, position=entry.position,
                           culprits=[self.node.n(c) for c in culprits])
                self.node.publish(FraudProofs((exc.proof,)))
                continue
            except (StoreError, IntegrityError, OSError) as exc:  # disk full, read-only, damaged (#15.4)
                self.failed(exc)
                return False
            if added:
                self.node._emit_ledger(entry)
                touched.add(entry.auction)
        await self.grew(touched, [])
        return True

    def failed(self, exc: BaseException) -> None:
        """A write failed (the store's ``StoreUnavailable``, or worse): decline to take part until
        the store says it is writable again."""
        failure = self.node.store.failure
        reason = str(failure if failure is not None else exc) or type(exc).__name__
        if self.node.store_failure is None:
            self.node._emit("error", reason=f"cannot write the ledger: {reason}; declining to take part until it can")
            self.node.note(f"ledger not writable: {reason}")
        self.node.store_failure = reason
        self.probe_at = trio.current_time() + PROBE_INTERVAL

    async def probe(self, now: float) -> None:
        """Is the ledger writable again?  Reopen it if so (a failed write poisons the open store)."""
        self.probe_at = now + PROBE_INTERVAL
        policy = self.node.store._admission

        def probe() -> LedgerStore:
            path = self.node.data_dir / ".write-probe"
            with open(path, "wb") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
            path.unlink()
            self.node.store.close()
            store = LedgerStore.open_data_dir(self.node.data_dir)
            store.set_admission(policy)
            store.set_owner(self.node.me)
            return store

        try:
            self.node.store = await trio.to_thread.run_sync(probe)
        except (OSError, StoreError, IntegrityError):
            return
        self.node.store_failure = None
        self.node._emit("recovered", ok=True, reason="the ledger is writable again")
        self.node.note("ledger writable again")

    async def delivered(self, origin: bytes, raw: bytes, *, scoped: bool = False) -> None:
        """A ledger payload gossip delivered (signed by ``origin``); ``scoped``: on the anti-entropy
        topic, which only a neighbour's own answers travel on."""
        screened, self._screened = self._screened, None
        try:
            payload = screened[1] if screened is not None and screened[0] is raw else decode_payload(raw)
        except DecodeError as exc:
            # Signed by its origin, so the origin is at fault, not the relay.
            self.node.bad_input(short_name(origin), f"ledger payload: {exc}")
            return
        if isinstance(payload, Entries):
            # A neighbour's own anti-entropy answer vouches for the chains it carries: the store
            # may keep a bounded number on its word (#16.1).  Anything else waits to be relevant.
            voucher = origin.hex() if scoped and origin.hex() in self.node.neighbours else None
            await self.merge(list(payload.entries), origin=origin, vouched_by=voucher)
        elif isinstance(payload, Digests):
            self.node.catchup.answer_digests(origin, payload, trio.current_time())
        elif isinstance(payload, Summaries):
            self.node.catchup.answer_summaries(origin, payload, trio.current_time())
        elif isinstance(payload, FraudProofs):
            try:
                new = await trio.to_thread.run_sync(self.node.store.add_fraud_proofs, list(payload.proofs))
            except (StoreError, OSError) as exc:
                self.failed(exc)
                return
            for proof in new:
                self.node._emit("fraud", auction=proof.auction, relayed=True)
            await self.node.sra.bids.on_proofs(new)  # #15.7: a proved bid equivocator is refused in a live auction

    async def merge(self, entries: list[Any], origin: bytes | None = None, *, vouched_by: str | None = None) -> None:
        kept = []
        for entry in entries:
            if isinstance(entry, Announcement) and (why := squatting(entry.auction, entry.seller)):
                self.node.bad_input(self.node.n(origin.hex()) if origin else "gossip", f"announcement refused: {why}")
                continue
            kept.append(entry)
        if not kept:
            return
        try:
            # Admission (#16.1): auctions we do not hold wait in the store's bounded pending area
            # (result.held) until their Invite reaches us (SraShell.check_invite admits them), or
            # a neighbour vouches for them (vouched_by, bounded per neighbour).
            # (The store's own clock, the host's, times the pending area.)
            merge = partial(self.node.store.merge, kept, vouched_by=vouched_by)
            if not self.node.store.may_sync(kept, vouched_by):
                # Replicas only: a page-cache write each, no fsync (store.py), so a few µs here
                # cost less than a hop to a worker thread and back (profiled: the largest
                # share of a node's CPU in a stream when every replica went there).
                result = merge()
            else:  # our own entries (fsync'd), or vouching (its record is saved with fsync)
                result = await trio.to_thread.run_sync(merge)
        except (StoreError, OSError) as exc:
            self.failed(exc)
            return
        except (IntegrityError, InvalidEntry) as exc:
            self.node._emit("error", reason=f"ledger merge: {exc}")
            return
        for entry in result.accepted:
            self.node._emit_ledger(entry)
        for rejection in result.rejected:
            # The origin signed the envelope, so it is the one to name (a fault-report hook).
            self.node._emit("bad", peer="gossip", reason=f"ledger entry refused: {rejection.reason}",
                       **({} if origin is None else {"origin": self.node.n(origin.hex())}))
        if result.fraud_proofs:
            for proof in result.fraud_proofs:
                self.node._emit("fraud", auction=proof.auction)
            self.node.publish(FraudProofs(tuple(result.fraud_proofs)))
        await self.grew({e.auction for e in result.accepted}, result.accepted)

    async def grew(self, auctions: set[str], accepted: list[Any]) -> None:
        """New entries of these auctions: awards that came by the ledger, held settlements, the end."""
        now = trio.current_time()
        for auction in sorted(auctions):
            inst = self.node.instances.get(auction)
            if not isinstance(inst, SraAuction) or inst.finished:
                continue
            mine = [e for e in accepted if e.auction == auction]
            if mine:
                await self.node.sra.awarded_by_ledger(inst, mine, now)
            if inst.held:
                await self.node.sra.release_settlements(inst, now)
            self.node._after(inst)

    async def report_recovery(self) -> None:
        report = await trio.to_thread.run_sync(self.node.store.verify_all)
        # Lost entries (#15.9): a chain file holds less than its head acknowledged; anti-entropy
        # fills them back from our neighbours (the store merges lost auctions whatever admission says).
        lost = {lost.file: {"have": lost.have, "acknowledged": lost.head.count} for lost in self.node.store.lost()}
        self.node._emit("recovered", ok=report.ok, auctions=dict(sorted(self.node._recovered.items())),
                   fraud_proofs=report.fraud_proofs, issues=[i.reason for i in self.node.store.issues], lost=lost)
