"""Scenarios: a graph, the nodes' values, the seller and a seed, loaded from TOML."""

from __future__ import annotations

from peer.scenario.load import load_scenario, parse_scenario
from peer.scenario.model import Scenario

__all__ = ["Scenario", "load_scenario", "parse_scenario"]
