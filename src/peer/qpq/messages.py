"""QPQ wire messages.  Both name their stream and round so a shell can route them.

A value on the wire is a fixed-point integer in [0, 2**32) (see
:mod:`peer.qpq.fixed`); a digest is 32 bytes and a nonce 16.  The shell adds the
origin signature (members that are not neighbours are reached by gossip), so a
relay can neither forge nor alter them; the machine trusts ``sender`` to be
the origin.
"""

from __future__ import annotations

from dataclasses import dataclass

from peer.qpq.decide import Level


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    """Phase 1 of a level: the sender's commitment to its declaration.

    At the winner level ``support`` is how many members of the sender's cluster
    took part in the cluster level (its value is the max of that many): the law
    the winner level tests it against.  0 at the cluster level.
    """

    stream: str
    round: int
    level: Level
    digest: bytes
    support: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Reveal:
    """Phase 2 of a level: the declaration and the nonce that open the commitment."""

    stream: str
    round: int
    level: Level
    value: int
    nonce: bytes


Message = Commit | Reveal
