"""The strategies' moves, the scenario file, and the experiment end to end (short)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from peer.cli.experiment_cmd import experiment_app
from peer.errors import ScenarioError
from peer.mirage.agents import Agent, Job, MarketView, S1Underbid, S2Iterative, S3ShortBlocks, S4Sandwich
from peer.mirage.experiment import check_claims, is_backfill, run_experiment
from peer.mirage.model import A1, A2, Allocation, Bid
from peer.mirage.output import write_csv, write_plots
from peer.mirage.scenario import MirageScenario, StrategyParams, load_mirage_scenario, parse_mirage_scenario
from peer.money import SCALE

ROOT = Path(__file__).resolve().parents[2]
P = StrategyParams()


def job(nodes: int = 10, hours: int = 8, rate: int = SCALE) -> Job:
    return Job("j", "me", 0, nodes, hours, rate, 500)


def view(rules=A1, free=None, visible=(), recent=(), now: int = 0) -> MarketView:
    free = np.full(rules.window_hours, 97, dtype=np.int64) if free is None else np.asarray(free, dtype=np.int64)
    return MarketView(now, rules, 97, free, tuple(visible), tuple(recent), 10**9 * SCALE)


def test_truthful_bids_its_value_once() -> None:
    [b] = Agent(P).open_bids(job(), view())
    assert (b.value, b.nodes, b.hours) == (80 * SCALE, 10, 8)


def test_s1_underbids_when_nobody_else_is_bidding_and_prices_against_rivals_otherwise() -> None:
    [low] = S1Underbid(P).open_bids(job(), view())
    assert low.value == 80 * SCALE * 2 // 100  # s1_underbid = 0.02
    rivals = [Bid(f"r{i}", "rival", 97 * 72 * SCALE // 10, 97, 72 // 3, 0, 50) for i in range(3)]
    [b] = S1Underbid(P).open_bids(job(), view(visible=rivals))
    assert low.value < b.value < 80 * SCALE


def test_s2_opens_low_and_revises_once() -> None:
    agent, j = S2Iterative(P), job()
    [b] = agent.open_bids(j, view())
    assert b.value == 8 * SCALE
    rival = Bid("r", "rival", 40 * SCALE, 10, 8, 0, 50)  # half its rate
    new = agent.revisions(j, b, view(visible=[rival]))
    assert new == 44 * SCALE  # 1.1 x the rival's rate
    assert agent.revisions(j, replace(b, value=new), view(visible=[rival])) is None  # only once


def test_s3_asks_for_fewer_hours_than_any_rival_when_the_window_is_full() -> None:
    free = np.zeros(72)
    free[-3:] = 97  # three free columns at the end of a full A1 window
    rival = Bid("r", "rival", SCALE, 97, 4, 0, 50)
    [b] = S3ShortBlocks(P).open_bids(job(hours=8), view(free=free, visible=[rival]))
    assert b.hours == 3 and b.value == 10 * 3 * SCALE  # truthful rate, fewer hours
    [b] = S3ShortBlocks(P).open_bids(job(hours=8), view(free=np.zeros(72)))
    assert b.hours == 4  # full, and no rival to see (sealed or alone): it halves
    [b] = S3ShortBlocks(P).open_bids(job(hours=8), view())
    assert b.hours == 8  # room now: no need to shorten


def test_s4_sandwiches_a_big_job_when_recent_winners_were_too_big_to_backfill() -> None:
    recent = [Allocation(f"w{i}", "rival", 0, 32, 97, 1590 * SCALE) for i in range(4)]
    bids = S4Sandwich(P).open_bids(job(nodes=97, hours=4, rate=SCALE), view(rules=A2, recent=recent))
    main, *backfill = bids
    assert main.nodes == 38 and [b.nodes for b in backfill] == [30, 29]
    assert main.value_per_node_hour > Fraction_of(1590 * SCALE, 97 * 32) > backfill[0].value_per_node_hour
    assert len({(b.earliest, b.latest) for b in bids}) == 1  # pinned to one start: the same columns
    assert [is_backfill(b.bid_id) for b in bids] == [False, True, True]
    small = [Allocation(f"w{i}", "rival", 0, 4, 8, SCALE) for i in range(4)]
    [plain] = S4Sandwich(P).open_bids(job(nodes=97, hours=4), view(rules=A2, recent=small))
    assert plain.nodes == 97  # small winners would backfill: no sandwich


def Fraction_of(a: int, b: int):
    from fractions import Fraction

    return Fraction(a, b)


def test_the_shipped_scenario_loads_and_bad_ones_name_the_key(tmp_path: Path) -> None:
    s = load_mirage_scenario(ROOT / "scenarios" / "mirage" / "paper.toml")
    assert s.nodes == 97 and s.rounds == 3 * 7 * 24 and s.strategy.strategists == 3
    for text, key in [
        ("[other]\n", "mirage"),
        ("[mirage]\nnodes = 0\n", "mirage.nodes"),
        ("[mirage]\nsavings_tax = \"1.5\"\n", "mirage.savings_tax"),
        ("[mirage.workload]\nnodes = [200]\nnodes_weights = [1]\npeak_nodes_weights = [1]\n", "mirage.workload.nodes"),
        ("[mirage.strategy]\nstrategists = 99\n", "mirage.strategy.strategists"),
        ("[mirage.strategy]\nbogus = 1\n", "mirage.strategy.bogus"),
        ("[mirage]\nweeks = \"two\"\n", "mirage.weeks"),
    ]:
        with pytest.raises(ScenarioError) as err:
            parse_mirage_scenario(__import__("tomllib").loads(text), "x.toml")
        assert err.value.key == key, text


def test_a_short_experiment_is_deterministic_and_writes_its_outputs(tmp_path: Path) -> None:
    s = replace(MirageScenario(), weeks=0.5,
                workload=replace(MirageScenario().workload, peaks=((1.0, 3.0, 6.0),)))
    a = run_experiment(s, (1,))
    b = run_experiment(s, (1,))
    assert a.rows == b.rows and len(a.rows) == 20
    assert all(0 <= r.efficiency <= 1 for r in a.rows)
    assert all(r.surplus_gain == 0 for r in a.rows if r.strategy == "truthful")
    assert len(check_claims(a)) == 5
    paths = {**write_csv(a, tmp_path), **write_plots(a, tmp_path)}
    assert all(p.stat().st_size > 0 for p in paths.values())
    assert (tmp_path / "summary.csv").read_text().count("\n") == 21


def test_cli_bad_scenario_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[mirage]\nnodes = -3\n")
    result = CliRunner().invoke(experiment_app, ["mirage", "--scenario", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "mirage.nodes" in result.output and "Traceback" not in result.output


def test_cli_unwritable_output_is_one_line_and_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    scenario = tmp_path / "tiny.toml"
    scenario.write_text("[mirage]\nweeks = 0.1\nusers = 4\n[mirage.strategy]\nstrategists = 1\n")
    result = CliRunner().invoke(experiment_app, ["mirage", "--scenario", str(scenario), "--seeds", "1",
                                                 "--out", str(blocker / "sub")])
    assert result.exit_code == 2 and "cannot write" in result.output and "Traceback" not in result.output
