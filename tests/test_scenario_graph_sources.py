"""A scenario's graph from any networkx generator by name, or from an edge-list file."""

from __future__ import annotations

import gzip
from pathlib import Path

import networkx as nx
import pytest

from peer.errors import ScenarioError
from peer.scenario.load import load_scenario, parse_scenario

HEAD = 'name = "g"\nseller = "max_degree"\nseed = 4\n[value_model]\nkind = "uniform"\nlow = 0\nhigh = 10\n'


def test_any_networkx_generator_by_name_with_its_parameters() -> None:
    scenario = parse_scenario(HEAD + '[graph]\ngenerator = "powerlaw_cluster_graph"\nn = 60\nm = 2\np = 0.3\n')
    expected = nx.powerlaw_cluster_graph(60, 2, 0.3, seed=4)
    assert scenario.graph.number_of_edges() == expected.number_of_edges()
    again = parse_scenario(HEAD + '[graph]\ngenerator = "powerlaw_cluster_graph"\nn = 60\nm = 2\np = 0.3\n')
    assert sorted(again.graph.edges) == sorted(scenario.graph.edges)


def test_a_generator_without_a_seed_parameter_works() -> None:
    scenario = parse_scenario(HEAD + '[graph]\ngenerator = "grid_2d_graph"\nm = 4\nn = 5\n')
    assert scenario.graph.number_of_nodes() == 20


@pytest.mark.parametrize(("graph", "key", "words"), [
    ('generator = "nope"\nn = 3', "graph.generator", "unknown generator"),
    ('generator = "powerlaw_cluster_graph"\nn = 60\nm = 2\nq = 0.3', "graph.q", "not a parameter"),
    ('generator = "powerlaw_cluster_graph"\nn = 60\nm = 200\np = 0.3', "graph", "failed"),
    ('generator = "complete_graph"\nn = 5000000', "graph.n", "at most"),
    ('file = "missing.txt"', "graph.file", "cannot read"),
    ('file = 3', "graph.file", "must be a path"),
])
def test_bad_graph_sources_are_one_line_naming_the_key(graph: str, key: str, words: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(HEAD + "[graph]\n" + graph + "\n", source="x.toml")
    assert caught.value.key == key and words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_edge_list_file_relative_to_the_scenario_gzip_and_comments(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "edges.txt.gz", "wt") as out:
        out.write("# SNAP style header\n# FromNodeId\tToNodeId\n1\t2\n2\t3\n3\t1\n3\t4\n4\t4\n2\t1\n")
    (tmp_path / "s.toml").write_text(HEAD + '[graph]\nfile = "edges.txt.gz"\n', encoding="utf-8")
    scenario = load_scenario(tmp_path / "s.toml")
    assert sorted(map(sorted, scenario.graph.edges)) == [["1", "2"], ["1", "3"], ["2", "3"], ["3", "4"]]
    assert scenario.seller == "3"


def test_an_edge_list_line_with_one_column_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "e.txt").write_text("1 2\n7\n", encoding="utf-8")
    (tmp_path / "s.toml").write_text(HEAD + '[graph]\nfile = "e.txt"\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"e\.txt:2: expected 'u v'"):
        load_scenario(tmp_path / "s.toml")
