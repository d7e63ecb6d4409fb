"""QPQ scenario files: ``scenarios/qpq-*.toml``.  Format in docs/qpq.md; every problem is a ScenarioError.

::

    name = "qpq-small"
    seed = 7
    [graph]                      # as in the SRA scenarios: edges (+ nodes), generator, or dataset
    generator = "barabasi_albert"
    n = 16
    m = 2
    [qpq]
    # players = 16               # instead of [graph]: nodes p00..p15 and no graph
    rounds = 1000
    clusters = "auto"            # or a [qpq.clusters] table: node = "cluster id"
    k = 4                        # with "auto" (default round(sqrt(n)))
    test = "ks"                  # or "chi2", or "off"
    window = 100
    threshold = 0.01
    min_history = 10
    [qpq.distributions]          # raw-value laws; "default" covers the nodes not named
    default = "uniform(0, 1)"
    "3" = "normal(10, 2)"
    [qpq.profiles]
    default = "honest"
    "5" = "beta_cheater(3)"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx

from peer.scenario.toml_source import TableReader, parse_toml, read_text
from peer.qpq.clusters import Membership, auto_membership, chunk_membership, default_k, explicit_membership
from peer.qpq.gof import TESTS, GofConfig
from peer.qpq.machine import QpqConfig
from peer.qpq.preferences import parse_distribution, parse_profile
from peer.qpq.setup import QpqSetup
from peer.scenario.graphs import DATASETS, GENERATORS, as_string_graph

_TOP = {"name", "seed", "description", "graph", "qpq"}
_QPQ = {"players", "rounds", "clusters", "k", "test", "window", "threshold", "min_history", "phase", "stream",
        "distributions", "profiles"}
MAX_PLAYERS = 100_000


def load_qpq_scenario(path: str | Path) -> QpqSetup:
    text, source = read_text(path)
    return parse_qpq_scenario(text, source=source)


def parse_qpq_scenario(text: str, *, source: str = "<string>") -> QpqSetup:
    return _Builder(source, parse_toml(text, source)).build()


class _Builder(TableReader):
    def _int(self, table: dict[str, Any], key: str, label: str, *, minimum: int, maximum: int | None = None) -> int:
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(label, f"must be an integer, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"in {minimum}..{maximum}" if maximum is not None else f"at least {minimum}"
            raise self.fail(label, f"must be {bound}, got {value}")
        return value

    def _float(self, table: dict[str, Any], key: str, label: str, low: float, high: float) -> float:
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value < high:
            raise self.fail(label, f"must be a number in ({low:g}, {high:g}), got {value!r}")
        return float(value)

    def _table(self, table: dict[str, Any], key: str, label: str) -> dict[str, Any]:
        value = table.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(label, "must be a table")
        return value

    def build(self) -> QpqSetup:
        unknown = sorted(set(self.data) - _TOP)
        if unknown:
            raise self.fail(unknown[0], "unknown key")
        name = self.data.get("name", Path(self.source).stem)
        if not isinstance(name, str) or not name:
            raise self.fail("name", "must be a non-empty string")
        seed = self._int(self.data, "seed", "seed", minimum=-(2**63)) if "seed" in self.data else 0
        qpq = self._table(self.data, "qpq", "qpq")
        unknown = sorted(set(qpq) - _QPQ)
        if unknown:
            raise self.fail(f"qpq.{unknown[0]}", "unknown key")
        graph, nodes = self._nodes(qpq, seed)
        membership = self._membership(qpq, graph, nodes, seed)
        config = self._config(qpq)
        rounds = self._int(qpq, "rounds", "qpq.rounds", minimum=1, maximum=10_000_000) if "rounds" in qpq else 1000
        stream = qpq.get("stream", "resources")
        if not isinstance(stream, str) or not stream:
            raise self.fail("qpq.stream", "must be a non-empty string")
        distributions = self._per_node(qpq, "distributions", nodes, parse_distribution)
        profiles = self._per_node(qpq, "profiles", nodes, parse_profile)
        return QpqSetup(
            name=name, seed=seed, membership=membership, config=config, rounds=rounds,
            distributions=distributions, profiles=profiles, stream=stream, graph=graph, source=self.source,
        )

    def _nodes(self, qpq: dict[str, Any], seed: int) -> tuple[nx.Graph | None, list[str]]:
        has_graph = "graph" in self.data
        if has_graph == ("players" in qpq):
            raise self.fail("graph", "give exactly one of [graph] and qpq.players")
        if not has_graph:
            count = self._int(qpq, "players", "qpq.players", minimum=2, maximum=MAX_PLAYERS)
            width = len(str(count - 1))
            return None, [f"p{i:0{width}d}" for i in range(count)]
        graph = self._graph(seed)
        if graph.number_of_nodes() < 2:
            raise self.fail("graph", "needs at least 2 nodes")
        return graph, sorted(graph.nodes)

    def _graph(self, seed: int) -> nx.Graph:
        spec = self._table(self.data, "graph", "graph")
        forms = [k for k in ("edges", "generator", "dataset") if k in spec]
        if len(forms) != 1:
            raise self.fail("graph", "give exactly one of edges, generator, dataset")
        if forms[0] == "dataset":
            name = spec["dataset"]
            if not isinstance(name, str) or name not in DATASETS:
                raise self.fail("graph.dataset", f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
            return as_string_graph(DATASETS[name]())
        if forms[0] == "edges":
            return self._edges(spec)
        name = spec["generator"]
        if not isinstance(name, str) or name not in GENERATORS:
            raise self.fail("graph.generator", f"unknown generator {name!r}; known: {', '.join(sorted(GENERATORS))}")
        builder, required = GENERATORS[name]
        params: dict[str, Any] = {}
        for key in required:
            if key not in spec:
                raise self.fail(f"graph.{key}", f"required by generator {name!r}")
            if key == "p":
                p = spec["p"]
                if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
                    raise self.fail("graph.p", f"must be a probability in [0, 1], got {p!r}")
                params[key] = float(p)
            else:
                params[key] = self._int(spec, key, f"graph.{key}", minimum=1, maximum=MAX_PLAYERS)
        graph_seed = self._int(spec, "seed", "graph.seed", minimum=-(2**63)) if "seed" in spec else seed
        try:
            return as_string_graph(builder(params, graph_seed))
        except (nx.NetworkXError, ValueError) as exc:
            raise self.fail("graph", f"generator {name!r} failed: {exc}") from None

    def _edges(self, spec: dict[str, Any]) -> nx.Graph:
        edges, extra = spec["edges"], spec.get("nodes", [])
        if not isinstance(extra, list) or not all(isinstance(x, str) and x for x in extra):
            raise self.fail("graph.nodes", "must be a list of node ids")
        if not isinstance(edges, list):
            raise self.fail("graph.edges", "must be a list of [u, v] pairs")
        graph = nx.Graph()
        graph.add_nodes_from(extra)
        for i, edge in enumerate(edges):
            if not (isinstance(edge, list) and len(edge) == 2 and all(isinstance(x, str) and x for x in edge)):
                raise self.fail(f"graph.edges[{i}]", f"must be a pair of node ids, got {edge!r}")
            if edge[0] == edge[1]:
                raise self.fail(f"graph.edges[{i}]", f"self-loop on {edge[0]!r}")
            graph.add_edge(*edge)
        return graph

    def _membership(self, qpq: dict[str, Any], graph: nx.Graph | None, nodes: list[str], seed: int) -> Membership:
        spec = qpq.get("clusters", "auto")
        if isinstance(spec, dict):
            if "k" in qpq:
                raise self.fail("qpq.k", "only with clusters = \"auto\" (explicit clusters fix k)")
            for node, cid in spec.items():
                if node not in nodes:
                    raise self.fail(f"qpq.clusters.{node}", "not a node of this scenario")
                if not isinstance(cid, str) or not cid:
                    raise self.fail(f"qpq.clusters.{node}", f"must be a cluster id (a string), got {cid!r}")
            missing = [x for x in nodes if x not in spec]
            if missing:
                raise self.fail(f"qpq.clusters.{missing[0]}", "no cluster for this node (explicit clusters name every node)")
            return explicit_membership(spec)
        if spec != "auto":
            raise self.fail("qpq.clusters", f"must be \"auto\" or a table of node = cluster id, got {spec!r}")
        k = self._int(qpq, "k", "qpq.k", minimum=1, maximum=len(nodes)) if "k" in qpq else None
        if graph is None:
            return chunk_membership(nodes, default_k(len(nodes)) if k is None else k)
        return auto_membership(graph, seed=seed, k=k)

    def _config(self, qpq: dict[str, Any]) -> QpqConfig:
        kwargs: dict[str, Any] = {}
        if "test" in qpq:
            if qpq["test"] not in TESTS:
                raise self.fail("qpq.test", f"must be one of {', '.join(TESTS)}, got {qpq['test']!r}")
            kwargs["test"] = qpq["test"]
        if "window" in qpq:
            kwargs["window"] = self._int(qpq, "window", "qpq.window", minimum=1, maximum=100_000)
        if "min_history" in qpq:
            kwargs["min_history"] = self._int(qpq, "min_history", "qpq.min_history", minimum=0, maximum=100_000)
        if "threshold" in qpq:
            kwargs["threshold"] = self._float(qpq, "threshold", "qpq.threshold", 0.0, 1.0)
        phase = self._float(qpq, "phase", "qpq.phase", 0.0, 1e9) if "phase" in qpq else 1.0
        return QpqConfig(gof=GofConfig(**kwargs), phase=phase)

    def _per_node(self, qpq: dict[str, Any], key: str, nodes: list[str], parse: Any) -> dict[str, Any]:
        table = self._table(qpq, key, f"qpq.{key}")
        known = set(nodes)
        default = None
        if "default" in table:
            try:
                default = parse(table["default"])
            except ValueError as exc:
                raise self.fail(f"qpq.{key}.default", str(exc)) from None
        out: dict[str, Any] = {}
        for node, spec in table.items():
            if node == "default":
                continue
            if node not in known:
                raise self.fail(f"qpq.{key}.{node}", "not a node of this scenario")
            try:
                out[node] = parse(spec)
            except ValueError as exc:
                raise self.fail(f"qpq.{key}.{node}", str(exc)) from None
        if default is not None:
            for node in nodes:
                out.setdefault(node, default)
        return out
