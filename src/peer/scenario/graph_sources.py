"""Where a scenario's graph comes from besides explicit edges: any networkx
generator by name, and edge-list files (SNAP's format, gzip allowed).

Each failure is a ``(key, reason)`` pair that the scenario builder turns into
its usual one-line error naming the file and key.
"""

from __future__ import annotations

import gzip
import inspect
from pathlib import Path
from typing import Any

import networkx as nx

from peer.scenario.graphs import GENERATORS, as_string_graph

MAX_NODES = 1_000_000  # a simulated auction keeps one machine per node in memory
# Parameters that size a generator's output; checked before it runs so a typo
# cannot make it allocate a billion-node graph.
SIZE_PARAMETERS = ("n", "m", "n1", "n2", "k", "nodes", "rows", "cols")


class GraphSourceError(Exception):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def networkx_generators() -> dict[str, Any]:
    """Every public graph generator networkx exports, by name."""
    return {name: fn for name, fn in inspect.getmembers(nx.generators, inspect.isfunction)
            if not name.startswith("_")}


def generated_graph(name: object, spec: dict[str, Any], seed: int) -> nx.Graph:
    """Our four curated generators (with their checked parameters) come first; any
    other networkx generator takes the table's remaining keys as keyword arguments."""
    if not isinstance(name, str):
        raise GraphSourceError("graph.generator", f"must be a generator name, got {name!r}")
    if name in GENERATORS:
        raise AssertionError("curated generators are built by the scenario builder")
    generators = networkx_generators()
    fn = generators.get(name)
    if fn is None:
        close = sorted(g for g in generators if name.split("_")[0] in g)[:5]
        hint = f"; did you mean {', '.join(close)}?" if close else "; any function of networkx.generators works"
        raise GraphSourceError("graph.generator", f"unknown generator {name!r}{hint}")
    params = {k: v for k, v in spec.items() if k not in ("generator", "seed")}
    for key in SIZE_PARAMETERS:
        value = params.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_NODES:
            raise GraphSourceError(f"graph.{key}", f"at most {MAX_NODES} nodes")
    signature = inspect.signature(fn)
    # networkx's dispatch wrapper adds **backend_kwargs: not a graph parameter.
    accepts_any = any(p.kind is p.VAR_KEYWORD and p.name != "backend_kwargs" for p in signature.parameters.values())
    unknown = sorted(k for k in params if k not in signature.parameters and not accepts_any)
    if unknown:
        known = ", ".join(p for p in signature.parameters if p not in ("seed", "backend_kwargs", "backend", "create_using"))
        raise GraphSourceError(f"graph.{unknown[0]}", f"not a parameter of {name!r} (it takes: {known})")
    if "seed" in signature.parameters:
        params["seed"] = seed
    try:
        graph = fn(**params)
    except (TypeError, ValueError, nx.NetworkXException, OverflowError, MemoryError) as exc:
        raise GraphSourceError("graph", f"generator {name!r} failed: {exc}") from None
    if not isinstance(graph, nx.Graph):
        raise GraphSourceError("graph.generator", f"{name!r} does not build a graph")
    if graph.number_of_nodes() > MAX_NODES:
        raise GraphSourceError("graph", f"{name!r} built {graph.number_of_nodes()} nodes; at most {MAX_NODES}")
    return as_string_graph(graph)


def edge_list_graph(path_value: object, base: Path) -> nx.Graph:
    """An edge list: one ``u v`` pair per line (more columns are ignored),
    ``#`` or ``%`` comments, gzip if the name ends in .gz.  Relative paths are
    relative to the scenario file.  Self-loops and repeated edges are dropped,
    directed lists are read as undirected (SNAP's social graphs are both)."""
    if not isinstance(path_value, str) or not path_value:
        raise GraphSourceError("graph.file", "must be a path to an edge-list file")
    path = Path(path_value)
    if not path.is_absolute():
        path = base / path
    opener = gzip.open if path.suffix == ".gz" else open
    graph = nx.Graph()
    try:
        with opener(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                text = line.strip()
                if not text or text[0] in "#%":
                    continue
                parts = text.split()
                if len(parts) < 2:
                    raise GraphSourceError("graph.file", f"{path}:{number}: expected 'u v', got {text[:40]!r}")
                u, v = parts[0], parts[1]
                if u != v:
                    graph.add_edge(u, v)
                elif u not in graph:
                    graph.add_node(u)
                if graph.number_of_nodes() > MAX_NODES:
                    raise GraphSourceError("graph.file", f"{path}: more than {MAX_NODES} nodes")
    except OSError as exc:
        raise GraphSourceError("graph.file", f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise GraphSourceError("graph.file", f"{path}: not a text edge list ({exc})") from None
    if graph.number_of_edges() == 0:
        raise GraphSourceError("graph.file", f"{path}: no edges")
    return graph
