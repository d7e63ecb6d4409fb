"""Scenario files: loading, generators, datasets, value models, seller choice and validation."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from peer.errors import ScenarioError
from peer.money import SCALE
from peer.scenario.load import load_scenario, parse_scenario
from peer.scenario.model import Scenario, explicit_scenario
from peer.scenario.values import depth_bounds

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
# SRA scenarios; the QPQ ones ([qpq] table) have their own loader and tests (tests/qpq).
SCENARIO_FILES = sorted(p for p in SCENARIOS.glob("*.toml") if "\n[qpq]" not in "\n" + p.read_text())


def fingerprint(s: Scenario) -> tuple:
    return (s.name, s.seed, s.seller, sorted(s.graph.nodes), sorted(map(sorted, s.graph.edges)), sorted(s.values.items()))


# ----------------------------------------------------------------------------- the shipped files


def test_there_are_scenario_files() -> None:
    names = {p.name for p in SCENARIO_FILES}
    assert {"small-tree.toml", "paper-figure2.toml"} <= names


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.name)
def test_every_scenario_file_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.source == str(path)
    assert scenario.seller in scenario.graph
    assert scenario.graph.degree(scenario.seller) > 0
    assert set(scenario.values) == set(scenario.graph.nodes)
    assert all(isinstance(v, int) and v >= 0 for v in scenario.values.values())
    assert all(isinstance(n, str) for n in scenario.graph.nodes)
    assert fingerprint(load_scenario(path)) == fingerprint(scenario)  # deterministic


def test_small_tree_is_exactly_what_the_file_says() -> None:
    scenario = load_scenario(SCENARIOS / "small-tree.toml")
    assert scenario.name == "small-tree"
    assert scenario.seller == "s"
    assert scenario.seed == 1
    assert sorted(scenario.graph.nodes) == ["a", "b", "s"]
    assert {frozenset(e) for e in scenario.graph.edges} == {frozenset("sa"), frozenset("sb")}
    assert scenario.values == {"s": 0, "a": 8_000_000, "b": 5_000_000}
    assert scenario.behaviours == {}


def test_explicit_scenario_builds_the_same_small_tree() -> None:
    inline = explicit_scenario([("s", "a"), ("s", "b")], {"s": 0, "a": 8 * SCALE, "b": 5 * SCALE}, seller="s", seed=1)
    loaded = load_scenario(SCENARIOS / "small-tree.toml")
    assert fingerprint(inline)[1:] == fingerprint(loaded)[1:]


def test_paper_figure2_depth_layout_and_depth_value_bounds() -> None:
    scenario = load_scenario(SCENARIOS / "paper-figure2.toml")
    depths = scenario.depths()
    layout: dict[int, set[str]] = {}
    for node, d in depths.items():
        layout.setdefault(d, set()).add(node)
    assert layout == {0: {"s"}, 1: {"a", "b"}, 2: {"c", "d"}, 3: {"e", "f"}, 4: {"g", "h", "i"}}
    assert scenario.values["s"] == 0
    for node, d in depths.items():
        if node != "s":
            low, high = 100_000 * (1 + d), 100_000 * (6 + d)  # U[0.1 + 0.1 d, 0.6 + 0.1 d]
            assert low <= scenario.values[node] <= high, (node, d)


def test_depth_bounds_are_the_papers() -> None:
    assert depth_bounds(0) == (100_000, 600_000)
    assert depth_bounds(1) == (200_000, 700_000)
    assert depth_bounds(4) == (500_000, 1_000_000)


# ----------------------------------------------------------------------------- generators and datasets


def generated(graph_spec: str, *, seed: int, seller: str = "max_degree", model: str = "") -> Scenario:
    model = model or 'kind = "uniform"\nlow = 1\nhigh = 2'
    text = f'seller = "{seller}"\nseed = {seed}\n[graph]\n{graph_spec}\n[value_model]\n{model}\n'
    return parse_scenario(text, source="generated.toml")


GENERATORS = {
    "barabasi_albert": 'generator = "barabasi_albert"\nn = 40\nm = 2',
    "watts_strogatz": 'generator = "watts_strogatz"\nn = 40\nk = 4\np = 0.3',
    "erdos_renyi": 'generator = "erdos_renyi"\nn = 40\np = 0.15',
    "random_tree": 'generator = "random_tree"\nn = 40',
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generators_are_seeded_and_deterministic(name: str) -> None:
    first = generated(GENERATORS[name], seed=5)
    again = generated(GENERATORS[name], seed=5)
    other = generated(GENERATORS[name], seed=6)
    assert first.graph.number_of_nodes() == 40
    assert fingerprint(first) == fingerprint(again)
    assert sorted(map(sorted, first.graph.edges)) != sorted(map(sorted, other.graph.edges))
    assert first.values != other.values
    if name == "random_tree":
        assert nx.is_tree(first.graph)
    if name == "barabasi_albert":
        assert first.graph.number_of_edges() == (40 - 2) * 2


def test_generator_graph_seed_is_separate_from_the_run_seed() -> None:
    spec = GENERATORS["erdos_renyi"] + "\nseed = 99"
    a, b = generated(spec, seed=1), generated(spec, seed=2)
    assert sorted(map(sorted, a.graph.edges)) == sorted(map(sorted, b.graph.edges))
    assert a.values != b.values


DATASETS = {
    "karate_club": 34,
    "les_miserables": 77,
    "florentine_families": 15,
    "davis_southern_women": 32,
}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_datasets_load_with_a_seed_and_are_deterministic(name: str) -> None:
    spec = f'dataset = "{name}"'
    first = generated(spec, seed=3)
    again = generated(spec, seed=3)
    other = generated(spec, seed=4)
    assert first.graph.number_of_nodes() == DATASETS[name]
    assert fingerprint(first) == fingerprint(again)
    assert sorted(map(sorted, first.graph.edges)) == sorted(map(sorted, other.graph.edges))
    assert first.values != other.values


# ----------------------------------------------------------------------------- value models


def test_uniform_value_model_stays_within_its_bounds() -> None:
    scenario = generated(GENERATORS["barabasi_albert"], seed=8, model='kind = "uniform"\nlow = 2.5\nhigh = 3')
    buyers = [v for n, v in scenario.values.items() if n != scenario.seller]
    assert all(2_500_000 <= v <= 3_000_000 for v in buyers)
    assert len(set(buyers)) > 30  # drawn on the micro grid, not a handful of levels
    assert scenario.values[scenario.seller] == 0


def test_depth_value_model_uses_the_bounds_of_each_depth() -> None:
    scenario = generated(GENERATORS["random_tree"], seed=2, model='kind = "depth"')
    depths = scenario.depths()
    assert max(depths.values()) >= 3
    for node, d in depths.items():
        if node != scenario.seller:
            low, high = depth_bounds(d)
            assert low <= scenario.values[node] <= high


def test_depth_value_model_gives_unreachable_nodes_zero() -> None:
    text = 'seller = "s"\n[values]\ns = 0\na = 1\n[graph]\nnodes = ["x"]\nedges = [["s", "a"]]\n[value_model]\nkind = "depth"\n'
    scenario = parse_scenario(text, source="t.toml")
    assert scenario.values["x"] == 0
    assert scenario.values["a"] == SCALE  # an explicit value wins over the model


def test_value_model_seed_overrides_the_scenario_seed() -> None:
    model = 'kind = "uniform"\nseed = 42'
    a = generated(GENERATORS["random_tree"] + "\nseed = 1", seed=1, model=model)
    b = generated(GENERATORS["random_tree"] + "\nseed = 1", seed=2, model=model)
    assert a.values == b.values


# ----------------------------------------------------------------------------- seller choice


@pytest.mark.parametrize("spec", [GENERATORS["barabasi_albert"], 'dataset = "karate_club"', 'dataset = "les_miserables"'])
def test_seller_max_degree(spec: str) -> None:
    scenario = generated(spec, seed=1)
    degrees = dict(scenario.graph.degree)
    top = max(degrees.values())
    assert degrees[scenario.seller] == top
    assert scenario.seller == min(n for n, d in degrees.items() if d == top)  # ties: first id


def test_seller_random_is_seeded() -> None:
    spec = 'dataset = "karate_club"'
    sellers = [generated(spec, seed=s, seller="random").seller for s in range(12)]
    assert sellers == [generated(spec, seed=s, seller="random").seller for s in range(12)]
    assert len(set(sellers)) > 3
    assert all(s in generated(spec, seed=0).graph for s in sellers)


def test_a_node_literally_named_like_a_keyword_is_that_node() -> None:
    text = 'seller = "random"\n[values]\nrandom = 0\na = 1\nb = 2\n[graph]\nedges = [["random", "a"], ["a", "b"]]\n'
    assert parse_scenario(text, source="t.toml").seller == "random"


# ----------------------------------------------------------------------------- validation

GOOD_HEAD = 'name = "bad"\nseller = "s"\n'

BAD = {
    # case: (file text, key the error must name)
    "malformed_toml": ('name = "bad\nseller = "s"\n', "toml"),
    "unknown_node_in_edge": (GOOD_HEAD + '[values]\ns = 0\na = 1\n[graph]\nedges = [["s", "a"], ["a", "zed"]]\n', "graph.edges[1]"),
    "seller_without_neighbours": (GOOD_HEAD + '[values]\ns = 0\na = 1\nb = 2\n[graph]\nedges = [["a", "b"]]\n', "seller"),
    "negative_value": (GOOD_HEAD + '[values]\ns = 0\na = -1\n[graph]\nedges = [["s", "a"]]\n', "values.a"),
    "more_than_6_decimals": (GOOD_HEAD + '[values]\ns = 0\na = 0.1234567\n[graph]\nedges = [["s", "a"]]\n', "values.a"),
    "unknown_top_level_key": (GOOD_HEAD + 'colour = "red"\n[values]\ns = 0\na = 1\n[graph]\nedges = [["s", "a"]]\n', "colour"),
}

MORE_BAD = {
    "decimal_string_too_precise": (GOOD_HEAD + '[values]\ns = 0\na = "1.0000001"\n[graph]\nedges = [["s", "a"]]\n', "values.a"),
    "no_graph": (GOOD_HEAD + "[values]\ns = 0\n", "graph"),
    "two_graph_forms": (GOOD_HEAD + '[values]\ns = 0\n[graph]\nedges = []\ndataset = "karate_club"\n', "graph"),
    "unknown_generator": (GOOD_HEAD + '[graph]\ngenerator = "nope"\nn = 3\n', "graph.generator"),
    "unknown_dataset": (GOOD_HEAD + '[graph]\ndataset = "nope"\n', "graph.dataset"),
    "missing_generator_parameter": (GOOD_HEAD + '[graph]\ngenerator = "barabasi_albert"\nn = 30\n', "graph.m"),
    "probability_out_of_range": (GOOD_HEAD + '[graph]\ngenerator = "erdos_renyi"\nn = 30\np = 1.5\n', "graph.p"),
    "seller_not_a_node": ('seller = "q"\n[values]\ns = 0\na = 1\n[graph]\nedges = [["s", "a"]]\n', "seller"),
    "missing_value": (GOOD_HEAD + '[values]\ns = 0\n[graph]\nnodes = ["a"]\nedges = [["s", "a"]]\n', "values.a"),
    "self_loop": (GOOD_HEAD + '[values]\ns = 0\na = 1\n[graph]\nedges = [["s", "a"], ["a", "a"]]\n', "graph.edges[1]"),
    "bad_value_model_kind": (GOOD_HEAD + '[values]\ns = 0\n[graph]\nnodes = ["a"]\nedges = [["s", "a"]]\n[value_model]\nkind = "x"\n', "value_model.kind"),
    "value_model_low_above_high": (
        GOOD_HEAD + '[values]\ns = 0\n[graph]\nnodes = ["a"]\nedges = [["s", "a"]]\n[value_model]\nkind = "uniform"\nlow = 3\nhigh = 2\n',
        "value_model.low",
    ),
    "unknown_behaviour": (GOOD_HEAD + '[values]\ns = 0\na = 1\n[graph]\nedges = [["s", "a"]]\n[behaviours.a]\nlie = true\n', "behaviours.a.lie"),
    "boolean_value": (GOOD_HEAD + '[values]\ns = 0\na = true\n[graph]\nedges = [["s", "a"]]\n', "values.a"),
}


@pytest.mark.parametrize("case", sorted({**BAD, **MORE_BAD}))
def test_invalid_scenarios_raise_a_scenario_error_naming_file_and_key(case: str, tmp_path: Path) -> None:
    text, key = {**BAD, **MORE_BAD}[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    error = info.value
    assert error.path == str(path)
    assert error.key == key
    message = str(error)
    assert str(path) in message
    assert key in message
    assert "\n" not in message


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "nope.toml")
    assert info.value.key == "file"
    assert str(tmp_path / "nope.toml") in str(info.value)


def test_non_utf8_file_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.key == "file"


# ---- regression: src/peer/scenario/load.py ---------------------------------------------------
# ``dataset`` / ``generator`` values that are not strings are looked up in a dict before any
# type check, so a list or table raises TypeError (unhashable) with a traceback instead of
# a ScenarioError naming the key.  Minimal file:  seller = "s"  [graph]  dataset = ["karate_club"]
@pytest.mark.parametrize(
    ("spec", "key"),
    [('dataset = ["karate_club"]', "graph.dataset"), ("generator = { n = 3 }", "graph.generator")],
)
def test_regression_non_string_dataset_or_generator_is_a_scenario_error(spec: str, key: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(f'seller = "max_degree"\n[graph]\n{spec}\n', source="t.toml")
    assert info.value.key == key
