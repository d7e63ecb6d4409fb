"""The deviation harness (peer.experiments.deviations): it detects planted gains, honest play holds
where the paper's proof holds, and the documented counterexamples to Thm 5.3 reproduce exactly."""

from __future__ import annotations

from dataclasses import replace

import pytest

from peer.experiments.deviations import (
    KINDS,
    QUICK,
    Deviation,
    Instance,
    Play,
    check_instance,
    evaluate,
    play,
    shrink,
    sweep,
)
from peer.result import Hop
from peer.sra.machine import Behaviour


def inst(edges: str, values: dict[str, int], seed: int = 1) -> Instance:
    pairs = tuple(sorted(tuple(sorted(e.split("-"))) for e in edges.split()))
    return Instance(edges=pairs, values=tuple(sorted({"s": 0, **values}.items())), seller="s", seed=seed)  # type: ignore[arg-type]


# The documented counterexamples (docs/findings.md).
SHADE = inst("a-b a-s b-e d-e e-s", {"a": 2, "b": 3, "d": 2, "e": 1})
INVITE = inst("b-d b-e c-d c-e c-s", {"b": 8, "c": 6, "d": 10, "e": 2})
PARENT = inst("a-b a-d b-s d-s", {"a": 3, "b": 0, "d": 2})
TRIANGLE = inst("a-b a-s b-s", {"a": 1, "b": 1})


@pytest.fixture(scope="module")
def quick_report():  # type: ignore[no-untyped-def]
    return sweep(QUICK)


# ------------------------------------------------------------------ the comparator


def _with_utility(p: Play, node: str, utility: int) -> Play:
    result = replace(p.result, utilities={**p.result.utilities, node: utility})
    return replace(p, result=result)


def test_comparator_detects_a_planted_gain() -> None:
    honest = play(PARENT)
    planted = _with_utility(honest, "a", honest.result.utilities["a"] + 5)
    deviation = Deviation("shade", Behaviour(bid=0))
    finding = evaluate(PARENT, "a", deviation, honest, planted, verify=False)
    assert finding is not None and finding.gain == 5
    assert evaluate(PARENT, "a", deviation, honest, honest, verify=False) is None
    worse = _with_utility(honest, "a", honest.result.utilities["a"] - 1)
    assert evaluate(PARENT, "a", deviation, honest, worse, verify=False) is None


def test_harness_finds_a_planted_deviation_and_the_replay_flags_it() -> None:
    """A runner that fakes a gain for one deviation: check_instance must report exactly that one,
    and the replay check must call it an artefact (the planted run is not a real execution)."""

    def runner(instance: Instance, node: str | None, deviation: Deviation | None) -> Play:
        p = play(instance, node, deviation)
        if node == "a" and deviation is not None and deviation.behaviour.bid == 1:
            fake_hops = [Hop(1, "s", "a", 0)]
            result = replace(p.result, hops=fake_hops, winner="a", utilities={**p.result.utilities, "a": 3})
            return replace(p, result=result)
        return p

    report = check_instance(PARENT, runner=runner, kinds=("shade", "inflate"))
    assert [(f.node, f.deviation.behaviour.bid, f.gain) for f in report.findings] == [("a", 1, 3)]
    assert report.findings[0].category == "artefact"
    assert report.stats["shade"].profitable["artefact"] == 1


# ------------------------------------------------------------------ honest play


def test_quick_sweep_holds_where_the_proof_holds(quick_report) -> None:  # type: ignore[no-untyped-def]
    r = quick_report
    assert not r.honest_replay_mismatches
    for kind in ("inflate", "report-to-all", "aggregate-low", "aggregate-high", "context-high"):
        assert r.stats[kind].tried > 0
        assert r.stats[kind].profitable == {"mechanism": 0, "timeout": 0, "artefact": 0}, kind
    for kind in KINDS:
        assert r.stats[kind].aborted == 0
        assert r.stats[kind].profitable["artefact"] == 0
    # The stage-2 aggregate is never used by stage 3: reporting a wrong one changes nothing.
    assert r.stats["aggregate-low"].changed == r.stats["aggregate-high"].changed == 0
    # Deviations that do change the outcome are tried (the sweep is not vacuous).
    assert r.stats["shade"].changed > 0 and r.stats["invite-subset"].changed > 0


def test_quick_sweep_finds_the_documented_kinds_of_counterexample(quick_report) -> None:  # type: ignore[no-untyped-def]
    r = quick_report
    assert r.stats["parent-choice"].profitable["mechanism"] > 0
    smallest = r.smallest["parent-choice", "mechanism"]
    assert smallest.instance.size == (4, 4) and smallest.replay_agrees
    for kind in KINDS:  # since waits shrink down the tree, no gain comes from a timeout
        assert r.stats[kind].profitable["timeout"] == 0


# ------------------------------------------------------------------ the counterexamples


def test_shading_counterexample_reproduces() -> None:
    """b (value 3) is below a, who keeps the item at price 2; bidding 2 ties a's branch with e's,
    the tie-break goes to e, who (value 1) resells to b, a declined invitee, at 2."""
    honest = play(SHADE)
    deviant = play(SHADE, "b", Deviation("shade", Behaviour(bid=2)))
    assert honest.result.hops == [Hop(1, "s", "a", 2)] and honest.result.winner == "a"
    assert deviant.result.hops == [Hop(1, "s", "e", 2), Hop(2, "e", "b", 2)] and deviant.result.winner == "b"
    assert honest.result.utilities["b"] == 0 and deviant.result.utilities["b"] == 1
    assert honest.parents == deviant.parents  # same tree: Thm 5.3's fixed-tree setting
    finding = evaluate(SHADE, "b", Deviation("shade", Behaviour(bid=2)), honest, deviant)
    assert finding is not None and finding.category == "mechanism" and finding.replay_agrees


def test_context_misreport_counterexample_reproduces() -> None:
    deviant = play(SHADE, "b", Deviation("context-low", context=2))
    assert deviant.result.winner == "b" and deviant.result.utilities["b"] == 1


def test_invite_subset_counterexample_reproduces() -> None:
    """d (value 10) stops inviting b (value 8): b's only inviter is then e, so b's value competes
    against d at c's auction, the price (8) exceeds c's value (6) and c sells to d instead of keeping."""
    dev = Deviation("invite-subset", Behaviour(invite_only=frozenset()))
    honest, deviant = play(INVITE), play(INVITE, "d", dev)
    assert honest.result.hops == [Hop(1, "s", "c", 0)] and honest.result.winner == "c"
    assert honest.parents["b"] == ("d",)
    assert deviant.result.hops == [Hop(1, "s", "c", 0), Hop(2, "c", "d", 8)] and deviant.result.winner == "d"
    assert deviant.parents["b"] == ("e",)
    assert honest.result.utilities["d"] == 0 and deviant.result.utilities["d"] == 2
    assert deviant.timeouts == 0  # d answers b's late invitation with a Decline
    finding = evaluate(INVITE, "d", dev, honest, deviant)
    assert finding is not None and finding.category == "mechanism" and finding.replay_agrees


def test_parent_choice_counterexample_reproduces() -> None:
    honest = play(PARENT)
    assert honest.parents["a"] == ("d",)
    deviant = play(PARENT, "a", Deviation("parent-choice", parent="b"))
    assert honest.result.hops == [Hop(1, "s", "d", 0)] and honest.result.utilities["a"] == 0
    assert deviant.result.hops == [Hop(1, "s", "b", 2), Hop(2, "b", "a", 2)] and deviant.result.utilities["a"] == 1


def test_timeout_cascade_stays_fixed() -> None:
    """At dfac3cf, a skipping its crossing invitation to b made b wait as long as s waited for b:
    s gave up on b first and sold to a alone at 0 (gain 1).  Since waits shrink down the tree and a
    late invitation is answered with a Decline, nobody times out and the deviation gains nothing."""
    dev = Deviation("invite-subset", Behaviour(invite_only=frozenset()))
    honest, deviant = play(TRIANGLE), play(TRIANGLE, "a", dev)
    assert honest.result.hops == [Hop(1, "s", "b", 1)]
    assert deviant.timeouts == 0 and deviant.rejected_by_others("a") == 0
    assert deviant.result.utilities["a"] <= honest.result.utilities["a"]


def test_shrink_removes_what_the_counterexample_does_not_need() -> None:
    """The parent-choice counterexample with a pendant path and a chord added shrinks back to the 4-cycle."""
    bigger = inst("a-b a-d b-s d-s b-c c-f d-f", {"a": 3, "b": 0, "d": 2, "c": 0, "f": 1})
    dev = Deviation("parent-choice", parent="b")
    finding = evaluate(bigger, "a", dev, play(bigger), play(bigger, "a", dev))
    assert finding is not None
    small = shrink(finding)
    assert small.instance.size == (4, 4) and small.gain == 1
    assert small.instance.edges == PARENT.edges


# ------------------------------------------------------------------ conditions of the counterexamples


def test_shading_pays_only_given_the_deviators_own_coin() -> None:
    """Counterexample C needs b's coin to pick a; decided before the coins, shading loses in expectation."""
    honest_total = shaded_total = 0
    given_a = [0, 0]
    for seed in range(1, 81):
        instance = replace(SHADE, seed=seed)
        honest, shaded = play(instance), play(instance, "b", Deviation("shade", Behaviour(bid=2)))
        honest_total += honest.result.utilities["b"]
        shaded_total += shaded.result.utilities["b"]
        if honest.parents["b"] == ("a",):
            given_a[0] += honest.result.utilities["b"]
            given_a[1] += shaded.result.utilities["b"]
    assert shaded_total < honest_total
    assert given_a[0] == 0 < given_a[1]


def test_inviting_fewer_pays_when_the_seller_sells_at_a_positive_price() -> None:
    """Counterexample B plus a pendant buyer a=1 at the seller: s sells at 1 > 0 in both runs, so the
    reading where keep-on-ties also applies to the seller (she would keep at price 0) gives the same."""
    from peer.sra.local_auction import run_local_auction, tie_break_rng

    variant = inst("a-s b-d b-e c-d c-e c-s", {"a": 1, "b": 8, "c": 6, "d": 10, "e": 2})
    dev = Deviation("invite-subset", Behaviour(invite_only=frozenset()))
    honest, deviant = play(variant), play(variant, "d", dev)
    assert honest.result.hops == [Hop(1, "s", "c", 1)] and honest.result.utilities["d"] == 0
    assert deviant.result.hops == [Hop(1, "s", "c", 1), Hop(2, "c", "d", 8)] and deviant.result.utilities["d"] == 2
    finding = evaluate(variant, "d", dev, honest, deviant)
    assert finding is not None and finding.category == "mechanism" and finding.replay_agrees
    for origin in (True, False):  # the seller as a price floor, or as a host that keeps on ties
        hop1 = run_local_auction(0, 0, {"a": 1, "c": 10}, tie_break_rng(1, "s", 1), origin=origin)
        assert (hop1.winner, hop1.price) == ("c", 1)
