"""Which nodes of a scenario can ever hear of the sale: those connected to the seller.

A disconnected scenario graph is valid TOML and a valid graph, but the nodes
outside the seller's component take no part in any run.  ``peer sim`` warns
with :func:`unreachable_warning`; ``tools/launch`` / ``peer launch`` can use the
same line (and refuse, or start only the seller's component).
"""

from __future__ import annotations

import networkx as nx

from peer.scenario.model import Scenario


def unreachable_from_seller(scenario: Scenario) -> list[str]:
    """Nodes with no path to the seller, sorted."""
    reachable = nx.node_connected_component(scenario.graph, scenario.seller)
    return sorted(n for n in scenario.graph.nodes if n not in reachable)


def unreachable_warning(scenario: Scenario, *, shown: int = 5) -> str | None:
    """One line naming how many nodes are unreachable (and the first few), or None if every node is reachable."""
    missing = unreachable_from_seller(scenario)
    if not missing:
        return None
    names = ", ".join(missing[:shown]) + (", ..." if len(missing) > shown else "")
    return (f"warning: {len(missing)} of {scenario.graph.number_of_nodes()} nodes are unreachable from the seller "
            f"{scenario.seller} (the graph is disconnected) and take no part: {names}")
