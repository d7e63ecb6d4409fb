"""Issue #15.7: a node that Bids to two inviters, each its own amount, on real node shells in memory.

The 4-cycle of docs/findings.md (counterexample A, scenarios/attack-equivocate.toml):
a has two inviters, b and d, whose only common ancestor is the seller s.  a
Bids its value to one and 0 to the other (and says the same in its stage-3
context bids), each Bid validly signed for its receiver.  b and d each hold one
signed Bid and pass its receipt up with their own Bid; s gets both before she
opens hop 1, keeps and floods the proof, and every honest node refuses a's bids
in the auction.  The control run withholds the receipts (what the node did
before #15.7, where nothing but the link frame was signed): the same attack
then goes through and no node holds anything against a.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from peer.cli.app import app
from peer.node.adversary import AdversaryNode
from peer.scenario.model import explicit_scenario
from peer.sra.equivocation_shell import BidGuard
from tests.adversary_node import fleet as F
from tests.adversary_node.fleet import M

EDGES = [("a", "b"), ("a", "d"), ("b", "s"), ("d", "s")]
VALUES = {"s": 0, "a": 3 * M, "b": 0, "d": 2 * M}
HONEST = ("s", "b", "d")
WINDOW = 0.3  # a's gather window must hold both invitations, even on a loaded machine
ATTACKED = [("s", "b", 2 * M), ("b", "a", 2 * M)]  # undetected (a's coin, for these keys, picks d)
DETECTED = [("s", "d", 0)]


def cycle():
    return explicit_scenario(EDGES, VALUES, seller="s", seed=1, name="equivocate-bid")


def index_of(events: list[dict], **match: object) -> int:
    return next(i for i, e in enumerate(events) if all(e.get(k) == v for k, v in match.items()))


@pytest.mark.parametrize("paper_resale", [False, True], ids=["guarded", "paper"])
async def test_bids_to_two_inviters_are_proved_the_proof_reaches_everyone_and_the_culprit_buys_nothing(
        tmp_path: Path, paper_resale: bool) -> None:
    fleet = F.build(cycle(), tmp_path, {"a": "equivocate-bid"}, paper_resale=paper_resale, gather_window=WINDOW)
    report = await F.run(fleet)
    attacker = fleet.first["a"]
    assert isinstance(attacker, AdversaryNode) and attacker.evidence["equivocated bids"] == 2
    assert report.outcome == "completed", report.reasons
    assert report.hops == DETECTED, report.hops  # a buys nothing: d wins hop 1 at 0 and keeps
    # Every honest node keeps the proof; the seller found it first-hand, before hop 1.
    assert all(report.fraud[n] == 1 for n in HONEST), report.fraud
    bid_frauds = {n: [e for e in report.events[n] if e.get("kind") == "fraud"
                      and e.get("culprit_key") == fleet.keys["a"]] for n in HONEST}
    assert all(bid_frauds[n] for n in HONEST), bid_frauds
    assert not bid_frauds["s"][0].get("relayed") and bid_frauds["s"][0]["position"] == -1
    # Before the resale: s found it before she opened hop 1, and b and d (the inviters that hold
    # a's Bids) had it, relayed, before her Open reached them (docs/protocol.md 6.2, "When").
    ev = report.events
    assert index_of(ev["s"], kind="fraud") < index_of(ev["s"], kind="send", type="Open")
    for n in ("b", "d"):
        assert index_of(ev[n], kind="fraud", proof="bid") < index_of(ev[n], kind="recv", type="Open")
    # b and d took a's signed Bid directly: each puts an abuse point on a's link.
    assert report.abuse["a"] >= 2
    for n in ("b", "d"):
        assert any("two different stage-2 bids" in why for who, why in report.refused[n] if who == "a"), \
            report.refused[n]
    for n in HONEST:
        assert fleet.nodes[n].machine.convicted == {fleet.keys["a"]}
        assert fleet.keys["a"] not in fleet.nodes[n].machine.children
    assert all(report.verified.values()), report.verified
    # `peer ledger verify` and `peer ledger show` on an honest copy report it like a fork.
    verify = CliRunner().invoke(app, ["ledger", "verify", str(tmp_path / "b")])
    assert verify.exit_code == 0 and "1 fraud proof(s)" in verify.output, verify.output
    shown = CliRunner().invoke(app, ["ledger", "show", str(tmp_path / "d")], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    rows = shown.output.split("FRAUD PROOFS")[1]
    assert " a " in rows and "stage-2 bids" in rows, rows


async def test_without_receipts_the_same_equivocation_goes_through_undetected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: what the node did before #15.7 (the test above fails on it)."""
    monkeypatch.setattr(BidGuard, "outgoing", lambda self, inst: [])
    fleet = F.build(cycle(), tmp_path, {"a": "equivocate-bid"}, gather_window=WINDOW)
    report = await F.run(fleet)
    assert fleet.first["a"].evidence["equivocated bids"] == 2  # type: ignore[attr-defined]
    assert report.outcome == "completed", report.reasons
    assert not any(report.fraud[n] for n in HONEST)
    assert not any(fleet.nodes[n].machine.convicted for n in HONEST)
    # Both inviters took a as their child, and each heard its own amount in hop 1: b (value 0)
    # heard 3 and outbid d (value 2, heard 0), bought at 2 and resold to a at 2.  a, whose coin
    # picks d, gains 1 (value 3); with the proof (above) it buys nothing and d keeps the item.
    assert all(fleet.keys["a"] in fleet.nodes[n].machine.children for n in ("b", "d"))
    assert report.hops == ATTACKED, report.hops
