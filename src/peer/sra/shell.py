"""SRA's collaborator in the node shell: what SRA adds between its machine and a real node.

The node hosts instances and routes each SRA message to its auction's
:class:`~peer.sra.instance.SraAuction`; this class does the SRA-specific rest:

* admission: an Invite opens an auction here only if our ledger holds the
  seller's signed announcement and it matches;
* ledger checks the pure machine cannot do: a host's reserve against the chain,
  the seller's signature on an Award, the buyer's on a Confirm;
* settlement: a Settled must be signed by its winner (the party entitled to end
  the auction: the seller, or the last buyer, backed by its signed entry) and
  agree with our ledger; one ahead of our ledger is held until its entries come;
* hop signing (who signs what, and when, depends on the resale rule: under the
  paper's rule the buyer countersigns on its Award and floods the whole entry;
  under guarded resale the buyer signed with its Confirm, so the seller floods
  the whole entry before its Award, and that entry from gossip counts as the
  Award if it comes first);
* the stall watchdog: an auction that stops moving is aborted with a reason.

Order of effects matters: a buyer that accepts an Award countersigns the hop,
persists it and floods it *before* it sends its own hop's Opens; links are
FIFO, so each participant holds the signed entry before it sees the Open.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from peer.errors import RemoteProtocolError
from peer.ledger import (
    Entries,
    IntegrityError,
    InvalidEntry,
    ReserveError,
    SignedHop,
    StoreError,
    check_reserve,
    sign_hop,
)
from peer.ledger.entries import hop_signed_bytes
from peer.money import format_money
from peer.net.identity import verify
from peer.node.services import NodeServices
from peer.sra.config import SraConfig
from peer.sra.effects import Effect, Outcome, Record, Send, StageChanged, Wake
from peer.sra.equivocation_shell import BidGuard
from peer.sra.instance import SraAuction
from peer.sra.ledger_entry import HopEntry
from peer.sra.machine import SraNode
from peer.sra.messages import (
    STAGE_OF,
    Award,
    Bid,
    BidReceipts,
    Confirm,
    Invite,
    Message,
    Open,
    Settled,
    settled_signed_bytes,
)

HOLD = "hold"  # a settlement our ledger cannot judge yet
HELD_LIMIT = 16  # settlements waiting for their ledger entries, per auction
STALL_GRACE = 2.0  # seconds on top of the protocol's own bound (tests lower it)


def _node_public_key(node: str) -> bytes | None:
    """A node id is its Ed25519 public key in hex: the raw 32 bytes, or None if it is not one."""
    try:
        key = bytes.fromhex(node)
    except (ValueError, TypeError):
        return None
    return key if len(key) == 32 else None


class SraShell:
    """SRA's part of one node (one per node; the per-auction state is in each SraAuction)."""

    stall_grace = STALL_GRACE

    def __init__(self, node: NodeServices) -> None:
        self.node = node
        self.clock: Callable[[], float] = time.time  # wall clock for admission (the node sets its own)
        self.on_ledger: Callable[[Any], None] | None = None  # entries admission merged (the node's event)
        self.bids = BidGuard(self)  # signed Bids, receipts, equivocation proofs (#15.7)

    # ------------------------------------------------------------ instances

    def stall_after(self) -> float:
        """How long an auction may show no progress before this node gives up on it.

        In a live auction every node sees progress at least this often: the first
        hop entry comes at most ``reply_timeout + context_timeout`` after the seller
        started (which is before any node joined), and each later entry or the
        settlement at most ``context_timeout`` after the one before (a host closes its
        hop within that).  So the bound is only passed when a node on the resale path
        has crashed or gone silent.  It assumes every node runs with the seller's
        timeouts, as ``tools/launch`` arranges.

        Under guarded resale no entry appears before the whole resale chain has
        confirmed, which the seller waits ``confirm_timeout`` for; the bound allows
        one lapsed offer of hers (a crashed or silent first buyer) on top.
        """
        c = self.node.config
        grace = getattr(self.node, "STALL_GRACE", self.stall_grace)
        bound = c.reply_timeout + c.context_timeout + 2 * c.gather_window + grace
        return bound if c.paper_resale else bound + 2 * c.confirm_timeout

    def new_auction(self, auction: str, item: str, seller: str, value: int, origin: str | None,
                    now: float) -> SraAuction:
        c = self.node.config
        coins = c.verifiable_coins
        keys = None
        if coins:
            from peer.sra.coin_keys import SignerKeys  # Ed25519: loaded only when coins are on

            keys = SignerKeys(self.node.identity.sign, _node_public_key)
        machine = SraNode(
            self.node.me, self.node.neighbours, value, auction=auction, seed=c.seed, seller=seller, item=item,
            config=SraConfig(gather_window=c.gather_window, reply_timeout=c.reply_timeout,
                             context_timeout=c.context_timeout, confirm_timeout=c.confirm_timeout,
                             guarded=not c.paper_resale, verifiable_coins=coins),
            coin_keys=keys,
        )
        return SraAuction(machine=machine, origin=origin, created=now, stall_after=self.stall_after())

    def check_invite(self, msg: Invite) -> str | None:
        # Admission (#16.1): the auction is relevant now, so what the store held pending for
        # it (its announcement, usually) is merged before we look for the announcement.
        # One small merge (a few entries at most), so it runs in the loop.
        store = self.node.store
        try:
            admitted = store.admit(msg.auction, now=self.clock())
        except (StoreError, IntegrityError, InvalidEntry, OSError) as exc:
            # Our disk, not the sender's fault; the node refuses invitations while the ledger is unhealthy.
            self.node.emit("error", reason=f"cannot admit auction {msg.auction} to the ledger: {exc}")
            return None if store.chain(msg.auction) is not None else "its announcement could not be stored here"
        if self.on_ledger is not None:
            for entry in admitted.accepted:
                self.on_ledger(entry)
        chain = store.chain(msg.auction)
        if chain is None:
            return "invitation for an auction with no signed announcement on our ledger"
        if chain.announcement.seller != msg.seller or chain.announcement.hash != msg.genesis:
            return "invitation does not match the seller's signed announcement"
        if chain.announcement.item != msg.item:
            return "invitation names another item than the announcement"
        return None

    # ------------------------------------------------------------ receiving

    async def receive(self, inst: SraAuction, peer: str, msg: Message, now: float) -> None:
        """One message of ``inst``'s auction from ``peer``: judged, then fed to the machine."""
        if isinstance(msg, BidReceipts):  # the shell's own: the machine never sees receipts
            await self.bids.on_receipts(inst, peer, msg, now)
            return
        if isinstance(msg, Bid):
            convicted = peer in inst.machine.convicted
            problem = await self.bids.check_bid(inst, peer, msg, now)
            if problem:
                self.node.reject(peer, problem)
                return
            if not convicted and peer in inst.machine.convicted:
                return  # this very Bid proved it an equivocator: refused and counted once, as such
        if isinstance(msg, Settled):
            verdict = self.settlement_verdict(inst, msg)
            if verdict == HOLD:
                self._hold_settlement(inst, peer, msg)
                return
            if verdict is not None:
                self.node.reject(peer, verdict)
                return
        problem = self._precheck(inst, peer, msg)
        if problem:
            self.node.reject(peer, problem)
            return
        try:
            effects = inst.receive(peer, msg, now)
        except RemoteProtocolError as exc:
            self.node.reject(peer, exc.reason)
            return
        if isinstance(msg, Open):
            inst.opens[msg.hop] = (peer, msg)
        await self.apply(inst, effects)

    def _precheck(self, inst: SraAuction, peer: str, msg: Message) -> str | None:
        """Ledger checks the pure machine cannot do: reserves and the seller's hop signature."""
        machine = inst.machine
        if isinstance(msg, Open) and not machine.config.guarded:
            # (Guarded resale: the host has not bought yet; the machine checks the purchase the Open names.)
            chain = self.node.store.chain(msg.auction)
            if chain is None:
                return "Open for an auction we hold no chain of"
            try:
                check_reserve(chain, peer, msg.hop, msg.reserve, msg.prev)
            except ReserveError as exc:
                return f"reserve check failed: {exc}"
        if isinstance(msg, Award):
            opened = inst.opens.get(msg.hop)
            if opened is None or opened[0] != peer:
                return None  # the machine refuses it with the precise reason
            body = HopEntry(auction=msg.auction, hop=msg.hop, seller=peer, buyer=self.node.me,
                            price=msg.price, prev=opened[1].prev)
            if body.hash != msg.entry:
                return None
            if not verify(bytes.fromhex(peer), hop_signed_bytes(body), msg.seller_sig):
                return "award without a valid seller signature on the hop"
            inst.award_sigs[msg.entry] = msg.seller_sig
        if isinstance(msg, Confirm):
            offered = machine.awaiting_confirm
            if offered is None or offered.buyer != peer or offered.hop != msg.hop:
                return None  # the machine refuses it with the precise reason
            if not verify(bytes.fromhex(peer), hop_signed_bytes(offered), msg.buyer_sig):
                return "confirm without a valid buyer signature on the hop"
            inst.confirm_sigs[offered.hash] = msg.buyer_sig
        return None

    # ------------------------------------------------------------ settlement

    def settlement_verdict(self, inst: SraAuction, msg: Settled) -> str | None:
        """None if ``msg`` is signed by its winner and agrees with our ledger, HOLD if the
        ledger is behind it, else why not.

        The machine takes the first Settled it sees, so a false one would stop the
        sale everywhere.  Two checks: the signature (only the winner ends an auction,
        and the winner is the host that kept the item), and the ledger (the winner is
        the buyer of the last hop, the seller if none, at that hop's price).
        """
        if not isinstance(msg.winner, str) or len(msg.winner) != 64:
            return "settlement names no key as its winner"
        try:
            winner_key = bytes.fromhex(msg.winner)
        except ValueError:
            return "settlement names no key as its winner"
        if not isinstance(msg.hops, int) or not isinstance(msg.price, int):
            return "malformed settlement"
        if not verify(winner_key, settled_signed_bytes(msg), msg.sig):
            return f"settlement not signed by the winner it names ({self.node.n(msg.winner)})"
        chain = self.node.store.chain(msg.auction)
        have = 0 if chain is None else len(chain.hops)
        if msg.hops < have:
            return f"settlement claims {msg.hops} hops but the ledger holds {have}"
        if msg.hops > have:
            return HOLD
        winner, price = (inst.machine.seller, 0) if chain is None or have == 0 else (
            chain.hops[-1].body.buyer, chain.hops[-1].body.price)
        if msg.winner != winner or msg.price != price:
            return (f"settlement names {self.node.n(msg.winner)} "
                    f"but the ledger's last buyer is {self.node.n(winner)}")
        return None

    def _hold_settlement(self, inst: SraAuction, peer: str, msg: Settled) -> None:
        if len(inst.held) >= HELD_LIMIT:
            self.node.reject(peer, "settlement ahead of the ledger, and too many are held already")
            return
        inst.held.append((peer, msg))
        self.node.emit("held", auction=inst.key, peer=self.node.n(peer),
                       reason="settlement ahead of our ledger: waiting for its entries")

    async def release_settlements(self, inst: SraAuction, now: float) -> None:
        """Re-judge held settlements once the ledger has grown."""
        held, inst.held = inst.held, []
        for peer, msg in held:
            if inst.machine.result is not None:
                continue
            verdict = self.settlement_verdict(inst, msg)
            if verdict == HOLD:
                inst.held.append((peer, msg))
            elif verdict is not None:
                self.node.reject(peer, verdict)
            else:
                try:
                    effects = inst.receive(peer, msg, now)
                except RemoteProtocolError as exc:
                    self.node.reject(peer, exc.reason)
                    continue
                await self.apply(inst, effects)

    # ------------------------------------------------------------ effects

    async def apply(self, inst: SraAuction, effects: list[Effect]) -> None:
        for effect in effects:
            if inst.aborted is not None:
                return  # we stopped taking part (e.g. the ledger cannot be written)
            await self.apply_one(inst, effect)

    async def apply_one(self, inst: SraAuction, effect: Effect) -> None:
        node = self.node
        if isinstance(effect, Send):
            msg = self._signed(inst, effect.msg, effect.to)
            if msg is None:
                return
            # A Bid goes after the receipts of our subtree, on the same FIFO link.
            for out in [*self.bids.outgoing(inst), msg] if isinstance(msg, Bid) else [msg]:
                node.send(effect.to, out)
                node.messages_out += 1
                node.emit("send", auction=inst.key, peer=node.n(effect.to), type=type(out).__name__,
                          stage=STAGE_OF[type(out)].value)
        elif isinstance(effect, Record):
            await self.record(inst, effect.entry, effect.countersigned)
        elif isinstance(effect, StageChanged):
            m = inst.machine
            node.emit("stage", auction=inst.key, stage=effect.stage, inviters=sorted(m.inviters),
                      invitees=sorted(m.children.keys() | m.declined) if m.stage.value != "aggregating"
                      else sorted(m.invitees))
            node.note(f"{inst.machine.item}: stage {effect.stage}")
        elif isinstance(effect, Outcome):
            inst.settled = inst.machine.result
            node.emit("settled", auction=inst.key, winner=node.n(effect.winner), winner_key=effect.winner,
                      price=format_money(effect.price), hops=effect.hops)
        elif isinstance(effect, Wake):
            pass  # the node always waits for every instance's next deadline

    def _signed(self, inst: SraAuction, msg: Message, to: str) -> Message | None:
        """Add this node's signatures to what the machine sends to ``to`` (None: do not send it)."""
        if isinstance(msg, Bid):
            return self.bids.sign(msg, to)
        if isinstance(msg, Award):
            return dataclasses.replace(msg, seller_sig=inst.my_sigs[msg.entry])
        if isinstance(msg, Confirm):
            if self.node.store_failure is not None:
                # Binding once sent, and we could not persist what we would buy: we do not sign.
                self.abort(inst, f"cannot persist to the ledger ({self.node.store_failure}): not confirming")
                return None
            purchase = inst.machine.pending_purchase
            assert purchase is not None  # the machine confirms only an offer it holds
            return dataclasses.replace(msg, buyer_sig=sign_hop(self.node.identity, purchase))
        if isinstance(msg, Settled) and msg.winner == self.node.me and not msg.sig:
            return dataclasses.replace(msg, sig=self.node.identity.sign(settled_signed_bytes(msg)))
        return msg

    async def record(self, inst: SraAuction, entry: HopEntry, countersigned: bool = False) -> None:
        node = self.node
        if entry.seller == node.me:
            inst.my_sigs[entry.hash] = sign_hop(node.identity, entry)
            if not countersigned:
                return  # our half: the buyer countersigns, persists and floods the whole entry
            # Guarded resale: the buyer signed with its Confirm; the whole entry goes on the
            # ledger (and to the buyer through it) before the Award is sent.
            hop = SignedHop(body=entry, seller_sig=inst.my_sigs[entry.hash],
                            buyer_sig=inst.confirm_sigs.pop(entry.hash))
            if await node.persist([hop]):
                node.publish(Entries((hop,)))
            else:
                self.abort(inst, f"cannot persist hop {entry.hop} to the ledger ({node.store_failure})")
            return
        seller_sig = inst.award_sigs.pop(entry.hash)
        chain = node.store.chain(entry.auction)
        if chain is not None and any(h.body == entry for h in chain.hops):
            return  # guarded resale: our seller already put the whole entry on the ledger
        hop = SignedHop(body=entry, seller_sig=seller_sig, buyer_sig=sign_hop(node.identity, entry))
        if await node.persist([hop]):
            node.publish(Entries((hop,)))  # only what we hold on disk leaves this node signed
        else:
            self.abort(inst, f"cannot persist hop {entry.hop} to the ledger ({node.store_failure})")

    async def awarded_by_ledger(self, inst: SraAuction, accepted: list[Any], now: float) -> None:
        """Guarded resale: a whole entry selling us what we confirmed is our Award, however it came.

        The seller floods it before it sends the Award, so this usually wins the race; if
        the Award's link fails, nothing is lost.
        """
        machine = inst.machine
        for entry in accepted:
            waiting = machine.awaiting_award
            if not isinstance(entry, SignedHop) or waiting is None or entry.body != waiting:
                continue
            body = entry.body
            inst.award_sigs[body.hash] = entry.seller_sig
            award = Award(auction=body.auction, hop=body.hop, price=body.price, entry=body.hash,
                          seller_sig=entry.seller_sig)
            try:
                effects = machine.receive(body.seller, award, now)
            except RemoteProtocolError as exc:
                inst.award_sigs.pop(body.hash, None)
                self.node.emit("error", auction=inst.key, reason=f"ledger award: {exc.reason}")
                continue
            await self.apply(inst, effects)

    # ------------------------------------------------------------ the end

    def final_fields(self, inst: SraAuction) -> dict[str, Any] | None:
        """The ``final`` event of a settled auction whose ledger copy is complete, else None."""
        if inst.settled is None or inst.finished:
            return None
        chain = self.node.store.chain(inst.key)
        if chain is None or len(chain.hops) < inst.settled.hops:
            return None  # settled, but our copy of the ledger is not complete yet
        m = inst.machine
        return dict(
            auction=m.auction,
            item=m.item,
            value=format_money(m.value),
            seller=m.seller,
            inviters=sorted(m.inviters),
            invitees=sorted(m.children.keys() | m.declined),
            parent=m.parents[0] if len(m.parents) == 1 else None,
            bought_at=None if m.bought_at is None or m.is_seller else format_money(m.bought_at),
            sold_at=format_money(m.sold_at) if m.sold_at is not None else None,
            winner=inst.settled.winner,
            hops=inst.settled.hops,
            price=format_money(inst.settled.price),
            ledger=[h.hash for h in chain.hops],
            seed=self.node.config.seed,
        )

    def stall_reason(self, inst: SraAuction, now: float) -> str | None:
        """Why ``inst`` is to be aborted now (it stopped moving), or None."""
        deadline = inst.stall_deadline()
        if deadline is None or now < deadline:
            return None
        m, n = inst.machine, self.node.n
        chain = self.node.store.chain(m.auction)
        hops = 0 if chain is None else len(chain.hops)
        holder = m.seller if chain is None or not chain.hops else chain.hops[-1].body.buyer
        after = self.stall_after()
        if inst.settled is not None:
            reason = f"settled, but our ledger copy lacks hops {hops + 1}..{inst.settled.hops} after {after:g} s"
        elif hops:
            reason = (f"no progress for {after:g} s while {m.stage.value}: a node on the resale path crashed "
                      f"or went silent; the item stays with {n(holder)}, who bought it in hop {hops}")
        else:
            reason = (f"no progress for {after:g} s while {m.stage.value}: a node on the resale path crashed "
                      f"or went silent; the seller keeps the item")
        unanswered = [e for e in m.entries if e.seller == self.node.me and e.hop > hops]
        if unanswered:  # we sold, but the buyer's countersigned entry never reached us
            e = unanswered[-1]
            reason += (f"; we awarded hop {e.hop} to {n(e.buyer)} and its countersigned entry never "
                       f"came back: if it signed, its own copy is one hop ahead and says it holds the item")
        return reason

    def abort(self, inst: SraAuction, reason: str) -> None:
        """Stop taking part in ``inst`` (logged with who holds the item as far as our ledger knows)."""
        if inst.aborted is not None or inst.finished:
            return
        m = inst.machine
        chain = self.node.store.chain(m.auction)
        hops = 0 if chain is None else len(chain.hops)
        holder = m.seller if chain is None or not chain.hops else chain.hops[-1].body.buyer
        inst.aborted = reason
        self.node.emit("aborted", auction=m.auction, reason=reason, stage=m.stage.value, hops=hops,
                       holder=self.node.n(holder), holder_key=holder, settled=inst.settled is not None)
        self.node.note(f"aborted {m.item}: {reason}")
