"""Multilevel QPQ on a real node: the shell around :class:`peer.qpq.machine.QpqNode`.

Theory of operation
-------------------
Every QPQ message (a commitment or a reveal) goes to members that are mostly
not neighbours, so all of them travel as origin-signed gossip (topic
``qpq``): the gossip signature authenticates the origin, a relay can neither
forge nor alter them, and the plan maps each origin key to its member name.
Members are named as in the scenario, so the machine's hashes, tie-breaks and
ledger entries are those of ``peer qpq sim`` on the same scenario, and a
launch can be checked against the simulator round by round.

The paper's rounds are synchronous: round r starts at the same time t0 on
every node and phase i closes at t0 + (i + 1) * phase.  Real nodes get there
with the wall clock they share (here: one host; across hosts: NTP): a
coordinator floods a signed kickoff naming the start time, and round r starts
at start + r * round_length.  The machine is fed wall-clock times.

Each allocation the machine records is signed with the node's own key and
appended, fsync'd, to an append-only file ``DATA_DIR/qpq/<stream>.ndjson``;
:func:`read_allocations` re-verifies a copy offline (chain and signatures).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peer.errors import PeerError, RemoteProtocolError
from peer.net.identity import Identity
from peer.qpq.commit import sim_secret
from peer.qpq.decide import Level
from peer.qpq.gof import critical_values
from peer.qpq.effects import Broadcast, Decided, Effect, Flag, Record, RoundDone, Wake
from peer.qpq.ledger import AllocationEntry, SignedAllocation, sign_allocation, stream_genesis, verify_allocation, verify_allocation_chain
from peer.qpq.machine import QpqConfig, QpqNode
from peer.qpq.preferences import preferences
from peer.qpq.scenario import load_qpq_scenario
from peer.qpq.setup import QpqSetup
# The wire is peer.qpq.wire: its hardened decoder checks depth and size first and raises
# QpqDecodeError (a ValueError) and nothing else.  Re-exported for node_shell.
from peer.qpq.wire import KickoffWire, QpqWire, decode, encode  # noqa: F401

TOPIC = "qpq"
PHASES = 4  # cluster commit, cluster reveal, winner commit, winner reveal


class QpqPlanError(PeerError):
    """A QPQ plan file is malformed or does not fit this node."""


# ------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class QpqPlan:
    """What a node needs to take part in a launched QPQ stream (written by ``tools/launch``)."""

    scenario: Path
    me: str
    keys: dict[str, str]  # member name -> public key hex
    rounds: int
    phase: float
    coordinator: str
    lead: float = 1.0  # seconds between the kickoff and round 0
    derived_secret: bool = True  # launch runs replay exactly; real deployments use random secrets
    # Every cluster is connected within itself, so its members alone can relay its
    # cluster-level messages (the launcher checks this on the graph).
    scoped: bool = False

    @staticmethod
    def load(path: Path) -> QpqPlan:
        try:
            data = json.loads(Path(path).read_text())
            plan = QpqPlan(
                scenario=Path(data["scenario"]), me=str(data["me"]), keys={str(k): str(v) for k, v in data["keys"].items()},
                rounds=int(data["rounds"]), phase=float(data["phase"]), coordinator=str(data["coordinator"]),
                lead=float(data.get("lead", 1.0)), derived_secret=bool(data.get("derived_secret", True)),
                scoped=bool(data.get("scoped", False)),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise QpqPlanError(f"{path}: not a QPQ plan: {exc}") from None
        if plan.rounds < 1 or plan.phase <= 0 or plan.me not in plan.keys or plan.coordinator not in plan.keys:
            raise QpqPlanError(f"{path}: rounds, phase, me or coordinator out of range")
        return plan

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps({
            "scenario": str(self.scenario), "me": self.me, "keys": self.keys, "rounds": self.rounds,
            "phase": self.phase, "coordinator": self.coordinator, "lead": self.lead,
            "derived_secret": self.derived_secret, "scoped": self.scoped,
        }, indent=1))

    @property
    def round_length(self) -> float:
        return PHASES * self.phase + self.phase / 2  # slack so a round never overlaps the next start


_SETUPS: dict[tuple[str, int, float], QpqSetup] = {}


def setup_for(plan: QpqPlan) -> QpqSetup:
    """The stream's setup from the plan's scenario.

    Cached per process: a launcher that calls this before forking hands every
    child the clustering (and, through ``warm``, the KS tables) for free.
    """
    key = (str(plan.scenario), plan.rounds, plan.phase)
    if key not in _SETUPS:
        _SETUPS[key] = _build_setup(plan)
    return _SETUPS[key]


def warm(setup: QpqSetup) -> None:
    """Compute what the first KS test would otherwise compute inside a phase (~0.4 s of scipy)."""
    gof = setup.config.gof
    if gof.test == "ks":
        critical_values(gof.threshold, gof.window + 1)


def _build_setup(plan: QpqPlan) -> QpqSetup:
    setup = load_qpq_scenario(plan.scenario)
    config = QpqConfig(gof=setup.config.gof, phase=plan.phase)
    return QpqSetup(
        name=setup.name, seed=setup.seed, membership=setup.membership, config=config, rounds=plan.rounds,
        distributions=setup.distributions, profiles=setup.profiles, stream=setup.stream, graph=setup.graph,
        source=setup.source,
    )


# ------------------------------------------------------------------ the shell


class QpqShell:
    """Drives one node's QpqNode; the Node calls it and carries out what it returns."""

    def __init__(self, plan: QpqPlan, identity: Identity, data_dir: Path) -> None:
        self.plan = plan
        self.setup = setup_for(plan)
        self.identity = identity
        if plan.keys.get(plan.me) != identity.public_hex:
            raise QpqPlanError(f"the plan names {plan.me} with another key than this node's")
        membership = self.setup.membership
        if set(plan.keys) != set(membership.nodes):
            raise QpqPlanError("the plan's members are not the scenario's")
        self.name_of = {key: name for name, key in plan.keys.items()}
        self.profile = self.setup.profile(plan.me)
        secret = sim_secret(self.setup.seed, plan.me) if plan.derived_secret else os.urandom(32)
        self.machine: QpqNode | None = (
            QpqNode(plan.me, membership, stream=self.setup.stream, secret=secret, config=self.setup.config,
                    profile=self.profile)
            if self.profile.takes_part else None
        )
        self.cluster = membership.cluster_of[plan.me]
        self.start_at: float | None = None
        self.next_round = 0
        self.wins = 0
        self.flags = 0
        self.allocations: list[AllocationEntry] = []
        self.done = False
        self.path = data_dir / "qpq" / f"{_safe(self.setup.stream)}.ndjson"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._prefs = preferences(self.setup.distribution(plan.me), self.setup.seed, plan.me, 0, plan.rounds)[1]
        # Now, not inside a phase where it would make this node miss a deadline.
        warm(self.setup)

    # -- time

    def kickoff(self, wall_now: float) -> bytes:
        """The coordinator's kickoff payload; also schedules our own rounds."""
        start = wall_now + self.plan.lead
        self.start_at = start
        return encode(KickoffWire(self.setup.stream, int(start * 1000)))

    def next_deadline(self) -> float | None:
        if self.start_at is None or self.done:
            return None
        times = []
        if self.machine is not None and (d := self.machine.next_deadline()) is not None:
            times.append(d)
        if self.next_round < self.plan.rounds:
            times.append(self.start_at + self.next_round * self.plan.round_length)
        return min(times) if times else None

    def on_timer(self, wall_now: float) -> list[Effect]:
        effects: list[Effect] = []
        if self.start_at is None or self.done:
            return effects
        if self.machine is not None:
            effects += self.machine.on_timer(wall_now)
        while self.next_round < self.plan.rounds and wall_now >= self.start_at + self.next_round * self.plan.round_length:
            r = self.next_round
            if self.machine is not None and self.machine.finished != r - 1:
                break  # round r-1 is not over here yet; its phases end before the slot's slack runs out
            self.next_round += 1
            if self.machine is not None:
                t0 = self.start_at + r * self.plan.round_length
                effects += self.machine.start_round(r, int(self._prefs[r]), t0)
                effects += self.machine.on_timer(wall_now)
        if self.machine is None and self.next_round >= self.plan.rounds:
            self.done = True
        return effects

    # -- input

    def on_payload(self, origin_hex: str, payload: bytes, wall_now: float) -> list[Effect]:
        """A delivered gossip payload on the QPQ topic.  Raises ValueError / RemoteProtocolError."""
        msg = decode(payload)
        sender = self.name_of.get(origin_hex)
        if sender is None:
            raise ValueError("QPQ message from a key that is not a member")
        if isinstance(msg, KickoffWire):
            if sender != self.plan.coordinator or msg.stream != self.setup.stream:
                raise ValueError("kickoff from a member that is not the coordinator")
            if self.start_at is None:
                self.start_at = msg.start_ms / 1000
            return []
        if self.machine is None:
            return []
        if msg.level is Level.CLUSTER and self.setup.membership.cluster_of.get(sender) != self.cluster:
            return []  # flooded past us to its own cluster: not ours to judge
        return self.machine.receive(sender, msg, wall_now)

    def relays(self, origin_hex: str, payload: bytes) -> bool:
        """Should this node forward a QPQ envelope it received?

        Everything is flooded unless the plan says clusters are internally
        connected: then a cluster-level message is relayed only by members of
        its cluster, which cuts a phase's frames from about n * 2|E| to about
        the sum of the clusters' own edges, and still reaches every member.
        """
        if not self.plan.scoped:
            return True
        try:
            msg = decode(payload)
        except ValueError:
            return False  # it will be refused on delivery too
        if isinstance(msg, KickoffWire) or msg.level is Level.WINNER:
            return True
        sender = self.name_of.get(origin_hex)
        return sender is not None and self.setup.membership.cluster_of.get(sender) == self.cluster

    # -- what the effects mean to the shell

    def record(self, entry: AllocationEntry) -> dict[str, Any]:
        """Sign and append one allocation (fsync); returns the log fields.  Blocking: run in a thread."""
        signed = sign_allocation(self.identity, entry)
        line = json.dumps({**entry.to_json(), "signer": signed.signer, "signature": signed.signature.hex()})
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.allocations.append(entry)
        return {"round": entry.round, "winner": entry.winner, "cluster": entry.cluster, "entry": entry.hash}

    def round_done(self, effect: RoundDone) -> None:
        if effect.winner == self.plan.me:
            self.wins += 1
        if effect.round + 1 >= self.plan.rounds:
            self.done = True


def read_allocations(path: Path, setup: QpqSetup, signer: str) -> tuple[list[AllocationEntry], list[str]]:
    """Load and verify one node's allocation file: (entries, problems)."""
    problems: list[str] = []
    entries: list[AllocationEntry] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        return [], [f"{path}: {exc.strerror or exc}"]
    for number, line in enumerate(lines, start=1):
        try:
            data = json.loads(line)
            entry = AllocationEntry(
                stream=data["stream"], round=data["round"], winner=data["winner"], cluster=data["cluster"],
                value=data["value"], transcript=data["transcript"], membership=data["membership"], prev=data["prev"],
            )
            signed_ok = data["signer"] == signer and verify_allocation(
                SignedAllocation(entry, data["signer"], bytes.fromhex(data["signature"])))
        except (ValueError, KeyError, TypeError) as exc:
            if number == len(lines):
                problems.append(f"line {number}: torn tail ignored ({exc})")
                break
            problems.append(f"line {number}: unreadable: {exc}")
            continue
        if not signed_ok:
            problems.append(f"round {entry.round}: signature does not verify")
        entries.append(entry)
    genesis = stream_genesis(setup.stream, setup.membership.digest)
    problem = verify_allocation_chain(genesis, entries)
    if problem:
        problems.append(problem)
    return entries, problems


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "stream"


__all__ = [
    "Broadcast", "Decided", "Flag", "QpqPlan", "QpqPlanError", "QpqShell", "Record", "RemoteProtocolError",
    "RoundDone", "TOPIC", "Wake", "read_allocations",
]
