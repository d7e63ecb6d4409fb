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
``relay/kickoff``.  The node logs the running totals with every
``qpq_round`` event and in ``final``, so a bench can take per-round
differences (bench/qpq_frames_bench.py).
"""

from __future__ import annotations

from collections import Counter

from peer.qpq.decide import Level
from peer.qpq.messages import Commit
from peer.qpq.wire import KickoffWire, QpqDecodeError, decode

_LEVEL = {Level.CLUSTER: "cluster", Level.WINNER: "winner"}


def frame_kind(payload: bytes) -> str:
    """``"cluster/commit"``, ``"winner/reveal"``, ``"kickoff"``, or ``"invalid"`` (never forwarded twice)."""
    try:
        msg = decode(payload)
    except QpqDecodeError:
        return "invalid"
    if isinstance(msg, KickoffWire):
        return "kickoff"
    return f"{_LEVEL[msg.level]}/{'commit' if isinstance(msg, Commit) else 'reveal'}"


class FrameTally:
    """Frames of QPQ gossip this node sent on its links, by ``own``/``relay``, level and kind."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def sent(self, payload: bytes, frames: int, *, own: bool) -> None:
        """``frames`` link frames carrying one envelope (one per neighbour it goes to)."""
        if frames > 0:
            self.counts[f"{'own' if own else 'relay'}/{frame_kind(payload)}"] += frames

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))

    @property
    def own(self) -> int:
        return sum(v for k, v in self.counts.items() if k.startswith("own/"))

    @property
    def relay(self) -> int:
        return sum(v for k, v in self.counts.items() if k.startswith("relay/"))
