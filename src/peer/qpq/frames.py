"""Counting the QPQ frames a real node hands to its links, beside Prop. 11's logical counts.

:mod:`peer.qpq.traffic` counts what the machines broadcast (one frame per
message and member).  On real nodes every broadcast is origin-signed gossip:
the origin sends it to each neighbour, and each node that sees it first
forwards it to every neighbour but the one it came from and the origin.  A
:class:`FrameTally` is fed each of those sends (``Forward`` effects on the
``qpq`` topic, :meth:`peer.node.node.Node._gossip_effects`) and keeps them
apart by origin (``own``: this node's message; ``relay``: another's it
forwards), level (``cluster`` / ``winner``) and kind (``commit`` /
``reveal``); the coordinator's one kickoff is ``own/kickoff`` or
``relay/kickoff``.  Frames are also kept per round, read from the payload,
so that a round's frames are counted exactly whenever they are sent (a late
relay of round r still counts for round r): the node logs round r - 1's
frames with its ``qpq_round`` event for round r (by then round r - 1's
floods are over) and the running totals in ``final``
(bench/qpq_frames_bench.py).
"""

from __future__ import annotations

from collections import Counter

from peer.qpq.decide import Level
from peer.qpq.messages import Commit
from peer.qpq.wire import KickoffWire, QpqDecodeError, decode

_LEVEL = {Level.CLUSTER: "cluster", Level.WINNER: "winner"}


MAX_OPEN_ROUNDS = 64  # rounds whose frames are kept until logged: bounded against a junk round number


def frame_kind(payload: bytes) -> str:
    """``"cluster/commit"``, ``"winner/reveal"``, ``"kickoff"``, or ``"invalid"`` (never forwarded twice)."""
    return _classify(payload)[0]


def _classify(payload: bytes) -> tuple[str, int | None]:
    try:
        msg = decode(payload)
    except QpqDecodeError:
        return "invalid", None
    if isinstance(msg, KickoffWire):
        return "kickoff", None
    return f"{_LEVEL[msg.level]}/{'commit' if isinstance(msg, Commit) else 'reveal'}", msg.round


class FrameTally:
    """Frames of QPQ gossip this node sent on its links, by ``own``/``relay``, level and kind."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.by_round: dict[int, Counter[str]] = {}  # rounds not logged yet

    def sent(self, payload: bytes, frames: int, *, own: bool) -> None:
        """``frames`` link frames carrying one envelope (one per neighbour it goes to)."""
        if frames <= 0:
            return
        kind, round_ = _classify(payload)
        key = f"{'own' if own else 'relay'}/{kind}"
        self.counts[key] += frames
        if round_ is None:
            return
        per_round = self.by_round.get(round_)
        if per_round is None:
            if len(self.by_round) >= MAX_OPEN_ROUNDS:
                return  # only in the totals: a flood of round numbers nobody logs
            per_round = self.by_round[round_] = Counter()
        per_round[key] += frames

    def take_round(self, round_: int) -> dict[str, int]:
        """Round ``round_``'s frames (sorted), forgotten here; earlier unlogged rounds are dropped too."""
        for stale in [r for r in self.by_round if r < round_]:
            del self.by_round[stale]
        return dict(sorted(self.by_round.pop(round_, Counter()).items()))

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))

    @property
    def own(self) -> int:
        return sum(v for k, v in self.counts.items() if k.startswith("own/"))

    @property
    def relay(self) -> int:
        return sum(v for k, v in self.counts.items() if k.startswith("relay/"))
