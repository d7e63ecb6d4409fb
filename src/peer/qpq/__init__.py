"""Multilevel QPQ: payment-free allocation of a stream of resources (docs/qpq.md).

For a node shell:

- :class:`QpqNode` (``peer.qpq.machine``): one node's sans-I/O machine for a
  resource stream; ``start_round``, ``receive``, ``on_timer``, ``next_deadline``.
- its messages (``Commit``, ``Reveal``) and effects (``Broadcast``, ``Wake``,
  ``Decided``, ``Flag``, ``Record``, ``RoundDone``);
- ``Membership`` and ``auto_membership`` (every node derives the same clusters);
- ``AllocationEntry``, ``sign_allocation``, ``verify_allocation``,
  ``verify_allocation_chain`` (what goes on the ledger);
- ``Profile``/``Distribution`` and ``preferences`` (raw value -> normalised preference).

For runs in one process: ``run_fast`` (one decision per cluster), ``run_machines``
(every node's machine), ``load_qpq_scenario``; the CLI is ``peer.qpq.cli``.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names resolve lazily (PEP 562): importing peer.qpq must not load scipy, so that
# the CLI and SRA-only nodes (and every process forked from them) stay light.
_WHERE: dict[str, str] = {
    "AllocationEntry": "peer.qpq.ledger",
    "Broadcast": "peer.qpq.effects",
    "Commit": "peer.qpq.messages",
    "Decided": "peer.qpq.effects",
    "Distribution": "peer.qpq.preferences",
    "Effect": "peer.qpq.effects",
    "Fault": "peer.qpq.decide",
    "Flag": "peer.qpq.effects",
    "GofConfig": "peer.qpq.gof",
    "Level": "peer.qpq.decide",
    "LevelResult": "peer.qpq.decide",
    "Membership": "peer.qpq.clusters",
    "Message": "peer.qpq.messages",
    "Profile": "peer.qpq.preferences",
    "QpqConfig": "peer.qpq.machine",
    "QpqNode": "peer.qpq.machine",
    "QpqRun": "peer.qpq.result",
    "QpqSetup": "peer.qpq.setup",
    "Record": "peer.qpq.effects",
    "Reveal": "peer.qpq.messages",
    "RoundDone": "peer.qpq.effects",
    "SignedAllocation": "peer.qpq.ledger",
    "Wake": "peer.qpq.effects",
    "auto_membership": "peer.qpq.clusters",
    "chunk_membership": "peer.qpq.clusters",
    "decide_level": "peer.qpq.decide",
    "explicit_membership": "peer.qpq.clusters",
    "load_qpq_scenario": "peer.qpq.scenario",
    "parse_distribution": "peer.qpq.preferences",
    "parse_profile": "peer.qpq.preferences",
    "parse_qpq_scenario": "peer.qpq.scenario",
    "preferences": "peer.qpq.preferences",
    "run_fast": "peer.qpq.fast",
    "run_machines": "peer.qpq.router",
    "sign_allocation": "peer.qpq.ledger",
    "stream_genesis": "peer.qpq.ledger",
    "verify_allocation": "peer.qpq.ledger",
    "verify_allocation_chain": "peer.qpq.ledger",
}

__all__ = [
    "AllocationEntry", "Broadcast", "Commit", "Decided", "Distribution", "Effect", "Fault", "Flag", "GofConfig",
    "Level", "LevelResult", "Membership", "Message", "Profile", "QpqConfig", "QpqNode", "QpqRun", "QpqSetup",
    "Record", "Reveal", "RoundDone", "SignedAllocation", "Wake", "auto_membership", "chunk_membership",
    "decide_level", "explicit_membership", "load_qpq_scenario", "parse_distribution", "parse_profile",
    "parse_qpq_scenario", "preferences", "run_fast", "run_machines", "sign_allocation", "stream_genesis",
    "verify_allocation", "verify_allocation_chain",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'peer.qpq' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
