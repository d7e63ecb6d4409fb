"""``peer launch --hosts``: which node runs where, and what the run reports about it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peer.launch.hosts import HostSpec, HostsError, cut_edges, load_hosts, node_addresses, partition_graph
from peer.launch.remote import Partition, RemoteChildren
from peer.scenario.model import Scenario


@dataclass
class Spread:
    scenario: Scenario
    hosts: list[HostSpec]
    assignment: dict[str, str]
    addresses: dict[str, tuple[str, int]]
    partitions: list[Partition]

    def children(self, root: Path) -> RemoteChildren:
        return RemoteChildren(self.hosts, self.assignment, root, self.partitions)

    def report(self, children: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "nodes": dict(sorted(Counter(self.assignment.values()).items())),
            "edges_across_hosts": cut_edges(self.scenario.graph, self.assignment),
            "edges": self.scenario.graph.number_of_edges(),
        }
        if isinstance(children, RemoteChildren):
            out["partitions"] = children.cuts
            if children.errors:
                out["errors"] = children.errors
        return out


def spread_over_hosts(scenario: Scenario, hosts_file: Path | None, partitions: list[str], seed: int,
                      restart_after: float | None) -> Spread:
    if hosts_file is None:
        raise HostsError("--partition needs --hosts")
    if restart_after is not None:
        raise HostsError("--restart-after is not supported across hosts")
    hosts = load_hosts(hosts_file)
    names = [h.name for h in hosts]
    parsed = [Partition.parse(text, set(names)) for text in partitions]
    assignment = partition_graph(scenario.graph, names, seed)
    return Spread(scenario, hosts, assignment, node_addresses(assignment, hosts), parsed)
