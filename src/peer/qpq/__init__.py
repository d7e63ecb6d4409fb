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

from peer.qpq.clusters import Membership, auto_membership, chunk_membership, explicit_membership
from peer.qpq.decide import Fault, Level, LevelResult, decide_level
from peer.qpq.effects import Broadcast, Decided, Effect, Flag, Record, RoundDone, Wake
from peer.qpq.fast import run_fast
from peer.qpq.gof import GofConfig
from peer.qpq.ledger import (
    AllocationEntry,
    SignedAllocation,
    sign_allocation,
    stream_genesis,
    verify_allocation,
    verify_allocation_chain,
)
from peer.qpq.machine import QpqConfig, QpqNode
from peer.qpq.messages import Commit, Message, Reveal
from peer.qpq.preferences import Distribution, Profile, parse_distribution, parse_profile, preferences
from peer.qpq.result import QpqRun
from peer.qpq.router import run_machines
from peer.qpq.scenario import load_qpq_scenario, parse_qpq_scenario
from peer.qpq.setup import QpqSetup

__all__ = [
    "AllocationEntry", "Broadcast", "Commit", "Decided", "Distribution", "Effect", "Fault", "Flag", "GofConfig",
    "Level", "LevelResult", "Membership", "Message", "Profile", "QpqConfig", "QpqNode", "QpqRun", "QpqSetup",
    "Record", "Reveal", "RoundDone", "SignedAllocation", "Wake", "auto_membership", "chunk_membership",
    "decide_level", "explicit_membership", "load_qpq_scenario", "parse_distribution", "parse_profile",
    "parse_qpq_scenario", "preferences", "run_fast", "run_machines", "sign_allocation", "stream_genesis",
    "verify_allocation", "verify_allocation_chain",
]
