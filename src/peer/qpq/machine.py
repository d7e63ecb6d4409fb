"""One node's side of a multilevel QPQ resource stream, as a sans-I/O state machine.

Theory of operation
-------------------
The shell calls ``start_round(r, preference, now)`` once per resource (after
round r-1 is done) and feeds ``receive(sender, msg, now)`` and
``on_timer(now)``; the machine returns effects (:mod:`peer.qpq.effects`).  It
never reads a clock or touches a socket.  ``sender`` is the message's origin
(the shell checks origin signatures; gossip relays are invisible here).

A round has four phases, each closing when everything it waits for has
arrived or at its deadline ``t0 + (i+1) * phase`` (t0 = the round's start, the
same on every node: the synchronous model of the paper's relay):

1. cluster commit: broadcast Commit(CLUSTER, H(value, nonce)) to my cluster;
2. cluster reveal: once every member committed (or time is up) broadcast
   Reveal(value, nonce); once every committed member revealed (or time is up)
   :func:`decide_level` picks the cluster winner;
3. winner commit: the cluster winner broadcasts Commit(WINNER) of its final
   cluster value, with its cluster's support, to every player.  This phase
   always runs to its deadline: the set of claims must be the same on every
   node even when a cluster produces two (see below);
4. winner reveal: once every claimant revealed (or time is up) every player
   decides the winner level alike, records the allocation and reports
   ``RoundDone``.
Phases 1, 2 and 4 close early when complete: the set they wait for is fixed
(the cluster's members, the committed members, the claimants), so closing
early cannot make two nodes see different inputs.
With k = 1 the round ends after phase 2: that is plain QPQ.

Faults have defined outcomes, so a round always completes: a member with no
commitment, no reveal in time, or a reveal that does not open its commitment
forfeits the round (it cannot win, nothing enters its history) and is
flagged; a message after its phase closed is ignored and flagged LATE.  At
the winner level, non-members of a cluster cannot check who won it, so every
claimant counts, several claimants for one cluster forfeit that cluster
(EQUIVOCATION), and the cluster's own members flag a false claimant
(FALSE_CLAIM) or a winner that declares upwards a value other than its final
cluster value (WRONG_VALUE): the outcome stays the same on every node and the
evidence is on record.

Malformed or contradictory input (wrong stream, a round far out of range, a
non-member, a second different commitment) raises RemoteProtocolError before
anything is changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peer.errors import LocalProtocolError, RemoteProtocolError
from peer.qpq.clusters import Membership
from peer.qpq.commit import DIGEST_BYTES, NONCE_BYTES, commit_digest, commit_ok, derive_nonce
from peer.qpq.decide import Fault, Level, LevelResult, decide_level
from peer.qpq.effects import Broadcast, Decided, Effect, Flag, Record, RoundDone, Wake
from peer.qpq.fixed import value_ok
from peer.qpq.gof import GofConfig
from peer.qpq.history import HistoryStore
from peer.qpq.ledger import AllocationEntry, stream_genesis
from peer.qpq.messages import Commit, Message, Reveal
from peer.qpq.preferences import HONEST, Profile
from peer.qpq.round_state import LevelState, Phase, RoundState, all_opened, inputs, level_state, opening


@dataclass(frozen=True, slots=True)
class QpqConfig:
    gof: GofConfig = field(default_factory=GofConfig)
    phase: float = 1.0  # length of each phase, in the shell's clock units; must exceed one transit


class QpqNode:
    """One node's state in one resource stream (all its rounds, one at a time)."""

    def __init__(
        self, node_id: str, membership: Membership, *, stream: str, secret: bytes,
        config: QpqConfig | None = None, profile: Profile = HONEST,
    ) -> None:
        if node_id not in membership.cluster_of:
            raise LocalProtocolError(f"{node_id} is not a member")
        if not profile.takes_part:
            raise LocalProtocolError(f"{node_id}: an absent node has no machine (the simulator drops its frames)")
        self.id = node_id
        self.membership = membership
        self.stream = stream
        self.config = config or QpqConfig()
        self.profile = profile
        self._secret = secret
        self.cluster = membership.cluster_of[node_id]
        self.members = membership.clusters[self.cluster]
        self.multilevel = membership.k > 1
        self._cluster_peers = tuple(m for m in self.members if m != node_id)
        self._all_peers = tuple(m for m in membership.nodes if m != node_id)
        window = self.config.gof.window
        self.cluster_history = HistoryStore(self.members, window)
        self.winner_history = HistoryStore(membership.ids, window)
        self.finished = -1  # last round done
        self.head = stream_genesis(stream, membership.digest)  # hash of the last allocation entry
        self._rounds: dict[int, RoundState] = {}
        self._last: RoundState | None = None

    # ------------------------------------------------------------------ API

    def start_round(self, round_no: int, preference: int, now: float) -> list[Effect]:
        """Declare for resource ``round_no``; ``preference`` is my normalised value (fixed point)."""
        if round_no != self.finished + 1:
            raise LocalProtocolError(f"round {round_no} cannot start: round {self.finished} is the last done")
        if not value_ok(preference):
            raise LocalProtocolError(f"preference out of range: {preference!r}")
        rnd = self._rounds.setdefault(round_no, RoundState(round_no))
        if rnd.started:
            raise LocalProtocolError(f"round {round_no} already started")
        rnd.started, rnd.t0 = True, now
        value = self.profile.declare(preference, self._secret, self.stream, round_no)
        effects = self._commit(rnd, Level.CLUSTER, value)
        return effects + [Wake(now + self.config.phase)] + self._advance(rnd, now)

    def next_deadline(self) -> float | None:
        rnd = self._rounds.get(self.finished + 1)
        if rnd is None or not rnd.started or rnd.phase is Phase.DONE:
            return None
        return rnd.t0 + (int(rnd.phase) + 1) * self.config.phase

    def on_timer(self, now: float) -> list[Effect]:
        rnd = self._rounds.get(self.finished + 1)
        if rnd is None or not rnd.started:
            return []
        return self._advance(rnd, now)

    def receive(self, sender: str, msg: Message, now: float) -> list[Effect]:
        """Apply one message from ``sender`` (its origin).  Raises RemoteProtocolError; nothing changed then."""
        self._check(sender, msg)
        if msg.round <= self.finished:  # the round is over here: defined outcome, ignored
            assert self._last is not None
            return self._late(self._last, Level(msg.level), sender)
        rnd = self._rounds.setdefault(msg.round, RoundState(msg.round))
        level = Level(msg.level)
        # The phase this message belongs to: 0/1 cluster commit/reveal, 2/3 winner commit/reveal.
        phase = (0 if level is Level.CLUSTER else 2) + (1 if isinstance(msg, Reveal) else 0)
        if rnd.started and int(rnd.phase) > phase:
            return self._late(rnd, level, sender)
        state = level_state(rnd, level)
        if isinstance(msg, Commit):
            state.commits[sender] = msg.digest
            state.supports[sender] = msg.support
            early = state.early.pop(sender, None)
            if early is not None:
                self._open(state, rnd.number, level, sender, *early)
        elif sender in state.commits:
            self._open(state, rnd.number, level, sender, msg.value, msg.nonce)
        else:
            state.early[sender] = (msg.value, msg.nonce)
        effects: list[Effect] = []  # a bad reveal is flagged when the level is decided
        if rnd.number == self.finished + 1 and rnd.started:
            effects += self._advance(rnd, now)
        return effects

    # ------------------------------------------------------------ validation

    def _check(self, sender: str, msg: Message) -> None:
        if not isinstance(msg, (Commit, Reveal)):
            raise RemoteProtocolError(sender, f"unexpected message {type(msg).__name__}")
        if msg.stream != self.stream:
            raise RemoteProtocolError(sender, f"unknown stream {msg.stream!r}")
        if sender not in self.membership.cluster_of or sender == self.id:
            raise RemoteProtocolError(sender, "not another member of this stream")
        if not isinstance(msg.round, int) or not max(self.finished, 0) <= msg.round <= self.finished + 2:
            raise RemoteProtocolError(sender, f"round {msg.round!r} is not open here")
        if msg.level not in (Level.CLUSTER, Level.WINNER):
            raise RemoteProtocolError(sender, f"unknown level {msg.level!r}")
        level = Level(msg.level)
        if level is Level.CLUSTER and self.membership.cluster_of[sender] != self.cluster:
            raise RemoteProtocolError(sender, "cluster-level message from outside my cluster")
        if level is Level.WINNER and not self.multilevel:
            raise RemoteProtocolError(sender, "winner-level message in single-level QPQ")
        if msg.round == self.finished:
            return  # late: judged (and ignored) without touching state
        rnd = self._rounds.get(msg.round)
        state = None if rnd is None else level_state(rnd, level)
        if isinstance(msg, Commit):
            if not isinstance(msg.digest, bytes) or len(msg.digest) != DIGEST_BYTES:
                raise RemoteProtocolError(sender, "commitment is not a 32-byte digest")
            if level is Level.CLUSTER and msg.support != 0:
                raise RemoteProtocolError(sender, "a cluster-level commitment carries no support")
            cap = self.membership.size(self.membership.cluster_of[sender])
            if level is Level.WINNER and (not isinstance(msg.support, int) or not 1 <= msg.support <= cap):
                raise RemoteProtocolError(sender, f"support must be in 1..{cap}, got {msg.support!r}")
            if state is not None and sender in state.commits and (
                state.commits[sender] != msg.digest or state.supports[sender] != msg.support
            ):
                raise RemoteProtocolError(sender, "a second, different commitment")
        else:
            if not value_ok(msg.value) or not isinstance(msg.nonce, bytes) or len(msg.nonce) != NONCE_BYTES:
                raise RemoteProtocolError(sender, "malformed reveal")
            if state is not None:
                prior = state.reveals.get(sender) or state.early.get(sender)
                if sender in state.bad or (prior is not None and prior != (msg.value, msg.nonce)):
                    raise RemoteProtocolError(sender, "a second reveal")

    # --------------------------------------------------------------- phases

    def _commit(self, rnd: RoundState, level: Level, value: int, support: int = 0) -> list[Effect]:
        nonce = derive_nonce(self._secret, self.stream, rnd.number, int(level))
        digest = commit_digest(self.stream, rnd.number, int(level), self.id, value, nonce)
        state = level_state(rnd, level)
        state.commits[self.id] = digest
        state.supports[self.id] = support
        state.early[self.id] = (value, nonce)  # my own opening, revealed when the phase closes
        msg = Commit(stream=self.stream, round=rnd.number, level=level, digest=digest, support=support)
        return [Broadcast(*self._audience(level), msg)]

    def _reveal(self, rnd: RoundState, level: Level) -> list[Effect]:
        state = level_state(rnd, level)
        mine = state.early.pop(self.id, None)
        if mine is None or not self.profile.reveals:
            return []
        value = self.profile.reveal_value(mine[0]) if level is Level.CLUSTER else mine[0]
        self._open(state, rnd.number, level, self.id, value, mine[1])
        msg = Reveal(stream=self.stream, round=rnd.number, level=level, value=value, nonce=mine[1])
        return [Broadcast(*self._audience(level), msg)]

    def _audience(self, level: Level) -> tuple[str, tuple[str, ...]]:
        if level is Level.CLUSTER:
            return f"cluster:{self.cluster}", self._cluster_peers
        return "all", self._all_peers

    def _open(self, state: LevelState, round_no: int, level: Level, member: str, value: int, nonce: bytes) -> None:
        if commit_ok(state.commits[member], self.stream, round_no, int(level), member, value, nonce):
            state.reveals[member] = (value, nonce)
        else:
            state.bad.add(member)

    def _advance(self, rnd: RoundState, now: float) -> list[Effect]:
        effects: list[Effect] = []
        deadline = lambda: rnd.t0 + (int(rnd.phase) + 1) * self.config.phase  # noqa: E731
        while rnd.phase is not Phase.DONE:
            due = now >= deadline()
            if rnd.phase is Phase.COMMIT:
                if not (due or len(rnd.cluster.commits) == len(self.members)):
                    break
                rnd.phase = Phase.REVEAL
                effects += self._reveal(rnd, Level.CLUSTER)
            elif rnd.phase is Phase.REVEAL:
                if not (due or all_opened(rnd.cluster)):
                    break
                effects += self._decide_cluster(rnd)
            elif rnd.phase is Phase.W_COMMIT:
                # Never early: a second claim for a cluster (a late or lying member) must be seen
                # by every node, or some would call the cluster equivocating and others not.
                if not due:
                    break
                rnd.phase = Phase.W_REVEAL
                effects += self._reveal(rnd, Level.WINNER)
            else:
                if not (due or all_opened(rnd.winner)):
                    break
                effects += self._decide_winners(rnd)
            if rnd.phase is Phase.DONE:
                break
            effects.append(Wake(deadline()))
        return effects

    def _decide_cluster(self, rnd: RoundState) -> list[Effect]:
        state = rnd.cluster
        values, nonces, faults = inputs(state, self.members)
        result = decide_level(
            stream=self.stream, round_no=rnd.number, level=Level.CLUSTER, group=self.cluster, slots=self.members,
            entrants=self.members, values=values, nonces=nonces, faults=faults, shapes=(1,) * len(self.members),
            store=self.cluster_history, gof=self.config.gof,
        )
        rnd.cluster_result = result
        effects: list[Effect] = [Decided(rnd.number, result)]
        effects += [self._flag(rnd, Level.CLUSTER, m, f) for m, f in zip(self.members, result.faults) if f is not None]
        if not self.multilevel:
            return effects + self._finish(rnd, result, self.cluster)
        rnd.phase = Phase.W_COMMIT
        if result.winner_entrant == self.id:
            effects += self._commit(rnd, Level.WINNER, result.winner_value, result.support)  # type: ignore[arg-type]
        return effects

    def _decide_winners(self, rnd: RoundState) -> list[Effect]:
        state = rnd.winner
        by_cluster: dict[str, list[str]] = {}
        for claimant in sorted(state.commits):  # a reveal without a commitment is no claim
            by_cluster.setdefault(self.membership.cluster_of[claimant], []).append(claimant)
        effects: list[Effect] = []
        entrants, values, nonces, faults, shapes = [], [], [], [], []
        for cid in self.membership.ids:
            claimants = by_cluster.get(cid, [])
            fault: Fault | None = None
            value = nonce = None
            if not claimants:
                fault = Fault.NO_CLAIM
            elif len(claimants) > 1:
                fault = Fault.EQUIVOCATION
                effects += [self._flag(rnd, Level.WINNER, c, Fault.EQUIVOCATION) for c in claimants]
            else:
                (value, nonce), fault = opening(state, claimants[0])
            entrants.append(claimants[0] if len(claimants) == 1 else "")
            shapes.append(state.supports[claimants[0]] if len(claimants) == 1 else 1)
            values.append(value)
            nonces.append(nonce)
            faults.append(fault)
        effects += self._police_my_cluster(rnd, by_cluster.get(self.cluster, []))
        result = decide_level(
            stream=self.stream, round_no=rnd.number, level=Level.WINNER, group="winners", slots=self.membership.ids,
            entrants=entrants, values=values, nonces=nonces, faults=faults, shapes=shapes,
            store=self.winner_history, gof=self.config.gof,
        )
        effects.insert(0, Decided(rnd.number, result))
        for cid, entrant, f in zip(self.membership.ids, entrants, result.faults):
            if f in (Fault.NO_CLAIM,):
                effects.append(self._flag(rnd, Level.WINNER, cid, f))  # no member to name: the cluster
            elif f is not None and f is not Fault.EQUIVOCATION:
                effects.append(self._flag(rnd, Level.WINNER, entrant, f))
        return effects + self._finish(rnd, result, result.winner_slot or "")

    def _police_my_cluster(self, rnd: RoundState, claimants: list[str]) -> list[Effect]:
        """Members of a cluster know its winner: flag a false claim or a changed value (outcome unchanged)."""
        result = rnd.cluster_result
        if result is None:
            return []
        effects: list[Effect] = []
        for c in claimants:
            if c != result.winner_entrant:
                effects.append(self._flag(rnd, Level.WINNER, c, Fault.FALSE_CLAIM))
            elif rnd.winner.supports[c] != result.support or (
                c in rnd.winner.reveals and rnd.winner.reveals[c][0] != result.winner_value
            ):
                effects.append(self._flag(rnd, Level.WINNER, c, Fault.WRONG_VALUE))
        return effects

    def _finish(self, rnd: RoundState, result: LevelResult, cluster: str) -> list[Effect]:
        winner = result.winner_entrant or ""
        entry = AllocationEntry(
            stream=self.stream, round=rnd.number, winner=winner, cluster=cluster if winner else "",
            value=result.winner_value or 0, transcript=result.transcript.hex(),
            membership=self.membership.digest, prev=self.head,
        )
        self.head = entry.hash
        rnd.phase = Phase.DONE
        self.finished = rnd.number
        self._last = self._rounds.pop(rnd.number)
        return [Record(entry), RoundDone(rnd.number, winner)]

    # --------------------------------------------------------------- helpers

    def _flag(self, rnd: RoundState, level: Level, member: str, reason: Fault) -> Flag:
        rnd.flagged.add((level, member, reason))
        return Flag(rnd.number, level, member, reason)

    def _late(self, rnd: RoundState, level: Level, sender: str) -> list[Effect]:
        if (level, sender, Fault.LATE) in rnd.flagged:
            return []
        return [self._flag(rnd, level, sender, Fault.LATE)]
