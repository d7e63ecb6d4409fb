"""Load and validate a scenario file.

Every problem becomes one :class:`ScenarioError` naming the file and the key,
so the CLI can print a single clear line and exit 2.  The format::

    name = "small-tree"
    seller = "s"              # a node id, or "max_degree", or "random"
    seed = 1
    [values]                  # node id = value (exact; the seller's is its reserve)
    s = 0
    a = 8
    [graph]
    edges = [["s", "a"]]      # explicit; or generator = "..." (any networkx generator, with its
                              # parameters as keys), dataset = "...", or file = "edges.txt.gz"
    [value_model]             # optional: draw the values not given in [values]
    kind = "uniform"          # or "depth" (the paper's Sec. 5.2 model)
    low = 0
    high = 1
    [behaviours.a]            # optional deviations from the intended strategy
    bid = 3                   # (every field of peer.sra.machine.Behaviour; docs/adversaries.md)
"""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path
from typing import Any

import networkx as nx

from peer.scenario.toml_source import TableReader, parse_toml, read_text
from peer.money import MoneyError, parse_money
from peer.scenario.graph_sources import GraphSourceError, edge_list_graph, generated_graph
from peer.scenario.barabasi_albert import barabasi_albert_strings
from peer.scenario.graphs import DATASETS, GENERATORS, as_string_graph
from peer.scenario.model import Scenario
from peer.scenario.values import draw_values
from peer.sra.behaviours import STAGES, LowDemand, check_stage
from peer.sra.machine import Behaviour

_TOP_KEYS = {"name", "seller", "seed", "values", "graph", "value_model", "behaviours", "description"}


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate ``path``.  Raises ScenarioError on any problem."""
    text, source = read_text(path)
    return parse_scenario(text, source=source)


def parse_scenario(text: str, *, source: str = "<string>") -> Scenario:
    return _Builder(source, parse_toml(text, source)).build()


class _Builder(TableReader):
    def _table(self, key: str) -> dict[str, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        return value

    def _int(self, table: dict[str, Any], key: str, label: str, *, minimum: int | None = None) -> int:
        value = table.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(label, f"must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(label, f"must be at least {minimum}, got {value}")
        return value

    def build(self) -> Scenario:
        if "qpq" in self.data:
            raise self.fail("qpq", "this is a QPQ scenario: run it with `peer qpq sim` (or tools/launch)")
        unknown = sorted(set(self.data) - _TOP_KEYS)
        if unknown:
            raise self.fail(unknown[0], "unknown key")
        name = self.data.get("name", Path(self.source).stem)
        if not isinstance(name, str) or not name:
            raise self.fail("name", "must be a non-empty string")
        seed = self._int(self.data, "seed", "seed") if "seed" in self.data else 0
        graph = self._graph(seed)
        values = self._explicit_values(graph)
        seller = self._seller(graph, seed)
        if graph.degree(seller) == 0:
            raise self.fail("seller", f"seller {seller!r} has no neighbours: nobody can hear of the sale")
        values = self._model_values(graph, seller, seed, values)
        missing = sorted(n for n in graph.nodes if n not in values)
        if missing:
            raise self.fail(f"values.{missing[0]}", "no value for this node (give one or a [value_model])")
        values.setdefault(seller, 0)
        behaviours = self._behaviours(graph)
        return Scenario(
            name=name, seed=seed, seller=seller, graph=graph, values=values,
            behaviours=behaviours, source=self.source,
        )

    # ----------------------------------------------------------------- graph

    def _graph(self, seed: int) -> nx.Graph:
        spec = self._table("graph")
        if not spec:
            raise self.fail("graph", "missing: give edges, a generator, a dataset or a file")
        forms = [k for k in ("edges", "generator", "dataset", "file") if k in spec]
        if len(forms) != 1:
            raise self.fail("graph", "give exactly one of edges, generator, dataset, file")
        form = forms[0]
        if form == "edges":
            return self._explicit_graph(spec)
        curated = form == "generator" and isinstance(spec["generator"], str) and spec["generator"] in GENERATORS
        if form == "file" or (form == "generator" and not curated):
            base = Path(self.source).parent if self.source != "<string>" else Path.cwd()
            graph_seed = self._int(spec, "seed", "graph.seed") if "seed" in spec else seed
            try:
                if form == "file":
                    return edge_list_graph(spec["file"], base)
                return generated_graph(spec["generator"], spec, graph_seed)
            except GraphSourceError as exc:
                raise self.fail(exc.key, exc.reason) from None
        if form == "dataset":
            name = spec["dataset"]
            if not isinstance(name, str) or name not in DATASETS:
                raise self.fail("graph.dataset", f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
            return as_string_graph(DATASETS[name]())
        name = spec["generator"]
        builder, required = GENERATORS[name]
        params: dict[str, Any] = {}
        for key in required:
            if key not in spec:
                raise self.fail(f"graph.{key}", f"required by generator {name!r}")
            value = spec[key]
            if key == "p":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                    raise self.fail("graph.p", f"must be a probability in [0, 1], got {value!r}")
            else:
                value = self._int(spec, key, f"graph.{key}", minimum=1)
            params[key] = value
        if params.get("n", 1) > 200_000:
            raise self.fail("graph.n", "at most 200000 nodes")
        graph_seed = self._int(spec, "seed", "graph.seed") if "seed" in spec else seed
        try:
            if name == "barabasi_albert":  # the same graph as the generator's, built on strings directly
                return barabasi_albert_strings(params["n"], params["m"], graph_seed)
            return as_string_graph(builder(params, graph_seed))
        except (nx.NetworkXError, ValueError) as exc:
            raise self.fail("graph", f"generator {name!r} failed: {exc}") from None

    def _explicit_graph(self, spec: dict[str, Any]) -> nx.Graph:
        edges = spec["edges"]
        if not isinstance(edges, list):
            raise self.fail("graph.edges", "must be a list of [u, v] pairs")
        nodes = self._node_names(spec)
        graph = nx.Graph()
        graph.add_nodes_from(nodes)
        for index, edge in enumerate(edges):
            label = f"graph.edges[{index}]"
            if not (isinstance(edge, list) and len(edge) == 2 and all(isinstance(x, str) for x in edge)):
                raise self.fail(label, f"must be a pair of node ids, got {edge!r}")
            u, v = edge
            for end in (u, v):
                if end not in nodes:
                    raise self.fail(label, f"names unknown node {end!r} (nodes come from [values] or graph.nodes)")
            if u == v:
                raise self.fail(label, f"self-loop on {u!r}")
            graph.add_edge(u, v)
        return graph

    def _node_names(self, spec: dict[str, Any]) -> set[str]:
        names = set(self._table("values"))
        extra = spec.get("nodes", [])
        if not isinstance(extra, list) or not all(isinstance(x, str) and x for x in extra):
            raise self.fail("graph.nodes", "must be a list of node ids")
        return names | set(extra)

    # ---------------------------------------------------------------- values

    def _explicit_values(self, graph: nx.Graph) -> dict[str, int]:
        values: dict[str, int] = {}
        for node, raw in self._table("values").items():
            if node not in graph:
                raise self.fail(f"values.{node}", "not a node of the graph")
            try:
                values[node] = parse_money(raw)
            except MoneyError as exc:
                raise self.fail(f"values.{node}", str(exc)) from None
        return values

    def _model_values(self, graph: nx.Graph, seller: str, seed: int, given: dict[str, int]) -> dict[str, int]:
        model = self._table("value_model")
        if not model:
            return given
        kind = model.get("kind")
        if kind not in ("uniform", "depth"):
            raise self.fail("value_model.kind", f"must be 'uniform' or 'depth', got {kind!r}")
        bounds = {}
        for key, default in (("low", 0), ("high", 1)):
            try:
                bounds[key] = parse_money(model.get(key, default))
            except MoneyError as exc:
                raise self.fail(f"value_model.{key}", str(exc)) from None
        if bounds["low"] > bounds["high"]:
            raise self.fail("value_model.low", "must not exceed high")
        model_seed = self._int(model, "seed", "value_model.seed") if "seed" in model else seed
        # Only the depth model reads the depths (a BFS of the whole graph: 0.4 s at 100,000 nodes).
        depths = dict(nx.single_source_shortest_path_length(graph, seller)) if kind == "depth" else {}
        drawn = draw_values(
            kind, sorted(graph.nodes), depths, seller, seed=model_seed, low=bounds["low"], high=bounds["high"]
        )
        drawn.update(given)
        return drawn

    # ------------------------------------------------------- seller, deviations

    def _seller(self, graph: nx.Graph, seed: int) -> str:
        seller = self.data.get("seller")
        if not isinstance(seller, str) or not seller:
            raise self.fail("seller", "must name a node, or be 'max_degree' or 'random'")
        if seller in graph:
            return seller
        if graph.number_of_nodes() == 0:
            raise self.fail("graph", "the graph has no nodes")
        if seller == "max_degree":
            return max(sorted(graph.nodes), key=graph.degree)
        if seller == "random":
            return random.Random(f"seller/{seed}").choice(sorted(graph.nodes))
        raise self.fail("seller", f"{seller!r} is not a node of the graph")

    def _behaviours(self, graph: nx.Graph) -> dict[str, Behaviour]:
        """``[behaviours.<node>]`` tables: the fields of :class:`peer.sra.machine.Behaviour`
        (amounts as money, stages by name, ``split`` as a count or ``{identities = k}``)."""
        out: dict[str, Behaviour] = {}
        for node, spec in self._table("behaviours").items():
            label = f"behaviours.{node}"
            if node not in graph:
                raise self.fail(label, "not a node of the graph")
            if not isinstance(spec, dict):
                raise self.fail(label, "must be a table")
            unknown = sorted(set(spec) - _BEHAVIOUR_KEYS)
            if unknown:
                raise self.fail(f"{label}.{unknown[0]}", "unknown behaviour")
            kwargs = {key: self._behaviour_field(graph, f"{label}.{key}", key, spec[key]) for key in spec}
            try:
                out[node] = Behaviour(**kwargs)
            except (TypeError, ValueError) as exc:
                raise self.fail(label, str(exc)) from None
        return out

    def _behaviour_field(self, graph: nx.Graph, label: str, key: str, raw: Any) -> Any:
        if key in ("bid", "aggregate", "context", "false_reserve"):
            return self._money(label, raw)
        if key == "invite_only":
            if not isinstance(raw, list) or not all(isinstance(x, str) and x in graph for x in raw):
                raise self.fail(label, "must be a list of node ids")
            return frozenset(raw)
        if key == "report_to_all":
            if not isinstance(raw, bool):
                raise self.fail(label, "must be true or false")
            return raw
        if key == "parent":
            if not isinstance(raw, str) or raw not in graph:
                raise self.fail(label, "must be a node id")
            return raw
        if key == "equivocate":
            if not isinstance(raw, dict) or not all(isinstance(x, str) and x in graph for x in raw):
                raise self.fail(label, "must be a table inviter = amount")
            return {inviter: self._money(f"{label}.{inviter}", amount) for inviter, amount in raw.items()}
        if key in ("silent_from", "crash_at"):
            try:
                return check_stage(raw) if isinstance(raw, str) else check_stage(repr(raw))
            except ValueError:
                raise self.fail(label, f"must be one of {', '.join(STAGES)} or hop:K, got {raw!r}") from None
        if key == "restart_after":
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0:
                raise self.fail(label, f"must be a number of time units >= 0, got {raw!r}")
            return float(raw)
        if key == "underbid_when_demand_low":
            return self._low_demand(label, raw)
        assert key == "split"
        count = raw.get("identities") if isinstance(raw, dict) and set(raw) == {"identities"} else raw
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise self.fail(label, "must be a number of identities >= 1 (or {identities = k})")
        return count

    def _money(self, label: str, raw: Any) -> int:
        try:
            return parse_money(raw)
        except MoneyError as exc:
            raise self.fail(label, str(exc)) from None

    def _low_demand(self, label: str, raw: Any) -> LowDemand:
        """``true`` (halve the bid when nobody answered) or ``{factor = 0.5, at_most = 0}``."""
        if raw is True:
            return LowDemand()
        if not isinstance(raw, dict) or not set(raw) <= {"factor", "at_most"}:
            raise self.fail(label, "must be true or a table with factor and at_most")
        factor = raw.get("factor", 0.5)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 <= factor <= 1:
            raise self.fail(f"{label}.factor", f"must be a number in [0, 1], got {factor!r}")
        at_most = raw.get("at_most", 0)
        if isinstance(at_most, bool) or not isinstance(at_most, int) or at_most < 0:
            raise self.fail(f"{label}.at_most", f"must be an integer >= 0, got {at_most!r}")
        return LowDemand(Fraction(str(factor)), at_most)  # exact: 0.3 means 3/10, not a binary float


_BEHAVIOUR_KEYS = {
    "bid", "invite_only", "report_to_all", "aggregate", "context", "parent", "equivocate",
    "underbid_when_demand_low", "false_reserve", "silent_from", "crash_at", "restart_after", "split",
}
