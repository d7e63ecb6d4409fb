"""The one decision path: from one level's reveals to its winner.

Both the per-node machine (:mod:`peer.qpq.machine`) and the vectorised
simulator (:mod:`peer.qpq.fast`) call :func:`decide_level`; nothing else decides
who wins.  Given the same reveals and the same histories it returns the same
result on every member, because everything in it is either exact (integers,
hashes) or the same numpy computation on the same numbers.

Per slot:
- no valid reveal (``fault`` set): the slot forfeits this round, it cannot
  win, and nothing is added to its history (it declared nothing);
- otherwise the goodness-of-fit test runs on its window plus the new value,
  both mapped through the Beta(m, 1) CDF of the slot's *support* m (1 at the
  cluster level; at the winner level the number of members whose values the
  cluster winner beat, so a cluster with a silent member is tested against
  the right law).  A pass keeps the declared value, a failure replaces it with
  :func:`replacement_value` (the Beta(m, 1) quantile of a hash).  The mapped
  value joins the window either way, so a window mixes rounds of different
  supports correctly (every entry is uniform under honesty).
The winner is the arg max of the final values; equal values are ordered by a
hash of the transcript (never by id, which would favour some names forever).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum

import numpy as np

from peer.qpq.commit import replacement_value, tie_key, transcript_hash
from peer.qpq.fixed import beta_cdf
from peer.qpq.gof import GofConfig, gof_reject
from peer.qpq.history import HistoryStore


class Level(IntEnum):
    """The two levels of a round; 1 byte in every hash."""

    CLUSTER = 1
    WINNER = 2


class Fault(str, Enum):
    """Why a slot has no valid reveal, or what else a member is flagged for."""

    MISSING_COMMIT = "missing_commit"  # no commitment before the commit deadline
    MISSING_REVEAL = "missing_reveal"  # committed, no reveal before the reveal deadline
    BAD_REVEAL = "bad_reveal"  # the reveal does not open its commitment
    NO_CLAIM = "no_claim"  # winner level: nobody claimed to be this cluster's winner
    EQUIVOCATION = "equivocation"  # winner level: several members claimed the same cluster
    FAILED_TEST = "failed_test"  # a valid reveal that failed the goodness-of-fit test (replaced)
    LATE = "late"  # a message that arrived after its phase closed (ignored)
    FALSE_CLAIM = "false_claim"  # claimed its cluster's win although its cluster chose someone else
    WRONG_VALUE = "wrong_value"  # a cluster winner declared upwards a value other than its cluster's


@dataclass(frozen=True, slots=True)
class LevelResult:
    """One level's outcome, as every member computes it."""

    level: Level
    group: str
    slots: tuple[str, ...]
    entrants: tuple[str, ...]
    transcript: bytes
    declared: tuple[int | None, ...]
    final: tuple[int | None, ...]  # None: forfeited
    replaced: tuple[bool, ...]
    faults: tuple[Fault | None, ...]
    winner: int | None  # index into slots; None when every slot forfeited

    @property
    def winner_slot(self) -> str | None:
        return None if self.winner is None else self.slots[self.winner]

    @property
    def winner_entrant(self) -> str | None:
        return None if self.winner is None else self.entrants[self.winner]

    @property
    def winner_value(self) -> int | None:
        return None if self.winner is None else self.final[self.winner]

    @property
    def support(self) -> int:
        """How many slots took part (had a valid reveal): the winner beat support - 1 others."""
        return sum(1 for v in self.final if v is not None)


def decide_level(
    *,
    stream: str,
    round_no: int,
    level: Level,
    group: str,
    slots: Sequence[str],
    entrants: Sequence[str],
    values: Sequence[int | None],
    nonces: Sequence[bytes | None],
    faults: Sequence[Fault | None],
    shapes: Sequence[int],
    store: HistoryStore,
    gof: GofConfig,
) -> LevelResult:
    """Decide one level of one round and append the declarations to ``store``.

    ``slots`` must be in canonical (sorted) order; a slot with a fault must have
    value None.  ``shapes[i]`` is slot i's support: its value is tested against
    Beta(shapes[i], 1).
    """
    valid_values = [None if f is not None else v for v, f in zip(values, faults, strict=True)]
    transcript = transcript_hash(stream, round_no, int(level), group, slots, entrants, valid_values, nonces, shapes)
    ok = [i for i, f in enumerate(faults) if f is None]
    final: list[int | None] = [None] * len(slots)
    replaced = [False] * len(slots)
    if ok:
        rows = store.rows([slots[i] for i in ok])
        tested = [beta_cdf(values[i], shapes[i]) for i in ok]  # type: ignore[arg-type]
        new = np.array(tested, dtype=np.int64)
        reject = gof_reject(store.buf[rows], store.count[rows], new, gof)
        for j, i in enumerate(ok):
            if reject[j]:
                replaced[i] = True
                final[i] = replacement_value(transcript, slots[i], shapes[i])
            else:
                final[i] = values[i]
        store.append(rows, new.astype(np.uint32))
    winner = _arg_max(transcript, slots, final, ok)
    out_faults = tuple(Fault.FAILED_TEST if replaced[i] else faults[i] for i in range(len(slots)))
    return LevelResult(
        level=level, group=group, slots=tuple(slots), entrants=tuple(entrants), transcript=transcript,
        declared=tuple(valid_values), final=tuple(final), replaced=tuple(replaced), faults=out_faults,
        winner=winner,
    )


def _arg_max(transcript: bytes, slots: Sequence[str], final: Sequence[int | None], ok: list[int]) -> int | None:
    if not ok:
        return None
    best = max(final[i] for i in ok)  # type: ignore[type-var]
    tied = [i for i in ok if final[i] == best]
    if len(tied) == 1:
        return tied[0]
    return min(tied, key=lambda i: tie_key(transcript, slots[i]))
