"""Small QPQ setups for the tests."""

from __future__ import annotations

from peer.qpq.clusters import chunk_membership
from peer.qpq.gof import GofConfig
from peer.qpq.machine import QpqConfig
from peer.qpq.preferences import Profile, parse_profile
from peer.qpq.setup import QpqSetup


def ids(n: int) -> list[str]:
    width = len(str(n - 1))
    return [f"p{i:0{width}d}" for i in range(n)]


def setup(
    n: int = 8, k: int = 2, *, rounds: int = 50, seed: int = 1, profiles: dict[str, str] | None = None,
    gof: GofConfig | None = None,
) -> QpqSetup:
    nodes = ids(n)
    parsed: dict[str, Profile] = {node: parse_profile(spec) for node, spec in (profiles or {}).items()}
    return QpqSetup(
        name="test", seed=seed, membership=chunk_membership(nodes, k), config=QpqConfig(gof=gof or GofConfig()),
        rounds=rounds, profiles=parsed,
    )
