"""Behaviours in scenario files: every field parses, bad ones name their key, and the shipped
attack scenarios do what their comments say."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from peer.errors import ScenarioError
from peer.money import SCALE
from peer.scenario.load import load_scenario, parse_scenario
from peer.sim.run import simulate
from peer.sra.behaviours import LowDemand
from peer.sra.machine import Behaviour

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
HEAD = 'name = "t"\nseller = "s"\n[values]\ns = 0\na = 1\nb = 2\n[graph]\nedges = [["s", "a"], ["a", "b"], ["s", "b"]]\n'


def behaviour(text: str) -> Behaviour:
    return parse_scenario(HEAD + "[behaviours.a]\n" + text).behaviour("a")


def test_every_behaviour_field_parses() -> None:
    b = behaviour(
        'bid = 1.5\ninvite_only = ["b"]\nreport_to_all = true\naggregate = 2\ncontext = 3\nparent = "s"\n'
        'false_reserve = 4\nsilent_from = "hop:2"\ncrash_at = "hosting"\nrestart_after = 2\nsplit = 3\n'
        'underbid_when_demand_low = { factor = 0.3, at_most = 2 }\nequivocate = { s = 1, b = 0.5 }\n'
    )
    assert b == Behaviour(
        bid=3 * SCALE // 2, invite_only=frozenset({"b"}), report_to_all=True, aggregate=2 * SCALE, context=3 * SCALE,
        parent="s", false_reserve=4 * SCALE, silent_from="hop:2", crash_at="hosting", restart_after=2.0, split=3,
        underbid_when_demand_low=LowDemand(Fraction(3, 10), 2), equivocate={"s": SCALE, "b": SCALE // 2},
    )
    assert behaviour("split = { identities = 2 }").split == 2
    assert behaviour("underbid_when_demand_low = true").underbid_when_demand_low == LowDemand()
    assert behaviour('silent_from = "allocation"').silent_from == "allocation"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('silent_from = "lunch"', "behaviours.a.silent_from"),
        ('crash_at = "hop:0"', "behaviours.a.crash_at"),
        ("restart_after = 2", "behaviours.a"),  # needs crash_at
        ("restart_after = -1", "behaviours.a.restart_after"),
        ("split = 0", "behaviours.a.split"),
        ("split = { nodes = 2 }", "behaviours.a.split"),
        ('parent = "zz"', "behaviours.a.parent"),
        ("equivocate = { zz = 1 }", "behaviours.a.equivocate"),
        ('equivocate = { s = "x" }', "behaviours.a.equivocate.s"),
        ("false_reserve = -1", "behaviours.a.false_reserve"),
        ("underbid_when_demand_low = { factor = 2 }", "behaviours.a.underbid_when_demand_low.factor"),
        ("underbid_when_demand_low = { at_most = -1 }", "behaviours.a.underbid_when_demand_low.at_most"),
        ("underbid_when_demand_low = 3", "behaviours.a.underbid_when_demand_low"),
        ("lie = true", "behaviours.a.lie"),
    ],
)
def test_bad_behaviours_name_their_key(text: str, key: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(HEAD + "[behaviours.a]\n" + text)
    assert f"[{key}]" in str(info.value)


def _run(name: str, guarded: bool = True):  # type: ignore[no-untyped-def]
    return simulate(load_scenario(SCENARIOS / f"attack-{name}.toml"), guarded=guarded)


def test_attack_false_reserve() -> None:
    result, network = _run("false-reserve")
    assert result.extra["reason"] == "sale-stopped"
    assert [(d.by, d.against, d.hop, d.detail) for d in network.stats.detections] \
        == [("c", "b", 2, "the entry does not chain to hop 1")]
    assert result.utilities == {"s": 4 * SCALE, "b": -2 * SCALE, "c": 0, "d": 0}


def test_attack_false_reserve_under_the_papers_rule() -> None:
    result, network = _run("false-reserve", guarded=False)
    assert result.extra["reason"] == "settlement-refused"
    assert [(d.by, d.against, d.hop, d.claimed, d.recorded) for d in network.stats.detections if d.check == "reserve"] \
        == [("c", "b", 2, 8 * SCALE, 4 * SCALE)]
    assert result.utilities["b"] == -2 * SCALE


def test_attack_equivocate() -> None:
    result, network = _run("equivocate")
    assert result.extra["status"] == "completed" and result.utilities["a"] == SCALE and not network.stats.detections


def test_attack_sybil() -> None:
    result, _ = _run("sybil")
    assert result.extra["sybils"] == {"2": ["2#1", "2#2"]} and result.winner == "2#1"
    assert sum(result.utilities[i] for i in ("2#1", "2#2")) == 14 * SCALE


def test_attack_grief() -> None:
    """3 refuses the offer its griefing child made it win; the seller sells to 1 as if 5 were honest."""
    result, _ = _run("grief")
    honest, _ = simulate(load_scenario(SCENARIOS / "attack-grief.toml").with_behaviours({}))
    assert result.extra["status"] == "completed"
    assert result.utilities == honest.utilities and result.utilities["3"] == 0 and result.revenue == 5 * SCALE
    assert [(h.seller, h.buyer, h.price) for h in result.hops] == [("0", "1", 5 * SCALE)]


def test_attack_grief_under_the_papers_rule() -> None:
    result, _ = _run("grief", guarded=False)
    assert result.extra["status"] == "completed"
    assert result.utilities["3"] == -14 * SCALE and result.utilities["5"] == 0 and result.revenue == 18 * SCALE


def test_attack_faults() -> None:
    """21's offer lapses while it is down; the seller sells around it and the run completes."""
    result, network = _run("faults")
    assert result.extra["status"] == "completed" and result.winner == "32"
    assert [h.buyer for h in result.hops] == ["2", "32"]
    assert set(network.stats.crashed) == {"21"} and result.extra["ledger"]["ok"]
    assert min(result.utilities.values()) >= 0


def test_attack_faults_under_the_papers_rule() -> None:
    result, network = _run("faults", guarded=False)
    assert result.extra["reason"] == "sale-stopped" and result.winner == "21"
    assert set(network.stats.crashed) == {"21"} and result.extra["ledger"]["ok"]
