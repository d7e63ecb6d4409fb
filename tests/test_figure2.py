"""`peer experiment figure2`: the vectorised CRM/IDM equal the scalar references exactly, and the run's outputs."""

from __future__ import annotations

import csv
import json
import random
from fractions import Fraction
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from typer.testing import CliRunner

from peer.cli.app import app
from peer.experiments.crm_vectorised import CrmTables, IdmTables, Layout, Outcomes, highest_columns
from peer.experiments.figure2 import (
    CSV_COLUMNS,
    PACKAGED_SCENARIO,
    Setup,
    Totals,
    accumulate,
    draw_crm_tasks,
    draw_inputs,
    load_figure2_scenario,
    run_figure2,
)
from peer.money import SCALE
from peer.reference.crm import crm, crm_on_tree
from peer.reference.idm import idm_outcome
from peer.result import utilities_from_hops
from peer.scenario.load import load_scenario, parse_scenario


class Forced(random.Random):
    """An rng whose only choice (the highest bidder among ties) is fixed, to replay one tie-break."""

    def __init__(self, pick: str) -> None:
        super().__init__(0)
        self.pick = pick

    def choice(self, seq):  # type: ignore[no-untyped-def, override]
        assert self.pick in seq
        return self.pick


@pytest.fixture(scope="module")
def setup(scenarios_dir: Path) -> Setup:
    return Setup.from_scenario(load_scenario(scenarios_dir / "paper-figure2.toml"))


@pytest.fixture(scope="module")
def scenarios_dir() -> Path:  # module-scoped twin of the conftest fixture
    return Path(__file__).resolve().parent.parent / "scenarios"


def profile(layout: Layout, values: np.ndarray, row: int) -> dict[str, int]:
    return {n: int(values[row, i]) for i, n in enumerate(layout.nodes)}


def assert_row_equals(
    layout: Layout, values: np.ndarray, out: Outcomes, row: int, hops: list, winner: str
) -> None:
    """One vectorised row against a reference (hops, winner): same path, prices, winner, utilities, revenue."""
    vals = profile(layout, values, row)
    utilities, revenue = utilities_from_hops(layout.seller, vals, hops, winner)
    nodes = layout.nodes
    got_hops = [
        (j, nodes[out.path[row, j - 1]], nodes[out.path[row, j]], int(out.prices[row, j - 1]))
        for j in range(1, int(out.hops[row]) + 1)
    ]
    assert got_hops == [(h.hop, h.seller, h.buyer, h.price) for h in hops]
    assert nodes[out.winner[row]] == winner
    assert int(out.revenue[row]) == revenue
    assert {n: int(out.utilities[row, i]) for i, n in enumerate(nodes)} == utilities


def tie_heavy_values(layout: Layout, rows: int, rng: np.random.Generator, reserve: int) -> np.ndarray:
    """Values on a 5-point grid: ties everywhere (highest bidder, host == price), some below the reserve."""
    values = rng.integers(0, 5, size=(rows, len(layout.nodes))).astype(np.int64) * (SCALE // 4)
    values[:, layout.column[layout.seller]] = reserve
    return values


def small_graphs() -> list[tuple[nx.Graph, str]]:
    """Random connected graphs with few enough spanning trees to enumerate, plus a tree and a cycle."""
    out: list[tuple[nx.Graph, str]] = []
    seed = 0
    while len(out) < 6:
        seed += 1
        g = nx.relabel_nodes(nx.gnp_random_graph(7, 0.45, seed=seed), lambda n: f"n{n}")
        if nx.is_connected(g) and nx.number_of_spanning_trees(g) <= 400:
            out.append((g, sorted(g.nodes)[seed % 7]))
    out.append((nx.relabel_nodes(nx.random_labeled_tree(6, seed=3), str), "0"))
    out.append((nx.relabel_nodes(nx.cycle_graph(6), str), "2"))
    return out


# ------------------------------------------------------- vectorised == scalar


def test_crm_vectorised_equals_reference_distinct_values(setup: Setup) -> None:
    layout = setup.layout
    values = draw_inputs(setup, 60, 1, seed=7)[0]
    buyer_vals = values[:, layout.buyers]
    assert all(len(set(r)) == len(r) for r in buyer_vals.tolist())  # distinct: no tie-break involved
    z, _ = highest_columns(values, layout.buyers)
    for k, parents in enumerate(setup.crm.trees):
        out = setup.crm.evaluate(values, z, k)
        for row in range(len(values)):
            vals = profile(layout, values, row)
            hops, winner = crm_on_tree(layout.adjacency, layout.seller, vals, parents, random.Random(0))
            assert_row_equals(layout, values, out, row, hops, winner)


@pytest.mark.parametrize("reserve", [0, SCALE // 2])
def test_crm_vectorised_equals_reference_with_ties(setup: Setup, reserve: int) -> None:
    layout = setup.layout
    values = tie_heavy_values(layout, 40, np.random.default_rng(11), reserve)
    _, tied = highest_columns(values, layout.buyers)
    assert (tied.sum(axis=1) > 1).any()
    for k in range(0, len(setup.crm.trees), 5):
        parents = setup.crm.trees[k]
        for row in range(len(values)):
            for cand in np.flatnonzero(tied[row]):  # every tie-break the reference could make
                out = setup.crm.evaluate(values[row : row + 1], np.array([cand]), k)
                vals = profile(layout, values, row)
                hops, winner = crm_on_tree(layout.adjacency, layout.seller, vals, parents, Forced(layout.nodes[cand]))
                assert_row_equals(layout, values[row : row + 1], out, 0, hops, winner)


def test_crm_and_idm_vectorised_equal_reference_on_random_graphs() -> None:
    rng = np.random.default_rng(3)
    for graph, seller in small_graphs():
        layout = Layout(graph, seller)
        crm_tables, idm_tables = CrmTables(layout), IdmTables(layout)
        for values in (
            rng.integers(0, 10 * SCALE, size=(15, len(layout.nodes))).astype(np.int64),
            tie_heavy_values(layout, 15, rng, reserve=SCALE // 4),
        ):
            _, tied = highest_columns(values, layout.buyers)
            for row in range(len(values)):
                vals = profile(layout, values, row)
                for cand in np.flatnonzero(tied[row]):
                    z = np.array([cand])
                    one = values[row : row + 1]
                    hops, winner = idm_outcome(graph, seller, vals, Forced(layout.nodes[cand]))
                    assert_row_equals(layout, one, idm_tables.evaluate(one, z), 0, hops, winner)
                    for k, parents in enumerate(crm_tables.trees):
                        hops, winner = crm_on_tree(layout.adjacency, seller, vals, parents, Forced(layout.nodes[cand]))
                        assert_row_equals(layout, one, crm_tables.evaluate(one, z, k), 0, hops, winner)


@pytest.mark.parametrize("reserve", [0, SCALE // 2])
def test_idm_vectorised_equals_reference(setup: Setup, reserve: int) -> None:
    layout = setup.layout
    graph = layout.graph
    for values in (draw_inputs(setup, 100, 1, seed=5)[0], tie_heavy_values(layout, 60, np.random.default_rng(2), reserve)):
        _, tied = highest_columns(values, layout.buyers)
        for row in range(len(values)):
            for cand in np.flatnonzero(tied[row]):
                one = values[row : row + 1]
                hops, winner = idm_outcome(graph, layout.seller, profile(layout, values, row), Forced(layout.nodes[cand]))
                assert_row_equals(layout, one, setup.idm.evaluate(one, np.array([cand])), 0, hops, winner)


def test_average_over_all_trees_equals_reference_crm(setup: Setup) -> None:
    """The enumerated trees are the reference's: the exact tree average matches crm() (Eq. 5)."""
    layout = setup.layout
    values = draw_inputs(setup, 4, 1, seed=9)[0]
    z, _ = highest_columns(values, layout.buyers)
    trees = len(setup.crm.trees)
    for row in range(len(values)):
        one = values[row : row + 1]
        totals = Totals.zeros(len(layout.nodes))
        for k in range(trees):
            totals.add(setup.crm.evaluate(one, z[row : row + 1], k), np.ones(1, dtype=np.int64))
        ref = crm(layout.graph, layout.seller, profile(layout, values, row), seed=0)
        assert ref.extra["trees"] == trees and ref.extra["trees_exact"]
        assert {n: Fraction(int(totals.utility[i]), trees) for i, n in enumerate(layout.nodes)} == ref.utilities
        assert Fraction(totals.revenue, trees) == ref.revenue


# ------------------------------------------------------------- aggregation


def scalar_totals(setup: Setup, values: np.ndarray, tasks, idm_z: np.ndarray) -> tuple[Totals, Totals]:  # type: ignore[no-untyped-def]
    """The experiment's sums, recomputed with the scalar references, one (task, tree) at a time."""
    layout = setup.layout
    sra, idm = Totals.zeros(len(layout.nodes)), Totals.zeros(len(layout.nodes))

    def add(totals: Totals, hops: list, winner: str, vals: dict[str, int], weight: int) -> None:  # type: ignore[type-arg]
        utilities, revenue = utilities_from_hops(layout.seller, vals, hops, winner)
        totals.wins[layout.column[winner]] += weight
        for n, u in utilities.items():
            totals.utility[layout.column[n]] += weight * u
        totals.revenue += weight * revenue
        totals.evaluations += weight

    for t in range(len(tasks.rows)):
        vals = profile(layout, values, int(tasks.rows[t]))
        pick = Forced(layout.nodes[tasks.z[t]])
        for k, parents in enumerate(setup.crm.trees):
            if tasks.counts[t, k]:
                hops, winner = crm_on_tree(layout.adjacency, layout.seller, vals, parents, pick)
                add(sra, hops, winner, vals, int(tasks.counts[t, k]))
    for row in range(len(values)):
        vals = profile(layout, values, row)
        hops, winner = idm_outcome(layout.graph, layout.seller, vals, Forced(layout.nodes[idm_z[row]]))
        add(idm, hops, winner, vals, 1)
    return sra, idm


def assert_totals_equal(a: Totals, b: Totals) -> None:
    assert a.wins.tolist() == b.wins.tolist()
    assert a.utility.tolist() == b.utility.tolist()
    assert (a.revenue, a.evaluations) == (b.revenue, b.evaluations)


def test_accumulated_totals_equal_scalar_loop(setup: Setup) -> None:
    samples, runs = 25, 30
    values, tasks, idm_z = draw_inputs(setup, samples, runs, seed=4)
    columns = len(setup.layout.nodes)
    sra, idm = Totals.zeros(columns), Totals.zeros(columns)
    accumulate(setup, values, tasks, idm_z, 0, 10, sra, idm)  # two chunks, as the run does
    accumulate(setup, values, tasks, idm_z, 10, samples, sra, idm)
    ref_sra, ref_idm = scalar_totals(setup, values, tasks, idm_z)
    assert_totals_equal(sra, ref_sra)
    assert_totals_equal(idm, ref_idm)
    assert sra.evaluations == samples * runs


def test_tied_rows_split_their_runs_over_candidates(setup: Setup) -> None:
    layout = setup.layout
    values = tie_heavy_values(layout, 30, np.random.default_rng(8), reserve=0)
    runs = 12
    tasks = draw_crm_tasks(setup, values, runs, np.random.default_rng(1))
    _, tied = highest_columns(values, layout.buyers)
    for row in range(len(values)):
        mine = np.flatnonzero(tasks.rows == row)
        assert sorted(tasks.z[mine].tolist()) == np.flatnonzero(tied[row]).tolist()
        assert int(tasks.counts[mine].sum()) == runs
    idm_z = np.array([np.flatnonzero(tied[r])[-1] for r in range(len(values))])
    sra, idm = Totals.zeros(len(layout.nodes)), Totals.zeros(len(layout.nodes))
    accumulate(setup, values, tasks, idm_z, 0, len(values), sra, idm)
    ref_sra, ref_idm = scalar_totals(setup, values, tasks, idm_z)
    assert_totals_equal(sra, ref_sra)
    assert_totals_equal(idm, ref_idm)


def test_run_is_seeded_and_exact() -> None:
    scenario = parse_scenario(PACKAGED_SCENARIO)
    a = run_figure2(scenario, samples=300, runs=40, seed=3, chunk=128)
    b = run_figure2(scenario, samples=300, runs=40, seed=3)
    assert (a.sra, a.idm) == (b.sra, b.idm)  # chunking changes nothing
    for m, evaluations in ((a.sra, 300 * 40), (a.idm, 300)):
        assert m.evaluations == evaluations
        assert sum(m.wins.values()) == evaluations  # every evaluation has exactly one holder
        assert all(u >= 0 for u in m.utility.values())  # individual rationality
        assert m.utility[a.seller] == m.revenue  # reserve 0
    assert a.buyers == ["a", "b", "c", "d", "e", "f", "g", "h", "i"]


def test_packaged_copy_matches_scenario_file(scenarios_dir: Path) -> None:
    packaged = parse_scenario(PACKAGED_SCENARIO)
    on_disk = load_scenario(scenarios_dir / "paper-figure2.toml")
    assert (packaged.name, packaged.seller) == (on_disk.name, on_disk.seller)
    assert sorted(packaged.graph.nodes) == sorted(on_disk.graph.nodes)
    assert {frozenset(e) for e in packaged.graph.edges} == {frozenset(e) for e in on_disk.graph.edges}
    assert packaged.values == on_disk.values


# ---------------------------------------------------------------------- CLI


def test_default_scenario_falls_back_to_packaged_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_figure2_scenario(None).source == "<packaged paper-figure2>"
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    assert load_figure2_scenario(None).source.endswith("paper-figure2.toml")


def test_cli_small_run_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no scenarios/ here: the packaged graph is used, output under ./out/figure2
    result = CliRunner().invoke(app, ["experiment", "figure2", "--samples", "200", "--runs", "50"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "figure2"
    with (out / "figure2.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        rows = list(reader)
    assert [r["buyer"] for r in rows] == list("abcdefghi")
    assert [int(r["depth"]) for r in rows] == [1, 1, 2, 2, 3, 3, 4, 4, 4]
    summary = json.loads((out / "summary.json").read_text())
    for mech in ("sra", "idm"):
        total = sum(Fraction(r[f"{mech}_win_probability"]) for r in rows)
        total += Fraction(str(summary[mech]["seller_keeps_probability"]))
        assert abs(total - 1) <= Fraction(len(rows) + 1, 10**12)  # 12-place rounding per entry
        assert all(Fraction(r[f"{mech}_expected_utility"]) >= 0 for r in rows)
    assert (out / "figure2.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["samples"] == 200 and summary["runs"] == 50


def test_cli_missing_scenario_is_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["experiment", "figure2", "--scenario", str(tmp_path / "nope.toml"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
