"""QPQ scenario files: the shipped ones load; every mistake names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from peer.errors import ScenarioError
from peer.qpq.scenario import load_qpq_scenario, parse_qpq_scenario


@pytest.mark.parametrize("name", ["qpq-small.toml", "qpq-1024.toml", "qpq-karate.toml", "qpq-mixed.toml"])
def test_shipped_scenarios_load(scenarios_dir: Path, name: str) -> None:
    setup = load_qpq_scenario(scenarios_dir / name)
    assert setup.membership.n >= 16 and setup.rounds >= 1


def test_small_scenario_contents(scenarios_dir: Path) -> None:
    s = load_qpq_scenario(scenarios_dir / "qpq-small.toml")
    assert s.membership.k == 4 and [s.membership.size(c) for c in s.membership.ids] == [4, 4, 4, 4]
    assert s.profile("4").spec == "beta_cheater(3)" and s.profile("0").honest
    assert s.distribution("1").spec == "normal(10, 2)" and s.distribution("0").spec == "uniform(0, 1)"
    assert s.config.gof.window == 100


def test_karate_explicit_clusters(scenarios_dir: Path) -> None:
    s = load_qpq_scenario(scenarios_dir / "qpq-karate.toml")
    assert s.membership.ids == ("mr-hi", "officer") and s.membership.size("mr-hi") == 17


GOOD = """
[qpq]
players = 9
"""


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[qpq]\nplayers = 1\n", "qpq.players"),
        ("[qpq]\n", "graph"),
        ("[graph]\nedges = [[\"a\", \"b\"]]\n[qpq]\nplayers = 4\n", "graph"),
        (GOOD + "bogus = 1\n", "qpq.bogus"),
        ("colour = 1\n" + GOOD, "colour"),
        (GOOD + "k = 10\n", "qpq.k"),
        (GOOD + "clusters = \"louvain\"\n", "qpq.clusters"),
        (GOOD + "window = 0\n", "qpq.window"),
        (GOOD + "threshold = 1.5\n", "qpq.threshold"),
        (GOOD + "test = \"anderson\"\n", "qpq.test"),
        (GOOD + "rounds = \"many\"\n", "qpq.rounds"),
        (GOOD + "[qpq.profiles]\np1 = \"beta_cheater\"\n", "qpq.profiles.p1"),
        (GOOD + "[qpq.profiles]\np1 = \"saint\"\n", "qpq.profiles.p1"),
        (GOOD + "[qpq.profiles]\nzz = \"honest\"\n", "qpq.profiles.zz"),
        (GOOD + "[qpq.distributions]\np2 = \"normal(0, -1)\"\n", "qpq.distributions.p2"),
        (GOOD + "[qpq.distributions]\ndefault = \"cauchy(0, 1)\"\n", "qpq.distributions.default"),
        (GOOD + "[qpq.distributions]\np2 = \"uniform(1, x)\"\n", "qpq.distributions.p2"),
        ("[graph]\nedges = [[\"a\", \"b\"], [\"b\", \"c\"]]\n[qpq]\n[qpq.clusters]\na = \"x\"\nb = \"x\"\n", "qpq.clusters.c"),
        ("[graph]\nedges = [[\"a\", \"b\"]]\n[qpq]\nk = 1\n[qpq.clusters]\na = \"x\"\nb = \"x\"\n", "qpq.k"),
        ("[graph]\ngenerator = \"barabasi_albert\"\nn = 10\n[qpq]\n", "graph.m"),
        ("[graph]\ngenerator = \"nope\"\n[qpq]\n", "graph.generator"),
        ("[graph]\nedges = [[\"a\", \"a\"]]\n[qpq]\n", "graph.edges[0]"),
        ("not toml [", "toml"),
    ],
)
def test_errors_name_the_file_and_the_key(text: str, key: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_qpq_scenario(text, source="bad.toml")
    assert info.value.key == key, str(info.value)
    assert str(info.value).startswith(f"bad.toml: [{key}]")


def test_missing_file() -> None:
    with pytest.raises(ScenarioError) as info:
        load_qpq_scenario("/nonexistent/qpq.toml")
    assert info.value.key == "file"


def test_players_without_graph_chunk_into_sqrt_n() -> None:
    s = parse_qpq_scenario(GOOD)
    assert s.graph is None and s.membership.k == 3 and s.membership.nodes[0] == "p0"
