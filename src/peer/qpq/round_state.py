"""Per-round bookkeeping of a QpqNode: what arrived, per level, and where the round stands."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from peer.qpq.decide import Fault, Level, LevelResult


class Phase(IntEnum):
    COMMIT = 0
    REVEAL = 1
    W_COMMIT = 2
    W_REVEAL = 3
    DONE = 4


@dataclass(slots=True)
class LevelState:
    commits: dict[str, bytes] = field(default_factory=dict)  # member (claimant) -> digest
    supports: dict[str, int] = field(default_factory=dict)  # winner level: claimant -> its cluster's support
    reveals: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # opened correctly
    bad: set[str] = field(default_factory=set)  # revealed something that does not open
    early: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # reveal before its commit


@dataclass(slots=True)
class RoundState:
    number: int
    started: bool = False
    t0: float = 0.0
    phase: Phase = Phase.COMMIT
    cluster: LevelState = field(default_factory=LevelState)
    winner: LevelState = field(default_factory=LevelState)
    cluster_result: LevelResult | None = None
    flagged: set[tuple[Level, str, Fault]] = field(default_factory=set)


def level_state(rnd: RoundState, level: Level) -> LevelState:
    return rnd.cluster if level is Level.CLUSTER else rnd.winner


def all_opened(state: LevelState) -> bool:
    return all(m in state.reveals or m in state.bad for m in state.commits)


def opening(state: LevelState, member: str) -> tuple[tuple[int | None, bytes | None], Fault | None]:
    if member not in state.commits:
        return (None, None), Fault.MISSING_COMMIT
    if member in state.bad:
        return (None, None), Fault.BAD_REVEAL
    if member not in state.reveals:
        return (None, None), Fault.MISSING_REVEAL
    return state.reveals[member], None


def inputs(
    state: LevelState, members: tuple[str, ...]
) -> tuple[list[int | None], list[bytes | None], list[Fault | None]]:
    values: list[int | None] = []
    nonces: list[bytes | None] = []
    faults: list[Fault | None] = []
    for m in members:
        (value, nonce), fault = opening(state, m)
        values.append(value)
        nonces.append(nonce)
        faults.append(fault)
    return values, nonces, faults
