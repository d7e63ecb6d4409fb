"""The provider: one executing provider's sans-I/O machine for one auction round.

Phases, in order (each bounded by ``phase_timeout``; a timeout is ⊥ naming who
was silent)::

    collect   -> bids from users, until the deadline or a closer's CloseBids
    agree     -> bid agreement (agreement.py): view digests, whole views if they differ
    validate  -> input validation: vector digests, ⊥ on any mismatch
    coin      -> common coin (peer.coin): commit, reveal once all committed, combine
    tasks     -> the allocator's task graph (allocators.py), results by data transfer
    sign      -> every provider signs the outcome digest; all m equal signatures = output

Messages of a later phase that arrive early are checked and kept; ``_advance``
moves through the phases as far as what is held allows.  Every handler checks
the whole message before it changes anything, and a message it refuses is a
``Rejected`` effect and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peer.auctioneer import messages as m
from peer.auctioneer.agreement import BidVector, BidView, check_foreign, merge
from peer.auctioneer.allocators import AUCTIONS, PayloadError, Plan, make_plan
from peer.auctioneer.bids import bid_problem
from peer.auctioneer.effects import Aborted, Broadcast, Decided, Effect, Rejected, Send, Wake
from peer.auctioneer.outcome import Outcome, SignedOutcome
from peer.auctioneer.signing import result_bytes, result_ok, signature_ok
from peer.auctioneer.transfer import Transfer
from peer.auctioneer.vcg import SolverError
from peer.coin import CoinSession
from peer.net.identity import Identity

PHASES = ("collect", "agree", "validate", "coin", "tasks", "sign", "done", "aborted")
MAX_CHUNKS = 10_000


@dataclass(frozen=True, slots=True)
class RoundConfig:
    round: int
    auction: str  # "double" | "standard"
    providers: tuple[bytes, ...]  # the executing providers, sorted
    k: int
    bid_deadline: float
    phase_timeout: float = 5.0
    closers: frozenset[bytes] = field(default_factory=frozenset)
    # What an allocator needs besides the bid vector and the coin (Mirage: the round's market state,
    # see peer.mirage.auctioneer_round); handed to make_plan as is, outside equality and hashing.
    context: object = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.auction not in AUCTIONS:
            raise ValueError(f"unknown auction {self.auction!r}")
        if tuple(sorted(set(self.providers))) != self.providers:
            raise ValueError("providers must be sorted and distinct")
        if self.k < 0 or len(self.providers) < self.k + 1:
            raise ValueError(f"{len(self.providers)} providers cannot tolerate k = {self.k}: need m >= k+1")


class ProviderMachine:
    def __init__(self, identity: Identity, config: RoundConfig, *, share: bytes, nonce: bytes) -> None:
        if identity.public_key not in config.providers:
            raise ValueError("this identity is not an executing provider")
        self.me = identity.public_key
        self._identity = identity
        self.config = config
        self.others = tuple(p for p in config.providers if p != self.me)
        self.phase = "collect"
        self.phase_started = 0.0
        self.view = BidView(config.round)
        self.equivocations: dict[bytes, object] = {}
        # agreement
        self._view_digests: dict[bytes, bytes] = {}
        self._chunks: dict[bytes, dict[int, m.ViewChunk]] = {}
        self._chunk_totals: dict[bytes, int] = {}
        self._slow = False
        self._sent_view = False
        self.vector: BidVector | None = None
        # validation
        self._vector_digests: dict[bytes, bytes] = {}
        # coin
        session = b"auctioneer/" + config.round.to_bytes(8, "big")
        self.coin = CoinSession(session, config.providers, self.me, share, nonce)
        self._early_reveals: dict[bytes, m.CoinReveal] = {}
        self._revealed = False
        # tasks
        self.plan: Plan | None = None
        self._transfers: dict[str, Transfer] = {}
        self._early_results: dict[bytes, dict[str, bytes]] = {}
        # sign
        self.outcome: Outcome | None = None
        self._outcome_sigs: dict[bytes, tuple[bytes, bytes]] = {}
        self.result: Decided | Aborted | None = None

    # --- inputs -------------------------------------------------------------------------------

    def start(self, now: float) -> list[Effect]:
        self.phase_started = now
        return [Wake(self.config.bid_deadline)]

    def on_tick(self, now: float) -> list[Effect]:
        out: list[Effect] = []
        if self.phase == "collect" and now >= self.config.bid_deadline:
            out += self._close(now)
        elif self.phase not in ("collect", "done", "aborted") and now >= self.phase_started + self.config.phase_timeout:
            out += self._timeout()
        return out

    def on_message(self, sender: bytes, msg: object, now: float) -> list[Effect]:
        if getattr(msg, "round", None) != self.config.round:
            return [Rejected(sender, "not a message of this round")]
        if isinstance(msg, m.BidBatch):
            return self._on_bids(sender, msg)
        if isinstance(msg, m.CloseBids):
            if sender not in self.config.closers:
                return [Rejected(sender, "not allowed to close the bids")]
            return self._close(now) if self.phase == "collect" else []
        if not isinstance(msg, m.PROVIDER_MESSAGES):
            return [Rejected(sender, f"unexpected {type(msg).__name__}")]
        if sender not in self.others:
            return [Rejected(sender, "not an executing provider")]
        if self.phase in ("done", "aborted"):
            if isinstance(msg, m.ViewChunk) and not self._sent_view:
                return self._send_view()  # a late slow-path peer still needs my view to finish
            return []
        handler = {
            m.ViewDigest: self._on_view_digest, m.ViewChunk: self._on_chunk, m.VectorDigest: self._on_vector,
            m.CoinCommit: self._on_commit, m.CoinReveal: self._on_reveal, m.TaskResult: self._on_result,
            m.OutcomeSig: self._on_outcome_sig,
        }[type(msg)]
        out = handler(sender, msg)
        if self.phase not in ("done", "aborted") and not any(isinstance(e, (Rejected, Aborted)) for e in out):
            out += self._advance(now)
        return out

    # --- collect --------------------------------------------------------------------------------

    def _on_bids(self, sender: bytes, msg: m.BidBatch) -> list[Effect]:
        if self.phase != "collect":
            return [Send(sender, m.BidReceipt(self.config.round, 0, tuple((b.bidder, "bids are closed") for b in msg.bids)))]
        accepted, rejected = 0, []
        view, round_no = self.view, self.config.round
        for bid in msg.bids:
            kind = view.classify(bid)
            if kind == "same":
                accepted += 1
                continue
            problem = bid_problem(bid, round_no) if kind != "excluded" else "bidder equivocated"
            if problem is not None:
                rejected.append((bid.bidder if isinstance(bid.bidder, bytes) else b"", problem))
                continue
            proof = view.add(bid, kind)
            if proof is not None:
                rejected.append((bid.bidder, "a different bid of this bidder is held: equivocation"))
            else:
                accepted += 1
        return [Send(sender, m.BidReceipt(self.config.round, accepted, tuple(rejected)))]

    def _close(self, now: float) -> list[Effect]:
        self._enter("agree", now)
        out: list[Effect] = [Broadcast(m.ViewDigest(self.config.round, self.view.digest(), len(self.view.bids)))]
        if self._chunks:  # someone took the slow path while I was still collecting
            for sender, held in sorted(self._chunks.items()):
                for _, chunk in sorted(held.items()):
                    problem = check_foreign(self.view, chunk.bids, chunk.proofs)
                    if problem is not None:
                        return out + self._abort(f"invalid view chunk: {problem}", (sender,), True)
                    self._absorb(chunk)
            self._slow = True
            out += self._send_view()
        return out + [Wake(now + self.config.phase_timeout)] + self._advance(now)

    # --- agree ------------------------------------------------------------------------------------

    def _on_view_digest(self, sender: bytes, msg: m.ViewDigest) -> list[Effect]:
        held = self._view_digests.get(sender)
        if held is not None and held != msg.digest:
            return self._abort("provider sent two different view digests", (sender,), True)
        self._view_digests[sender] = msg.digest
        return []

    def _on_chunk(self, sender: bytes, msg: m.ViewChunk) -> list[Effect]:
        total = self._chunk_totals.get(sender, msg.total)
        if not 1 <= msg.total <= MAX_CHUNKS or msg.total != total or not 0 <= msg.index < total:
            return [Rejected(sender, "bad chunk numbering")]
        if msg.index in self._chunks.get(sender, {}):
            return []
        if self.phase != "collect":
            problem = check_foreign(self.view, msg.bids, msg.proofs)
            if problem is not None:
                # A forged bid cannot come from an honest provider: drop it, name the sender.
                return self._abort(f"invalid view chunk: {problem}", (sender,), True)
            self._absorb(msg)
        self._chunk_totals[sender] = total
        self._chunks.setdefault(sender, {})[msg.index] = msg
        out: list[Effect] = []
        if self.phase != "collect" and not self._sent_view:
            self._slow = True
            out += self._send_view()
        return out

    def _absorb(self, chunk: m.ViewChunk) -> None:
        for proof in merge(self.view, chunk.bids, chunk.proofs):
            self.equivocations[proof.bidder] = proof

    def _send_view(self) -> list[Effect]:
        self._sent_view = True
        pieces = self.view.chunks()
        return [
            Broadcast(m.ViewChunk(self.config.round, i, len(pieces), bids, proofs))
            for i, (bids, proofs) in enumerate(pieces)
        ]

    def _agreement_done(self) -> bool:
        if not self._slow:
            mine = self.view.digest()
            return len(self._view_digests) == len(self.others) and all(d == mine for d in self._view_digests.values())
        return self._sent_view and all(
            len(self._chunks.get(p, {})) == self._chunk_totals.get(p, -1) for p in self.others
        )

    # --- validate, coin --------------------------------------------------------------------------

    def _on_vector(self, sender: bytes, msg: m.VectorDigest) -> list[Effect]:
        held = self._vector_digests.get(sender)
        if held is not None and held != msg.digest:
            return self._abort("provider sent two different vector digests", (sender,), True)
        self._vector_digests[sender] = msg.digest
        return []

    def _on_commit(self, sender: bytes, msg: m.CoinCommit) -> list[Effect]:
        fault = self.coin.on_commitment(sender, msg.digest)
        return self._abort(f"coin: {fault.kind}", fault.culprits, fault.proved) if fault else []

    def _on_reveal(self, sender: bytes, msg: m.CoinReveal) -> list[Effect]:
        if not self._revealed:
            # Checked once I reveal: before that, holding it changes nothing I send.
            if sender in self._early_reveals and self._early_reveals[sender] != msg:
                return self._abort("coin: two reveals", (sender,), True)
            self._early_reveals[sender] = msg
            return []
        fault = self.coin.on_reveal(sender, msg.share, msg.nonce)
        return self._abort(f"coin: {fault.kind}", fault.culprits, fault.proved) if fault else []

    # --- tasks, sign -----------------------------------------------------------------------------

    def _on_result(self, sender: bytes, msg: m.TaskResult) -> list[Effect]:
        if not result_ok(sender, self.config.round, msg.task, msg.payload, msg.sig):
            return [Rejected(sender, "task result signature does not verify")]
        if self.plan is None:
            held = self._early_results.get(sender, {})
            if msg.task not in held and len(held) >= len(self.config.providers):
                return [Rejected(sender, "more task results than there are groups")]  # bounds what we keep
            held = self._early_results.setdefault(sender, {})
            if msg.task in held and held[msg.task] != msg.payload:
                return self._abort("two different results for one task", (sender,), True)
            held[msg.task] = msg.payload
            return []
        return self._take_result(sender, msg.task, msg.payload)

    def _take_result(self, sender: bytes, task: str, payload: bytes) -> list[Effect]:
        transfer = self._transfers.get(task)
        if transfer is None or sender not in transfer.senders:
            return [Rejected(sender, f"not a sender of task {task!r}")]
        fault = transfer.on_value(sender, payload)
        if fault is not None:
            return self._abort(f"data transfer: {fault.kind}", fault.culprits, fault.proved)
        if transfer.conflicting():
            return self._conflict(transfer)
        return []

    def _conflict(self, transfer: Transfer) -> list[Effect]:
        """Two different results for one task: recompute it (deterministic) to name who was wrong."""
        assert self.plan is not None
        try:
            correct = self.plan.compute(transfer.task)
        except SolverError as exc:
            return self._abort(f"data transfer: conflicting results, recomputation failed: {exc}", (), False)
        return self._abort("data transfer: conflicting results", transfer.wrong(correct), True)

    def _on_outcome_sig(self, sender: bytes, msg: m.OutcomeSig) -> list[Effect]:
        if not signature_ok(sender, msg.digest, msg.sig):
            return [Rejected(sender, "outcome signature does not verify")]
        held = self._outcome_sigs.get(sender)
        if held is not None and held[0] != msg.digest:
            return self._abort("provider signed two different outcomes", (sender,), True)
        self._outcome_sigs[sender] = (msg.digest, msg.sig)
        return []

    # --- progress ------------------------------------------------------------------------------

    def _advance(self, now: float) -> list[Effect]:
        out: list[Effect] = []
        if self.phase == "agree" and not self._slow and len(self._view_digests) == len(self.others):
            mine = self.view.digest()
            if any(d != mine for d in self._view_digests.values()):
                self._slow = True  # views differ: exchange them whole
        if self.phase == "agree" and self._slow and not self._sent_view:
            out += self._send_view()
        if self.phase == "agree" and self._agreement_done():
            self.vector = self.view.vector()
            self._enter("validate", now)
            out += [
                Broadcast(m.VectorDigest(self.config.round, self.vector.digest())),
                Broadcast(m.CoinCommit(self.config.round, self.coin.my_commitment())),
                Wake(now + self.config.phase_timeout),
            ]
        if self.phase == "validate" and len(self._vector_digests) == len(self.others):
            assert self.vector is not None
            mine = self.vector.digest()
            differing = tuple(p for p, d in self._vector_digests.items() if d != mine)
            if differing:
                return out + self._abort("input validation: bid vectors differ", differing, False)
            self._enter("coin", now)
            out.append(Wake(now + self.config.phase_timeout))
        if self.phase == "coin" and not self._revealed and self.coin.may_reveal():
            share, nonce = self.coin.my_reveal()
            self._revealed = True
            out.append(Broadcast(m.CoinReveal(self.config.round, share, nonce)))
            for sender, early in sorted(self._early_reveals.items()):
                fault = self.coin.on_reveal(sender, early.share, early.nonce)
                if fault is not None:
                    return out + self._abort(f"coin: {fault.kind}", fault.culprits, fault.proved)
        if self.phase == "coin" and self.coin.value() is not None:
            out += self._start_tasks(now)
        if self.phase == "tasks" and self.plan is not None:
            results = {task: t.result() for task, t in self._transfers.items()}
            if all(r is not None for r in results.values()):
                out += self._sign(now, {t: r for t, r in results.items() if r is not None})
        if self.phase == "sign" and len(self._outcome_sigs) == len(self.others):
            out += self._finish()
        return out

    def _start_tasks(self, now: float) -> list[Effect]:
        assert self.vector is not None
        coin = self.coin.value()
        assert coin is not None
        self._enter("tasks", now)
        self.plan = make_plan(self.config.auction, self.vector, coin, self.config.providers, self.config.k,
                              context=self.config.context)
        self._transfers = {task: Transfer(task, members) for task, members in self.plan.tasks.items()}
        out: list[Effect] = [Wake(now + self.config.phase_timeout)]
        for task, members in self.plan.tasks.items():
            if self.me in members:
                try:
                    payload = self.plan.compute(task)
                except SolverError as exc:
                    return out + self._abort(f"task {task}: {exc}", (), False)
                self._transfers[task].on_value(self.me, payload)
                sig = self._identity.sign(result_bytes(self.config.round, task, payload))
                out.append(Broadcast(m.TaskResult(self.config.round, task, payload, sig)))
        for sender, held in sorted(self._early_results.items()):
            for task, payload in sorted(held.items()):
                step = self._take_result(sender, task, payload)
                if any(isinstance(e, Aborted) for e in step):
                    return out + step
        self._early_results.clear()
        return out

    def _sign(self, now: float, results: dict[str, bytes]) -> list[Effect]:
        assert self.plan is not None and self.vector is not None
        coin = self.coin.value()
        assert coin is not None
        try:
            allocation = self.plan.finish(results)
        except (PayloadError, SolverError) as exc:
            return self._abort(f"allocator: {exc}", (), False)
        self.outcome = Outcome(self.config.round, self.config.auction, self.vector.digest(), coin, allocation)
        digest = self.outcome.digest()
        self._enter("sign", now)
        return [
            Broadcast(m.OutcomeSig(self.config.round, digest, self._identity.sign(digest))),
            Wake(now + self.config.phase_timeout),
        ]

    def _finish(self) -> list[Effect]:
        assert self.outcome is not None and self.vector is not None
        mine = self.outcome.digest()
        wrong = tuple(p for p, (d, _) in self._outcome_sigs.items() if d != mine)
        if wrong:
            # Every step is deterministic from the agreed vector and coin: a different signed
            # digest is a signed wrong outcome.
            return self._abort("outcome: providers signed a different outcome", wrong, True)
        sigs = dict(self._outcome_sigs)
        sigs[self.me] = (mine, self._identity.sign(mine))
        signed = SignedOutcome(self.outcome, tuple((p, sigs[p][1]) for p in sorted(sigs)))
        self.phase = "done"
        self.result = Decided(signed, self.vector)
        return [self.result]

    def _enter(self, phase: str, now: float) -> None:
        self.phase, self.phase_started = phase, now

    def _timeout(self) -> list[Effect]:
        if self.phase == "agree":
            silent = tuple(
                p for p in self.others
                if p not in self._view_digests or (self._slow and len(self._chunks.get(p, {})) != self._chunk_totals.get(p, -1))
            )
        elif self.phase == "validate":
            silent = tuple(p for p in self.others if p not in self._vector_digests)
        elif self.phase == "coin":
            silent = self.coin.timeout().culprits
        elif self.phase == "tasks":
            silent = tuple(sorted({s for t in self._transfers.values() for s in t.missing()}))
        else:
            silent = tuple(p for p in self.others if p not in self._outcome_sigs)
        return self._abort(f"timeout in phase {self.phase}", tuple(p for p in silent if p != self.me), False)

    def _abort(self, reason: str, culprits: tuple[bytes, ...], proved: bool) -> list[Effect]:
        if self.phase in ("done", "aborted"):
            return []
        self.phase = "aborted"
        self.result = Aborted(reason, culprits, proved)
        return [self.result]
