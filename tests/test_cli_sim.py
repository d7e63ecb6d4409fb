"""``peer sim``: JSON and table output, every mechanism, several runs, and bad input."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from peer.cli.app import app

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SMALL = str(SCENARIOS / "small-tree.toml")
FIGURE2 = str(SCENARIOS / "paper-figure2.toml")
MECHANISMS = ["sra", "replay", "crm", "idm", "vcg-neighbours"]
ENV = {"COLUMNS": "80", "NO_COLOR": "1"}


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["sim", *args], env=ENV)


def sim_json(*args: str) -> dict[str, Any]:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout, parse_float=Decimal)


# ----------------------------------------------------------------------------- JSON


def test_small_tree_json_has_every_key_and_the_exact_outcome() -> None:
    out = sim_json(SMALL)
    assert {"mechanism", "seller", "seed", "nodes", "hops", "winner", "utilities", "revenue", "messages"} <= set(out)
    assert out["mechanism"] == "sra"
    assert out["seller"] == "s"
    assert out["seed"] == 1
    assert set(out["nodes"]) == {"s", "a", "b"}
    for report in out["nodes"].values():
        assert {"value", "inviters", "invitees", "parent"} <= set(report)
    assert {n: r["value"] for n, r in out["nodes"].items()} == {"s": 0, "a": 8, "b": 5}
    assert out["nodes"]["a"]["parent"] == "s" and out["nodes"]["a"]["inviters"] == ["s"]
    assert out["nodes"]["s"]["invitees"] == ["a", "b"] and out["nodes"]["s"]["parent"] is None
    assert out["hops"] == [{"hop": 1, "seller": "s", "buyer": "a", "price": 5}]
    assert out["winner"] == "a"
    assert out["utilities"] == {"s": 5, "a": 3, "b": 0}
    assert out["revenue"] == 5
    assert set(out["messages"]) == {"diffusion", "aggregation", "allocation", "settlement"}
    assert out["messages"]["diffusion"] == 2 and out["messages"]["aggregation"] == 2
    assert out["rejected"] == 0


def test_json_amounts_are_exact_decimals() -> None:
    out = sim_json(FIGURE2)
    for report in out["nodes"].values():
        value = report["value"]
        assert isinstance(value, (int, Decimal))  # never a binary float
        if isinstance(value, Decimal):
            assert value == value.quantize(Decimal("0.000001"))  # at most 6 decimals
    assert sum(out["utilities"].values()) >= 0


@pytest.mark.parametrize(("extra", "first"), [((), 1), (("--seed", "10"), 10)])
def test_runs_gives_one_result_per_seed(extra: tuple[str, ...], first: int) -> None:
    out = sim_json(SMALL, "--runs", "3", *extra)
    assert set(out) == {"runs", "summary"}
    assert [r["seed"] for r in out["runs"]] == [first, first + 1, first + 2]
    assert all(r["winner"] == "a" and r["revenue"] == 5 for r in out["runs"])
    summary = out["summary"]
    assert summary["runs"] == 3 and summary["seeds"] == [first, first + 1, first + 2]
    assert summary["revenue"] == {"mean": 5, "ci95": 0, "min": 5, "max": 5}
    assert summary["nodes"]["a"]["wins"] == 1


# ----------------------------------------------------------------------------- several runs: a summary


def test_runs_prints_one_summary_table_not_k_full_tables() -> None:
    result = invoke(FIGURE2, "--runs", "4", "--async")
    assert result.exit_code == 0, result.output
    assert "4 runs (seeds 1..4)" in result.stdout
    assert "mean ± 95% CI" in result.stdout
    assert result.stdout.count("resale path") == 0  # no per-run table
    assert "revenue" in result.stdout and "won" in result.stdout


def test_summary_means_and_intervals_match_the_runs() -> None:
    from fractions import Fraction

    from scipy import stats

    out = sim_json(FIGURE2, "--runs", "5", "--async", "--seed", "3")
    totals = [sum(r["messages"].values()) for r in out["runs"]]
    mean = Fraction(sum(totals), len(totals))
    assert out["summary"]["messages"]["mean"] == round(Decimal(mean.numerator) / mean.denominator, 3)
    expected = stats.t.interval(0.95, len(totals) - 1, loc=float(mean), scale=stats.sem(totals))
    half = (expected[1] - expected[0]) / 2
    assert abs(float(out["summary"]["messages"]["ci95"]) - half) < 1e-3
    revenues = [r["revenue"] for r in out["runs"]]
    assert out["summary"]["revenue"]["mean"] == sum(revenues) / len(revenues)
    wins = {n: sum(r["winner"] == n for r in out["runs"]) for n in {r["winner"] for r in out["runs"]}}
    for node, count in wins.items():
        if node != "s":
            assert out["summary"]["nodes"][node]["wins"] == Decimal(count) / 5


# ----------------------------------------------------------------------------- the run seed


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_run_seed_never_changes_the_graph_or_the_values(mechanism: str) -> None:
    # ws-20 draws its graph and values from the scenario's seed; --seed is the run seed only.
    ws20 = str(SCENARIOS / "ws-20.toml")
    runs = [sim_json(ws20, "--mechanism", mechanism, "--seed", str(s)) for s in (1, 2, 77)]
    values = [{n: r["value"] for n, r in run["nodes"].items()} for run in runs]
    assert values[0] == values[1] == values[2]
    assert len({run["seller"] for run in runs}) == 1
    assert [run["seed"] for run in runs] == [1, 2, 77]


def test_run_seed_changes_what_it_is_documented_to_change() -> None:
    # Async delays are seeded by the run seed: the message interleaving (and so the counts) differs.
    counts = {tuple(sim_json(FIGURE2, "--async", "--seed", str(s))["messages"].items()) for s in range(1, 6)}
    assert len(counts) > 1


# ----------------------------------------------------------------------------- disconnected graphs

DISCONNECTED = (
    'name = "disc"\nseller = "s"\n[values]\ns = 0\na = 8\nb = 5\nc = 3\nd = 4\n'
    '[graph]\nedges = [["s", "a"], ["s", "b"], ["c", "d"]]\n'
)


@pytest.mark.parametrize("json_flag", [(), ("--json",)])
def test_disconnected_graph_warns_on_stderr_how_many_nodes_are_unreachable(
        tmp_path: Path, json_flag: tuple[str, ...]) -> None:
    path = tmp_path / "disc.toml"
    path.write_text(DISCONNECTED, encoding="utf-8")
    result = invoke(str(path), *json_flag)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: 2 of 5 nodes are unreachable from the seller s")
    assert lines[0].endswith("c, d")
    if json_flag:
        json.loads(result.stdout)  # stdout stays pure JSON


def test_connected_graph_gives_no_warning() -> None:
    assert invoke(SMALL).stderr == ""


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_every_mechanism_on_the_small_tree(mechanism: str) -> None:
    out = sim_json(SMALL, "--mechanism", mechanism)
    assert out["mechanism"] == mechanism
    assert out["seller"] == "s"
    # On a star every mechanism is the second-price auction among s's neighbours.
    assert out["utilities"] == {"s": 5, "a": 3, "b": 0}
    assert out["revenue"] == 5
    if mechanism != "crm":
        assert out["winner"] == "a"
        assert out["hops"] == [{"hop": 1, "seller": "s", "buyer": "a", "price": 5}]
    else:
        assert out["win_probability"] == {"a": 1}
    if mechanism == "replay":
        assert out["matches_distributed"] is True


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_every_mechanism_on_paper_figure2(mechanism: str) -> None:
    out = sim_json(FIGURE2, "--mechanism", mechanism)
    assert out["mechanism"] == mechanism
    assert len(out["nodes"]) == 10
    assert all(u >= 0 for u in out["utilities"].values())
    if mechanism == "replay":
        assert out["matches_distributed"] is True
    if mechanism == "crm":
        assert out["trees_exact"] is True
        assert sum(out["win_probability"].values()) == 1


def test_sra_and_its_replay_agree_on_paper_figure2() -> None:
    sra = sim_json(FIGURE2)
    replay = sim_json(FIGURE2, "--mechanism", "replay")
    for key in ("hops", "winner", "utilities", "revenue"):
        assert sra[key] == replay[key]


def test_async_mode_works() -> None:
    for path in (SMALL, FIGURE2):
        out = sim_json(path, "--async")
        assert out["mechanism"] == "sra"
        assert out["rejected"] == 0
        assert out["winner"] in out["nodes"]
    assert sim_json(SMALL, "--async")["utilities"] == {"s": 5, "a": 3, "b": 0}
    assert sim_json(FIGURE2, "--async", "--mechanism", "replay")["matches_distributed"] is True


def test_gather_window_option() -> None:
    assert sim_json(FIGURE2, "--gather-window", "0.25")["rejected"] == 0
    assert sim_json(FIGURE2, "--async", "--gather-window", "0")["rejected"] == 0


# ----------------------------------------------------------------------------- table


def test_default_output_is_a_table_with_the_roles() -> None:
    result = invoke(FIGURE2)
    assert result.exit_code == 0, result.output
    for word in ("seller", "winner", "other", "local seller", "resale path", "revenue"):
        assert word in result.stdout, word
    small = invoke(SMALL)
    assert small.exit_code == 0
    assert all(w in small.stdout for w in ("seller", "winner", "other"))
    assert "s → a (5)" in small.stdout


def test_table_for_crm_shows_win_probabilities() -> None:
    result = invoke(FIGURE2, "--mechanism", "crm")
    assert result.exit_code == 0, result.output
    assert "P(win)" in result.stdout


# ----------------------------------------------------------------------------- bad input

GOOD_HEAD = 'name = "bad"\nseller = "s"\n'
BAD = {
    "malformed_toml": ('name = "bad\nseller = "s"\n', "toml"),
    "unknown_node_in_edge": (GOOD_HEAD + '[values]\ns = 0\na = 1\n[graph]\nedges = [["s", "a"], ["a", "zed"]]\n', "graph.edges[1]"),
    "seller_without_neighbours": (GOOD_HEAD + '[values]\ns = 0\na = 1\nb = 2\n[graph]\nedges = [["a", "b"]]\n', "seller"),
    "negative_value": (GOOD_HEAD + '[values]\ns = 0\na = -1\n[graph]\nedges = [["s", "a"]]\n', "values.a"),
    "more_than_6_decimals": (GOOD_HEAD + '[values]\ns = 0\na = 0.1234567\n[graph]\nedges = [["s", "a"]]\n', "values.a"),
    "unknown_top_level_key": (GOOD_HEAD + 'colour = "red"\n[values]\ns = 0\na = 1\n[graph]\nedges = [["s", "a"]]\n', "colour"),
    # Not strings (a list, a table): unhashable, they used to crash the dict lookup.
    "dataset_not_a_string": (GOOD_HEAD + '[values]\ns = 0\n[graph]\ndataset = ["karate"]\n', "graph.dataset"),
    "generator_not_a_string": (GOOD_HEAD + '[values]\ns = 0\n[graph]\ngenerator = {n = 3}\n', "graph.generator"),
}


def write_bad(case: str, directory: Path) -> Path:
    path = directory / f"{case}.toml"
    path.write_text(BAD[case][0], encoding="utf-8")
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenario_exits_2_without_a_traceback(case: str, tmp_path: Path) -> None:
    path = write_bad(case, tmp_path)
    result = invoke(str(path))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error:")
    assert path.name in result.stderr.replace("\n", "")


@pytest.mark.parametrize(
    "args",
    [
        ("--mechanism", "nope"),
        ("--rounds", "--async"),
        ("--gather-window", "1.5"),
        ("--runs", "0"),
    ],
)
def test_bad_options_exit_2(args: tuple[str, ...]) -> None:
    result = invoke(SMALL, *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_unknown_mechanism_lists_the_choices() -> None:
    result = invoke(SMALL, "--mechanism", "nope")
    assert result.exit_code == 2
    assert "--mechanism" in result.stderr
    assert all(m in result.stderr for m in MECHANISMS)


def test_missing_scenario_file_exits_2(tmp_path: Path) -> None:
    result = invoke(str(tmp_path / "nope.toml"))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "nope.toml" in result.output


# Regressions: errors used to go through rich with markup on (the "[key]" vanished as a
# tag) and word wrapping (a long path split the message over several lines).


def test_cli_error_names_the_key_in_brackets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_bad("unknown_top_level_key", tmp_path)
    result = invoke("unknown_top_level_key.toml")
    assert result.exit_code == 2
    assert "[colour]" in result.stderr, result.stderr
    assert result.stderr == "error: unknown_top_level_key.toml: [colour] unknown key\n"


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenario_gives_one_clear_line_naming_file_and_key(case: str, tmp_path: Path) -> None:
    path = write_bad(case, tmp_path)
    result = invoke(str(path))
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert str(path) in lines[0]
    assert BAD[case][1] in lines[0]
    assert "Traceback" not in result.output


# ----------------------------------------------------------------------------- runs that did not complete


def test_table_of_an_aborted_run_says_so_and_names_the_checks() -> None:
    # The table used to call b the "winner", show its unsettled resale at 8 as sold and say nothing of the abort.
    result = invoke(str(SCENARIOS / "attack-false-reserve.toml"))
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "status: aborted (sale-stopped)" in text
    assert "holder (by the ledger): b" in text and "winner:" not in text
    assert "8 (not on the ledger)" in text
    assert "detected: c's award check refused b at hop 2" in text and "(claimed 8, recorded 4)" in text


def test_table_of_a_completed_run_has_no_status_line() -> None:
    result = invoke(FIGURE2)
    assert "status:" not in result.stdout and "detected:" not in result.stdout


def test_summary_counts_runs_by_status() -> None:
    out = sim_json(str(SCENARIOS / "attack-false-reserve.toml"), "--runs", "2")
    assert out["summary"]["statuses"] == {"aborted": 2}
    result = invoke(str(SCENARIOS / "attack-false-reserve.toml"), "--runs", "2")
    assert "runs by status: aborted 2 (of 2)" in result.stdout
