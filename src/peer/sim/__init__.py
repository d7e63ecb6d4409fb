"""The in-memory network: every node machine of a scenario in one process."""

from __future__ import annotations

from peer.sim.network import AsyncDelays, RoundDelays, SimNetwork
from peer.sim.run import simulate

__all__ = ["AsyncDelays", "RoundDelays", "SimNetwork", "simulate"]
