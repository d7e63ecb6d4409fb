"""One scenario across several hosts: the hosts file, the partition of the graph, the addresses.

The hosts file (TOML) names each host, the address its nodes listen on, and
the command that runs a program there::

    [hosts.h1]
    address = "10.77.0.1"                      # nodes of h1 listen here
    command = ["ip", "netns", "exec", "h1"]    # default: ["ssh", "h1"]
    python = "python3"                         # the interpreter with peer installed there
    cut = ["ip", "netns", "exec", "h1", "nft", "-f", "-"]   # optional, for --partition (see netns.py)

The graph is split so that most edges stay inside a host (Louvain communities,
packed into hosts of balanced size); each node gets the next free port on its
host's address, counting up from ``base_port``.
"""

from __future__ import annotations

import math
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from peer.errors import PeerError


class HostsError(PeerError):
    """The hosts file is unreadable or malformed; the message names the key."""


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: str
    command: list[str] = field(default_factory=list)
    python: str = "python3"
    base_port: int = 41000


def load_hosts(path: Path) -> list[HostSpec]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HostsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise HostsError(f"{path}: not valid TOML: {exc}") from None
    table = data.get("hosts")
    if not isinstance(table, dict) or not table:
        raise HostsError(f"{path}: [hosts.NAME] tables missing")
    hosts = []
    for name, spec in table.items():
        if not isinstance(spec, dict):
            raise HostsError(f"{path}: [hosts.{name}] must be a table")
        address = spec.get("address")
        if not isinstance(address, str) or not address:
            raise HostsError(f"{path}: hosts.{name}.address: the address its nodes listen on is required")
        command = spec.get("command", ["ssh", name])
        if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
            raise HostsError(f"{path}: hosts.{name}.command must be a list of strings")
        python = spec.get("python", "python3")
        base_port = spec.get("base_port", 41000)
        if not isinstance(python, str) or not python:
            raise HostsError(f"{path}: hosts.{name}.python must be a command name")
        if isinstance(base_port, bool) or not isinstance(base_port, int) or not 1024 <= base_port < 65000:
            raise HostsError(f"{path}: hosts.{name}.base_port must be a port in 1024..64999")
        unknown = sorted(set(spec) - {"address", "command", "python", "base_port"})
        if unknown:
            raise HostsError(f"{path}: hosts.{name}.{unknown[0]}: unknown key")
        hosts.append(HostSpec(name=name, address=address, command=command, python=python, base_port=base_port))
    return hosts


def partition_graph(graph: nx.Graph, hosts: list[str], seed: int) -> dict[str, str]:
    """node -> host: balanced shares (at most ceil(n/k) nodes each) that keep most edges inside.

    Louvain communities (seeded), largest first, fill the hosts in turn; a
    community that does not fit the current host continues on the next in BFS
    order, so each piece stays connected where the community is."""
    if not hosts:
        raise HostsError("no hosts")
    capacity = math.ceil(graph.number_of_nodes() / len(hosts))
    communities = nx.community.louvain_communities(graph, seed=random.Random(seed).randrange(2**32))
    order: list[str] = []
    for community in sorted(communities, key=lambda c: (-len(c), min(c))):
        sub = graph.subgraph(community)
        start = max(sorted(community), key=sub.degree)
        seen = list(nx.bfs_tree(sub, start))
        seen += sorted(community - set(seen))
        order += seen
    return {node: hosts[min(i // capacity, len(hosts) - 1)] for i, node in enumerate(order)}


def cut_edges(graph: nx.Graph, assignment: dict[str, str]) -> int:
    return sum(1 for u, v in graph.edges if assignment[u] != assignment[v])


def node_addresses(assignment: dict[str, str], hosts: list[HostSpec]) -> dict[str, tuple[str, int]]:
    by_name = {h.name: h for h in hosts}
    next_port = {h.name: h.base_port for h in hosts}
    out = {}
    for node in sorted(assignment):
        host = by_name[assignment[node]]
        out[node] = (host.address, next_port[host.name])
        next_port[host.name] += 1
    return out
