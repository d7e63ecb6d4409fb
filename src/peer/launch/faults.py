"""Faults ``tools/launch`` injects into a run, and what became of them.

* ``--kill NAME@STAGE``: SIGKILL node NAME once its log shows STAGE (the
  launcher polls the logs every 50 ms, so the node may be a little further on;
  the report says which stage it had logged last when the kill landed).
* ``--behaviour NAME=SPEC``: start NAME as an adversary (``peer run
  --behaviour SPEC``, see :mod:`peer.node.adversary`); ``crash@STAGE`` kills
  itself exactly on entering the stage.
* ``--restart-after S``: S seconds after a killed or crashed node died, fork it
  again with the very same argv.  It recovers its ledger from disk.

Every node named in a fault is *faulty*: the run's outcome and ledgers are
judged on the honest nodes, and each faulty node's ledger copy is compared with
the honest one (it must never be forked).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from peer.node.adversary import Attack


class FaultSpecError(ValueError):
    """A --kill or --behaviour spec is malformed or names an unknown node."""


def parse_kill(text: str, nodes: set[str]) -> tuple[str, str]:
    # The node's code (and, through it, scipy) only when a fault is asked for: the launcher's
    # own start-up imported it for every launch (a third of its import time).
    from peer.node.adversary import STAGES

    name, at, stage = text.rpartition("@")
    if not at or not name:
        raise FaultSpecError(f"--kill {text!r}: expected NAME@STAGE")
    if name not in nodes:
        raise FaultSpecError(f"--kill {text!r}: no node named {name!r} in the scenario")
    if stage not in STAGES:
        raise FaultSpecError(f"--kill {text!r}: STAGE must be one of {', '.join(STAGES)}")
    return name, stage


def parse_behaviour(text: str, nodes: set[str]) -> tuple[str, Attack]:
    from peer.node.adversary import Attack, AttackError

    name, eq, spec = text.partition("=")
    if not eq or not name:
        raise FaultSpecError(f"--behaviour {text!r}: expected NAME=SPEC")
    if name not in nodes:
        raise FaultSpecError(f"--behaviour {text!r}: no node named {name!r} in the scenario")
    try:
        return name, Attack.parse(spec)
    except AttackError as exc:
        raise FaultSpecError(f"--behaviour {text!r}: {exc}") from None


@dataclass
class Faults:
    kills: dict[str, str] = field(default_factory=dict)  # node -> stage
    behaviours: dict[str, Attack] = field(default_factory=dict)
    restart_after: float | None = None
    # What happened (times are seconds since launch):
    killed: dict[str, dict[str, Any]] = field(default_factory=dict)
    died: dict[str, float] = field(default_factory=dict)  # node -> monotonic time it was seen dead
    restarted: dict[str, float] = field(default_factory=dict)  # node -> monotonic time of the re-fork
    partitioned: bool = False  # --partition: hosts are cut off and healed during the run (peer.launch.remote)

    @classmethod
    def parse(cls, kills: list[str], behaviours: list[str], restart_after: float | None, nodes: set[str]) -> Faults:
        out = cls(restart_after=restart_after)
        for text in kills:
            name, stage = parse_kill(text, nodes)
            if name in out.kills:
                raise FaultSpecError(f"--kill: {name} given twice")
            out.kills[name] = stage
        for text in behaviours:
            name, attack = parse_behaviour(text, nodes)
            if name in out.behaviours:
                raise FaultSpecError(f"--behaviour: {name} given twice")
            out.behaviours[name] = attack
        if restart_after is not None and not (out.kills or out.crashers):
            raise FaultSpecError("--restart-after needs a --kill or a crash@STAGE behaviour")
        return out

    @property
    def active(self) -> bool:
        return bool(self.kills or self.behaviours or self.partitioned)

    @property
    def crashers(self) -> set[str]:
        return {n for n, a in self.behaviours.items() if a.kind == "crash"}

    @property
    def faulty(self) -> set[str]:
        return set(self.kills) | set(self.behaviours)

    def expected_death(self, name: str, code: int) -> bool:
        """A SIGKILL we sent, or one a crash@STAGE node sent itself."""
        return code == -signal.SIGKILL and (name in self.killed or name in self.crashers)

    def restarts_due(self, now: float) -> list[str]:
        if self.restart_after is None:
            return []
        return sorted(n for n, t in self.died.items() if n not in self.restarted and now - t >= self.restart_after)

    def restarts_pending(self) -> bool:
        return self.restart_after is not None and any(n not in self.restarted for n in self.died)

    def notes(self) -> dict[str, str]:
        """Per faulty node, one line: what it was told to do and what happened."""
        out: dict[str, str] = {}
        for name in sorted(self.faulty):
            parts = []
            if name in self.kills:
                k = self.killed.get(name)
                parts.append(f"killed at {k['stage']} (last logged stage {k['last_logged']}, at {k['at']:.2f} s)"
                             if k else f"--kill {name}@{self.kills[name]}: never reached that stage, not killed")
            if name in self.behaviours:
                parts.append(f"behaviour {self.behaviours[name]}")
            if name in self.died and name not in self.killed:
                parts.append("died")
            if name in self.restarted:
                parts.append(f"restarted {self.restarted[name] - self.died[name]:.1f} s after it died")
            out[name] = "; ".join(parts)
        return out

    def to_json(self, t0: float) -> dict[str, Any]:
        return {
            "kills": {n: f"{n}@{s}" for n, s in self.kills.items()},
            "behaviours": {n: str(a) for n, a in self.behaviours.items()},
            "restart_after": self.restart_after,
            "killed": self.killed,
            "died_at": {n: round(t - t0, 3) for n, t in self.died.items()},
            "restarted_at": {n: round(t - t0, 3) for n, t in self.restarted.items()},
            "notes": self.notes(),
        }
