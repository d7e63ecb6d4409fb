"""Strategic and malicious real nodes: the honest :class:`~peer.node.node.Node` with a few narrow overrides.

Theory of operation
-------------------
An attacker here is an honest node that lies in one place.  It overrides only
the shell's narrow seams, so everything else (links, signatures, the machine,
the ledger) is the real code:

* ``_send`` -- every message the node puts on a link (SRA messages, gossip it
  publishes and gossip it relays) passes here: a false reserve rewrites an
  Open, an altering relay flips a payload byte, a replayer sends an old message
  again, a silent or crashed node sends nothing.
* the SRA collaborator's ``apply_one`` -- the machine's effects, one at a time,
  so an attack can fire at the exact moment the node enters a stage (crash,
  silence, forgeries).
* ``_emit_ledger`` -- called for each entry accepted onto our ledger: the
  equivocator waits until its own sale comes back countersigned, then signs a
  second, different version of it.

(``run`` is only wrapped in a cancel scope, so an in-process crash can stop
every task of this node at once.)

Which honest check is meant to catch each attack, and what the tests measured,
is in ``docs/adversaries-real.md``.  The adversary counts what it did in
``evidence`` so a test can compare what was attempted with what was refused.

``--behaviour SPEC`` (hidden, for testing) makes ``peer run`` start one of these;
``tools/launch --behaviour NAME=SPEC`` passes it to one node.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import random
import signal
from dataclasses import dataclass
from typing import Any

import msgspec
import trio

from peer.ledger import Entries, SignedHop, encode_payload, sign_hop
from peer.ledger.entries import hop_signed_bytes
from peer.money import MoneyError, format_money, parse_money
from peer.net.codec import GossipEnvelope
from peer.net.gossip import DEFAULT_TTL, signed_bytes, to_ms
from peer.net.identity import Identity
from peer.net.outbox import Priority
from peer.node.config import NodeConfig
from peer.node.node import LEDGER_TOPIC, Node
from peer.sra.effects import Effect, StageChanged
from peer.sra.instance import SraAuction
from peer.sra.messages import Open, Settled, settled_signed_bytes
from peer.sra.shell import SraShell

STAGES = ("gathering", "aggregating", "reported", "hosting", "settled")

#: kind -> one line for ``--help`` and the docs
KINDS: dict[str, str] = {
    "false-reserve": "as a host, announce a reserve DELTA above (or below, if negative) what it paid",
    "forge-origin": "send gossip claiming the seller (or a neighbour) as origin, signed with its own key",
    "forge-hop": "when hosting, flood a hop entry selling to a neighbour with a forged buyer signature",
    "replay": "send every SRA message and gossip envelope a second time, after the next one",
    "alter-gossip": "flip a payload byte of every gossip envelope it relays",
    "equivocate": "after its sale is countersigned, sign and flood a second version at a higher price",
    "equivocate-bid": "report its stage-2 Bid to every inviter: its value to each, 0 to the one its coin picks "
                      "(and the same in its stage-3 context bids), each Bid validly signed",
    "false-settle": "on reporting its bid, flood a Settled naming itself the winner (refused against the ledger)",
    "false-settle-head": "on being invited, flood a Settled that matches the ledger head (the seller wins, "
                         "no hops) but is not signed by its winner",
    "silent": "from STAGE on, send nothing at all (links stay up)",
    "crash": "at STAGE, die at once (SIGKILL itself in peer run; stop every task in tests)",
}
NEEDS_STAGE = frozenset({"silent", "crash"})
FORGED_SEQ_BASE = 1 << 40  # far above any honest origin's counter, so never "already seen"
FORGED_PRICE = 10**6 * 1000  # what the forged hop claims the victim paid (1000 units)


class AttackError(ValueError):
    """A behaviour spec does not parse; the message says what is expected."""


@dataclass(frozen=True, slots=True)
class Attack:
    """One behaviour: ``kind``, the ``stage`` it fires at (silent, crash), an ``amount`` (false-reserve)."""

    kind: str
    stage: str | None = None
    amount: int | None = None

    @classmethod
    def parse(cls, text: str) -> Attack:
        """``false-reserve[:DELTA]``, ``silent@STAGE``, ``crash@STAGE``, or a bare kind."""
        spec = text.strip()
        kind, at, stage = spec.partition("@")
        kind, colon, amount_text = kind.partition(":")
        if kind not in KINDS:
            raise AttackError(f"unknown behaviour {kind!r}; one of: {', '.join(KINDS)}")
        if kind in NEEDS_STAGE:
            if not at or stage not in STAGES:
                raise AttackError(f"{kind} needs @STAGE, one of: {', '.join(STAGES)}")
        elif at:
            raise AttackError(f"{kind} takes no @STAGE")
        amount = None
        if kind == "false-reserve":
            negative = amount_text.startswith("-")
            try:
                amount = parse_money(amount_text.lstrip("+-") or "1")
            except MoneyError as exc:
                raise AttackError(f"false-reserve:DELTA: {exc}") from None
            amount = -amount if negative else amount
            if amount == 0:
                raise AttackError("false-reserve:DELTA must not be 0 (that is the honest reserve)")
        elif colon:
            raise AttackError(f"{kind} takes no :AMOUNT")
        return cls(kind, stage or None, amount)

    def __str__(self) -> str:
        out = self.kind
        if self.amount is not None:
            out += f":{'-' if self.amount < 0 else '+'}{format_money(abs(self.amount))}"
        if self.stage is not None:
            out += f"@{self.stage}"
        return out


class AdversaryNode(Node):
    """A node that carries out ``attack`` and is honest otherwise.

    ``hard_crash``: ``crash@STAGE`` SIGKILLs the whole process (``peer run``);
    otherwise (in-process tests) it cancels this node's tasks at once, which
    drops whatever sits in its link outboxes exactly as a kill would.
    """

    def __init__(self, config: NodeConfig, identity: Identity, *, attack: Attack, hard_crash: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(config, identity, **kwargs)
        self.attack = attack
        self.hard_crash = hard_crash
        self.silenced = False
        self.crashed = False
        self.evidence: collections.Counter[str] = collections.Counter()  # what the attacker did
        self._last_sent: dict[tuple[str, bool], Any] = {}  # (peer, is gossip) -> last message (replay)
        self._forged_origin = False
        self._equivocated: set[str] = set()
        self._scope: trio.CancelScope | None = None

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            self._scope = scope
            await super().run(task_status=task_status)

    # ------------------------------------------------------------ stages

    def _make_sra_shell(self) -> SraShell:
        return _AdversarySraShell(self)

    def _on_stage(self, stage: str) -> None:
        kind = self.attack.kind
        if kind == "forge-origin" and not self._forged_origin:
            self._forged_origin = True
            self._forge_origin()
        elif kind == "forge-hop" and stage == "hosting":
            self._forge_hop()
        elif kind == "false-settle" and stage == "reported" and not self.evidence["false settlements"]:
            self._false_settle()
        elif kind == "false-settle-head" and stage == "gathering" and not self.evidence["false settlements"]:
            self._false_settle_head()
        elif kind == "silent" and stage == self.attack.stage and not self.silenced:
            self.silenced = True
            self._emit("adversary", attack=str(self.attack), what="silent from now on", stage=stage)
        elif kind == "crash" and stage == self.attack.stage:
            self._crash(stage)

    def _crash(self, stage: str) -> None:
        self.crashed = True
        # Line-buffered log: this line is on disk before the kill.
        self._emit("adversary", attack=str(self.attack), what="crashing", stage=stage)
        if self.hard_crash:
            os.kill(os.getpid(), signal.SIGKILL)
        assert self._scope is not None
        self._scope.cancel()

    # ------------------------------------------------------------ sending

    def _send(self, to: str, msg: Any, priority: Priority = Priority.PROTOCOL) -> None:
        if self.crashed or self.silenced:
            self.evidence["withheld"] += 1
            return
        kind = self.attack.kind
        if kind == "false-reserve" and isinstance(msg, Open):
            assert self.attack.amount is not None
            msg = dataclasses.replace(msg, reserve=max(0, msg.reserve + self.attack.amount))
            self.evidence["false reserves"] += 1
        elif (kind == "alter-gossip" and isinstance(msg, GossipEnvelope)
              and msg.origin != self.identity.public_key and msg.payload):
            altered = bytearray(msg.payload)
            altered[len(altered) // 2] ^= 0x01
            msg = msgspec.structs.replace(msg, payload=bytes(altered))
            self.evidence["altered relays"] += 1
        super()._send(to, msg, priority)
        if kind == "replay":
            # Send the previous message to this peer again, after the current one: an
            # old message, replayed out of order inside a validly signed frame.
            key = (to, isinstance(msg, GossipEnvelope))
            previous = self._last_sent.get(key)
            self._last_sent[key] = msg
            if previous is not None:
                super()._send(to, previous, priority)
                self.evidence["replayed gossip" if key[1] else "replayed sra"] += 1

    # ------------------------------------------------------------ forgeries

    def _forge_origin(self) -> None:
        """Flood a ledger envelope in someone else's name, signed with our own key."""
        assert self.machine is not None
        victim = self.machine.seller if self.machine.seller != self.me else self.neighbours[0]
        chain = self.store.chain(self.machine.auction)
        payload = encode_payload(Entries(chain.entries if chain is not None else ()))
        seq = FORGED_SEQ_BASE + self.evidence["forged envelopes"]
        expires = to_ms(self.wallclock()) + to_ms(DEFAULT_TTL)
        origin = bytes.fromhex(victim)
        sig = self.identity.sign(signed_bytes(origin, seq, expires, LEDGER_TOPIC, payload))
        env = GossipEnvelope(origin=origin, seq=seq, expires_ms=expires, topic=LEDGER_TOPIC, payload=payload, sig=sig)
        for to in self.neighbours:
            if to != victim:  # the victim would just drop its "own" message as an echo
                super()._send(to, env)
                self.evidence["forged envelopes"] += 1
        self._emit("adversary", attack=str(self.attack), what="forged gossip origin", victim=self._n(victim))

    def _forge_hop(self) -> None:
        """We hold the item: flood a sale of it to a neighbour at a huge price, "countersigned" by us."""
        assert self.machine is not None
        chain = self.store.chain(self.machine.auction)
        if chain is None:
            return
        victims = sorted(self.machine.children.keys() | self.machine.declined) or self.neighbours
        body = chain.next_body(victims[0], FORGED_PRICE)
        forged = SignedHop(body=body, seller_sig=sign_hop(self.identity, body),
                           buyer_sig=self.identity.sign(hop_signed_bytes(body)))  # our key, not the buyer's
        self._publish(Entries((forged,)))
        self.evidence["forged hops"] += 1
        self._emit("adversary", attack=str(self.attack), what="forged buyer signature", hop=body.hop,
                   victim=self._n(victims[0]), price=format_money(FORGED_PRICE))

    def _false_settle(self) -> None:
        """Claim the auction is over and we won, at the ledger's current length and price."""
        assert self.machine is not None
        chain = self.store.chain(self.machine.auction)
        hops = 0 if chain is None else len(chain.hops)
        price = 0 if chain is None or not chain.hops else chain.hops[-1].body.price
        claim = Settled(auction=self.machine.auction, winner=self.me, hops=hops, price=price)
        claim = dataclasses.replace(claim, sig=self.identity.sign(settled_signed_bytes(claim)))
        for to in self.neighbours:
            super()._send(to, claim)
            self.evidence["false settlements"] += 1
        self._emit("adversary", attack=str(self.attack), what="flooded a false settlement", hops=hops)

    def _false_settle_head(self) -> None:
        """Claim the auction ended as the still-empty ledger says: the seller keeps the item.

        It agrees with every honest ledger copy, so only the signature tells it is
        false: we cannot sign as the seller, so we sign with our own key (issue #15.5)."""
        assert self.machine is not None
        claim = Settled(auction=self.machine.auction, winner=self.machine.seller, hops=0, price=0)
        claim = dataclasses.replace(claim, sig=self.identity.sign(settled_signed_bytes(claim)))
        for to in self.neighbours:
            super()._send(to, claim)
            self.evidence["false settlements"] += 1
        self._emit("adversary", attack=str(self.attack), what="flooded a settlement matching the ledger head")

    def _emit_ledger(self, entry: Any) -> None:
        super()._emit_ledger(entry)
        if (self.attack.kind == "equivocate" and isinstance(entry, SignedHop) and entry.body.seller == self.me
                and entry.hash not in self._equivocated):
            # Our sale came back countersigned: now sign a second version of the same hop.
            self._equivocated.add(entry.hash)
            body = dataclasses.replace(entry.body, price=entry.body.price + 1)
            second = SignedHop(body=body, seller_sig=sign_hop(self.identity, body), buyer_sig=entry.buyer_sig)
            self._publish(Entries((second,)))
            self.evidence["equivocations"] += 1
            self._emit("adversary", attack=str(self.attack), what="signed a second version of hop",
                       hop=body.hop, price=format_money(body.price))


class _PerInviter(dict):  # type: ignore[type-arg]
    """``equivocate-bid``: the machine's ``equivocate`` map (inviter -> amount), read as it sends.

    The machine reports in the same step in which its gathering ends, so the map
    cannot be filled from a stage hook; it is computed from the inviters when the
    machine reads it: the value to every inviter but the one its seeded coin picks
    (the machine's honest draw), 0 to that one.  Falsy until there are two inviters
    (one inviter: nothing to equivocate, the node reports honestly).
    """

    def __init__(self, machine: Any, node: AdversaryNode) -> None:
        super().__init__()
        self.machine = machine
        self.node = node

    def _amounts(self) -> dict[str, int]:
        m = self.machine
        inviters = sorted(m.inviters)
        if len(inviters) < 2:
            return {}
        coin = random.Random(f"sra/parent/{m.seed}/{m.id}").choice(inviters)
        amounts = {i: 0 if i == coin else m.value for i in inviters}
        if not self.node.evidence["equivocated bids"]:
            self.node.evidence["equivocated bids"] = len(amounts)
            self.node._emit("adversary", attack=str(self.node.attack), what="bids to every inviter",
                            amounts={self.node._n(i): format_money(a) for i, a in sorted(amounts.items())})
        return amounts

    def __bool__(self) -> bool:
        return bool(self._amounts())

    def __contains__(self, key: object) -> bool:
        return key in self._amounts()

    def __getitem__(self, key: str) -> int:
        return self._amounts()[key]

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._amounts().get(key, default)


class _AdversarySraShell(SraShell):
    """The honest collaborator, but the node sees each effect first (stage hooks)."""

    node: AdversaryNode

    def new_auction(self, *args: Any, **kwargs: Any) -> SraAuction:
        inst = super().new_auction(*args, **kwargs)
        if self.node.attack.kind == "equivocate-bid":
            # The machine's own deviation (Behaviour.equivocate): a Bid to every inviter, and
            # each inviter's amount in the stage-3 context bids it hears.  The shell then signs
            # each Bid for its receiver: two valid, conflicting signed bids.
            m = inst.machine
            m._equivocate = _PerInviter(m, self.node)
            m._rewrite = True
        return inst

    async def apply_one(self, inst: SraAuction, effect: Effect) -> None:
        # One effect at a time (the honest apply keeps no state across effects), so an
        # attack that fires on entering a stage sees everything before it done and
        # nothing after it: e.g. a buyer's countersigned entry is already flooded when
        # it enters "hosting", its Opens are not sent yet.
        if self.node.crashed:
            return
        if isinstance(effect, StageChanged):
            self.node._on_stage(effect.stage)
            if self.node.crashed:
                return
        await super().apply_one(inst, effect)


# ---------------------------------------------------------------- peer run --behaviour


async def serve_adversary(config: NodeConfig, identity: Identity, attack: Attack) -> Node:
    """What ``peer run --behaviour SPEC`` runs instead of the honest node (no live view)."""
    node = AdversaryNode(config, identity, attack=attack, hard_crash=True)
    await node.run()
    return node


def run_adversary_blocking(config: NodeConfig, identity: Identity, attack: Attack) -> Node:
    return trio.run(serve_adversary, config, identity, attack)
