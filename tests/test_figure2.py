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
    accumulate_distributed,
    draw_crm_tasks,
    draw_inputs,
    draw_run_seeds,
    load_figure2_scenario,
    run_figure2,
    vcg_neighbours_revenue,
)
from peer.experiments.sra_distributed import RoundsRelation, evaluate, evaluate_exact, replay_row
from peer.money import SCALE
from peer.reference.crm import crm, crm_on_tree
from peer.reference.idm import idm_outcome
from peer.reference.vcg import vcg_neighbours
from peer.sim.run import simulate
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


# ------------------------------------------- distributed SRA (rounds) == replay


def test_rounds_relation_on_figure2(setup: Setup) -> None:
    rounds, layout = setup.rounds, setup.layout
    name = layout.nodes
    inviters = {name[c]: sorted(name[m] for m in rounds.inviters[c]) for c in range(len(name))}
    assert {n: i for n, i in inviters.items() if len(i) > 1} == {"d": ["a", "b"], "e": ["c", "d"], "h": ["e", "f"]}
    assert rounds.combinations == 8
    trees = setup.realised_trees
    assert trees is not None and trees.shape == (8, len(name))
    assert len({tuple(t) for t in trees.tolist()}) == 8
    for tree in trees:
        for col in layout.buyers:
            assert tree[col] in rounds.inviters[col]
    participants = {name[c]: [name[m] for m in rounds.participants[c]] for c in range(len(name))}
    assert participants["s"] == ["a", "b"] and participants["d"] == ["e", "f"] and participants["g"] == []


def rows_for_trees(values: np.ndarray, trees: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (sample, tree) pair as one row."""
    return np.repeat(values, len(trees), axis=0), np.tile(trees, (len(values), 1))


def assert_distributed_equals_replay(rounds: RoundsRelation, values: np.ndarray, parents: np.ndarray,
                                     seeds: np.ndarray) -> int:
    """evaluate_exact == replay_stage3 (with the row's seed) on every row; returns how many rows were tie-flagged."""
    out, redone = evaluate_exact(rounds, values, parents, seeds)
    flagged = evaluate(rounds, values, parents).tied
    assert redone == int(flagged.sum())
    for row in range(len(values)):
        hops, winner = replay_row(rounds, values[row], parents[row], int(seeds[row]))
        assert_row_equals(rounds.layout, values, out, row, hops, winner)
    return redone


def test_distributed_vectorised_equals_replay_distinct_values(setup: Setup) -> None:
    layout = setup.layout
    values = draw_inputs(setup, 300, 1, seed=7)[0]
    assert all(len(set(r)) == len(r) for r in values[:, layout.buyers].tolist())
    assert setup.realised_trees is not None
    rows, parents = rows_for_trees(values, setup.realised_trees)
    stage3 = evaluate(setup.rounds, rows, parents)
    assert not stage3.tied.any()  # distinct values: no tie-break, the vectorised rows stand alone
    assert assert_distributed_equals_replay(setup.rounds, rows, parents, np.zeros(len(rows), dtype=np.int64)) == 0


@pytest.mark.parametrize("reserve", [0, SCALE // 2])
def test_distributed_vectorised_equals_replay_with_ties(setup: Setup, reserve: int) -> None:
    """Coarse values: ties for first place (broken by the seed), host value == price, bids below the reserve."""
    values = tie_heavy_values(setup.layout, 60, np.random.default_rng(12), reserve)
    assert setup.realised_trees is not None
    rows, parents = rows_for_trees(values, setup.realised_trees)
    seeds = np.random.default_rng(5).integers(0, 2**62, size=len(rows))
    assert assert_distributed_equals_replay(setup.rounds, rows, parents, seeds) > 0


def test_distributed_vectorised_equals_replay_on_random_graphs() -> None:
    rng = np.random.default_rng(21)
    graphs = small_graphs()
    for seed in range(4):  # deeper, sparser graphs: longer resale paths
        g = nx.relabel_nodes(nx.connected_watts_strogatz_graph(12, 3, 0.5, seed=seed), lambda n: f"v{n:02d}")
        graphs.append((g, "v00"))
    for graph, seller in graphs:
        layout = Layout(graph, seller)
        rounds = RoundsRelation.from_layout(layout)
        trees = rounds.enumerate_trees() if rounds.combinations <= 64 else rounds.sample_trees(rng, 64)
        for values in (
            rng.integers(0, 10 * SCALE, size=(12, len(layout.nodes))).astype(np.int64),
            tie_heavy_values(layout, 12, rng, reserve=SCALE // 4),
        ):
            rows, parents = rows_for_trees(values, trees)
            assert_distributed_equals_replay(rounds, rows, parents, rng.integers(0, 2**62, size=len(rows)))


def test_sampled_trees_are_uniform_over_inviter_choices(setup: Setup) -> None:
    trees = setup.rounds.sample_trees(np.random.default_rng(0), 8000)
    assert setup.realised_trees is not None
    index = {tuple(t): k for k, t in enumerate(setup.realised_trees.tolist())}
    counts = np.bincount([index[tuple(t)] for t in trees.tolist()], minlength=8)
    assert counts.min() > 880 and counts.max() < 1120  # 1000 each, sd ~30


def test_simulator_lands_on_an_enumerated_tree_with_the_replays_outcome(setup: Setup, scenarios_dir: Path) -> None:
    """`simulate(mode="rounds", seed=s)`: its relation is the enumerated one, and its outcome is exactly the
    replay's (and the vectorised evaluator's) on the tree it realised, with s breaking ties."""
    scenario = load_scenario(scenarios_dir / "paper-figure2.toml")
    layout, rounds = setup.layout, setup.rounds
    assert setup.realised_trees is not None
    index = {tuple(t): k for k, t in enumerate(setup.realised_trees.tolist())}
    samples = np.concatenate([
        draw_inputs(setup, 3, 1, seed=13)[0],
        tie_heavy_values(layout, 3, np.random.default_rng(2), reserve=0),  # ties: the run seed decides
    ])
    seen: set[int] = set()
    tie_runs = 0
    for row in range(len(samples)):
        vals = profile(layout, samples, row)
        for s in range(64 if row == 0 else 6):
            run, _ = simulate(scenario.with_values(vals), seed=s, mode="rounds")
            for name, report in run.nodes.items():
                col = layout.column[name]
                assert report.inviters == [layout.nodes[m] for m in rounds.inviters[col]]
                assert report.invitees == [layout.nodes[m] for m in rounds.participants[col]]
            tree = rounds.tree_of({n: r.parent for n, r in run.nodes.items()})
            k = index[tuple(tree.tolist())]  # one of the enumerated trees
            seen.add(k)
            hops, winner = replay_row(rounds, samples[row], tree, s)
            assert (run.hops, run.winner) == (hops, winner)
            out, redone = evaluate_exact(rounds, samples[row : row + 1], tree[None, :], np.array([s]))
            tie_runs += redone
            assert_row_equals(layout, samples[row : row + 1], out, 0, run.hops, run.winner)
            utilities, revenue = utilities_from_hops(layout.seller, vals, run.hops, run.winner)
            assert (run.utilities, run.revenue) == (utilities, revenue)
    assert seen == set(range(8))  # 64 seeds realise all 8 trees
    assert tie_runs > 0  # some runs had a selling tie for first place, broken by the run seed


@pytest.mark.parametrize("reserve", [0, SCALE // 2])
def test_vcg_neighbours_revenue_equals_reference(setup: Setup, reserve: int) -> None:
    layout = setup.layout
    tied = tie_heavy_values(layout, 50, np.random.default_rng(4), reserve)
    for values in (draw_inputs(setup, 50, 1, seed=3)[0], tied):
        values[:, layout.column[layout.seller]] = reserve
        got = vcg_neighbours_revenue(setup, values)
        for row in range(len(values)):
            ref = vcg_neighbours(layout.graph, layout.seller, profile(layout, values, row), seed=row)
            assert int(got[row]) == ref.revenue


def test_distributed_revenue_never_below_vcg_among_neighbours(setup: Setup) -> None:
    """Prop. 5.4 for the distributed SRA, on every (sample, realised tree) of 2000 samples."""
    values = draw_inputs(setup, 2000, 1, seed=17)[0]
    assert setup.realised_trees is not None
    rows, parents = rows_for_trees(values, setup.realised_trees)
    out, _ = evaluate_exact(setup.rounds, rows, parents, np.zeros(len(rows), dtype=np.int64))
    assert (out.revenue >= np.repeat(vcg_neighbours_revenue(setup, values), len(setup.realised_trees))).all()


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


def scalar_distributed_totals(setup: Setup, values: np.ndarray, run_seeds: np.ndarray, runs: int) -> Totals:
    """The distributed series' sums, recomputed with replay_stage3 one (sample, tree) at a time."""
    layout, rounds = setup.layout, setup.rounds
    totals = Totals.zeros(len(layout.nodes))
    for row in range(len(values)):
        vals = profile(layout, values, row)
        if setup.realised_trees is not None:
            trees = setup.realised_trees
        else:
            trees = rounds.sample_trees(np.random.default_rng(int(run_seeds[row])), runs)
        for tree in trees:
            hops, winner = replay_row(rounds, values[row], tree, int(run_seeds[row]))
            utilities, revenue = utilities_from_hops(layout.seller, vals, hops, winner)
            totals.wins[layout.column[winner]] += 1
            for n, u in utilities.items():
                totals.utility[layout.column[n]] += u
            totals.revenue += revenue
            totals.evaluations += 1
    return totals


@pytest.mark.parametrize("max_enumerated", [4096, 4])  # 4: forces the sampled mode (8 > 4 trees)
def test_distributed_totals_equal_scalar_loop(scenarios_dir: Path, max_enumerated: int) -> None:
    setup = Setup.from_scenario(load_scenario(scenarios_dir / "paper-figure2.toml"), max_enumerated=max_enumerated)
    samples, runs = 20, 7
    values = np.concatenate([draw_inputs(setup, samples - 6, 1, seed=4)[0],
                             tie_heavy_values(setup.layout, 6, np.random.default_rng(6), reserve=0)])
    run_seeds = draw_run_seeds(samples, seed=4)
    totals = Totals.zeros(len(setup.layout.nodes))
    replayed = accumulate_distributed(setup, values, run_seeds, runs, 0, 9, totals, block_rows=10)
    replayed += accumulate_distributed(setup, values, run_seeds, runs, 9, samples, totals)
    assert_totals_equal(totals, scalar_distributed_totals(setup, values, run_seeds, runs))
    assert totals.evaluations == samples * (runs if max_enumerated == 4 else 8)
    assert replayed > 0  # the tie-heavy rows went through the reference


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
    assert (a.sra, a.idm, a.distributed) == (b.sra, b.idm, b.distributed)  # chunking changes nothing
    assert (a.realised_trees, a.realised_trees_enumerated) == (8, True)
    for m, evaluations in ((a.sra, 300 * 40), (a.idm, 300), (a.distributed, 300 * 8)):
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
    for mech in ("sra", "sra_distributed", "idm"):
        total = sum(Fraction(r[f"{mech}_win_probability"]) for r in rows)
        total += Fraction(str(summary[mech]["seller_keeps_probability"]))
        assert abs(total - 1) <= Fraction(len(rows) + 1, 10**12)  # 12-place rounding per entry
        assert all(Fraction(r[f"{mech}_expected_utility"]) >= 0 for r in rows)
    assert (out / "figure2.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["samples"] == 200 and summary["runs"] == 50
    assert summary["realised_trees"] == 8 and summary["sra_distributed"]["evaluations"] == 200 * 8
    for mech in ("sra", "sra_distributed", "idm"):
        assert summary[mech]["expected_revenue"] > 0


def test_cli_missing_scenario_is_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["experiment", "figure2", "--scenario", str(tmp_path / "nope.toml"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
