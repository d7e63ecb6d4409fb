"""Each protocol attack a real node can perform, against real node shells in memory.

For every behaviour: who detected it and with what evidence, the outcome
(completed / aborted; stalled is a bug and fails the run), and that every
honest ledger copy verifies and is identical (no entry lost, none forked).
The graph (fleet.EDGES) has no cut vertex, so every honest node also has a
path that avoids the attacker.  Results are tabulated in docs/adversaries-real.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from peer.cli.app import app
from peer.node.adversary import AdversaryNode, Attack, AttackError
from peer.node.node import Node
from tests.adversary_node import fleet as F
from tests.adversary_node.fleet import M, Report

HONEST_HOPS = [("s", "b", 3 * M), ("b", "c", 6 * M), ("c", "e", 6 * M)]


def assert_honest_ledgers_intact(report: Report, faulty: set[str]) -> None:
    assert report.outcome != "stalled", "stalling is a bug"
    assert all(report.verified.values()), report.verified
    for name, relation in report.ledger.items():
        if name in faulty:
            assert not relation.startswith("FORKED"), (name, relation)
        else:
            assert relation == "identical", (name, relation)


async def test_the_honest_baseline(tmp_path: Path) -> None:
    # The reference every attack below is compared with: three hops, and nothing refused.
    report = await F.run(F.build(F.scenario(), tmp_path))
    assert report.outcome == "completed" and report.replay == "full"
    assert report.hops == HONEST_HOPS and set(report.winners.values()) == {"e"}
    assert_honest_ledgers_intact(report, set())
    assert not any(report.refused.values()) and not any(report.abuse.values())


async def test_false_reserve_is_refused_and_the_liar_keeps_the_item(tmp_path: Path) -> None:
    # b is offered hop 1 at 3 and opens hop 2 claiming it pays 4.  Under guarded resale the
    # Open names b's purchase (seller, prev) and its hash must be the Open's prev: with the
    # price changed it is not, so each participant refuses the Open; b gets no bids, its
    # value 4 covers the 3 it really pays, so it confirms, keeps the item and settles.
    # Nobody paid b anything.
    fleet = F.build(F.scenario(), tmp_path, {"b": "false-reserve:+1"})
    report = await F.run(fleet)
    assert report.outcome == "completed"
    assert report.hops == HONEST_HOPS[:1] and report.holder == "b"
    assert set(report.winners.values()) == {"b"}
    refusals = report.refusals_of("the Open's reserve is not the price of the purchase it names")
    assert set(refusals) == {"c", "d"}  # b's participants in hop 2
    assert report.abuse["b"] >= 2
    assert report.replay == "full, up to b keeping the item" or report.replay == "without b, up to b keeping the item"
    assert_honest_ledgers_intact(report, {"b"})


async def test_forged_gossip_origin_is_refused_with_a_signature_error(tmp_path: Path) -> None:
    # b floods an envelope that claims the seller as its origin; it can only sign it with its
    # own key.  Every honest receiver checks the origin signature first and refuses it.
    fleet = F.build(F.scenario(), tmp_path, {"b": "forge-origin"})
    report = await F.run(fleet)
    refusals = report.refusals_of("bad origin signature")
    assert set(refusals) == {"c", "d"}  # b's neighbours other than the "origin" s (it drops its echo)
    assert report.abuse["b"] == 2
    assert report.outcome == "completed" and report.hops == HONEST_HOPS and report.replay == "full"
    assert_honest_ledgers_intact(report, {"b"})


async def test_forged_buyer_signature_is_refused_by_every_ledger(tmp_path: Path) -> None:
    # The seller floods a hop-1 entry "selling" the item to a at 1000 with a's signature forged.
    # verify_hop refuses it on every node (InvalidEntry: buyer signature), naming the origin.
    fleet = F.build(F.scenario(), tmp_path, {"s": "forge-hop"})
    report = await F.run(fleet)
    refusals = report.refusals_of("ledger entry refused: position 1: buyer signature does not verify")
    assert set(refusals) == {"a", "b", "c", "d", "e"}
    assert all(origin == "s" for refs in report.refused.values() for origin, _ in refs)
    assert report.outcome == "completed" and report.hops == HONEST_HOPS and report.replay == "full"
    assert_honest_ledgers_intact(report, {"s"})
    # No honest copy holds the forged sale: the real hop 1 is the only one anywhere.
    assert all(h[2] < F.VALUES["e"] for h in report.hops)


async def test_replayed_messages_are_refused_or_dropped_as_duplicates(tmp_path: Path) -> None:
    # b sends every SRA message and gossip envelope a second time, after the next one.
    fleet = F.build(F.scenario(), tmp_path, {"b": "replay"})
    report = await F.run(fleet)
    attacker = fleet.first["b"]
    assert isinstance(attacker, AdversaryNode)
    assert attacker.evidence["replayed sra"] >= 4 and attacker.evidence["replayed gossip"] >= 4
    # A replayed Bid is refused by name (so is a replayed Award or context bid, when one is
    # replayed: that depends on which message came next); a replayed Invite, Open or Settled
    # equals the one already applied and is a no-op; a replayed envelope is dropped as seen.
    assert report.refusals_of("second reply in stage 2") == {"s": 1}
    refused = [(who, why) for refs in report.refused.values() for who, why in refs]
    allowed = ("second reply in stage 2", "award to a node that already bought", "unexpected context",
               "offer to a node that already bought",
               "bid receipts from a node whose stage-2 reply")  # receipts replayed after their Bid
    assert all(who == "b" and why.startswith(allowed) for who, why in refused), refused
    assert report.abuse["b"] == len(refused)
    duplicates = sum(fleet.nodes[n].gossip.stats.duplicates for n in ("s", "c", "d"))
    assert duplicates >= attacker.evidence["replayed gossip"]
    assert report.outcome == "completed" and report.hops == HONEST_HOPS and report.replay == "full"
    assert_honest_ledgers_intact(report, {"b"})


async def test_gossip_altered_in_relay_is_caught_and_the_honest_copy_gets_through(tmp_path: Path) -> None:
    # b flips a payload byte in every envelope it relays.  Whoever gets b's copy first refuses
    # it (bad origin signature: the relay is blamed, abuse point); the copy is not marked seen,
    # so the honest copy from another neighbour is still accepted.  Copies that arrive second
    # are dropped as duplicates before any check: harmless either way.
    fleet = F.build(F.scenario(), tmp_path, {"b": "alter-gossip"})
    report = await F.run(fleet)
    attacker = fleet.first["b"]
    assert isinstance(attacker, AdversaryNode) and attacker.evidence["altered relays"] >= 4
    refusals = report.refusals_of("bad origin signature")
    assert sum(refusals.values()) >= 1 and set(refusals) <= {"s", "c", "d"}
    assert report.abuse["b"] == sum(refusals.values())
    assert report.outcome == "completed" and report.hops == HONEST_HOPS and report.replay == "full"
    assert_honest_ledgers_intact(report, {"b"})


async def test_seller_equivocation_becomes_a_fraud_proof_everywhere(tmp_path: Path) -> None:
    # Once its sale of hop 1 comes back countersigned, s signs a second hop 1 at a higher price.
    # A node holding the real entry keeps it (first seen wins) and keeps the pair as a fraud
    # proof naming s, floods the proof, and everyone keeps it; the chain is not forked.
    # (The paper's rule: under guarded resale the seller makes the whole entry herself, and the
    # same fork would be the same fraud proof; the adversary hook waits for a countersigned copy.)
    fleet = F.build(F.scenario(), tmp_path, {"s": "equivocate"}, paper_resale=True)
    report = await F.run(fleet)
    assert report.outcome == "completed" and report.hops == HONEST_HOPS and report.replay == "full"
    assert_honest_ledgers_intact(report, {"s"})
    assert all(report.fraud[n] == 1 for n in ("a", "b", "c", "d", "e")), report.fraud
    kinds = {n: [e for e in ev if e.get("kind") == "fraud"] for n, ev in report.events.items()}
    assert any(not e.get("relayed") for ev in kinds.values() for e in ev)  # detected first-hand
    assert all(kinds[n] for n in ("a", "b", "c", "d", "e"))
    # `peer ledger show` on an honest copy marks the row and names the culprit.
    shown = CliRunner().invoke(app, ["ledger", "show", str(tmp_path / "b")], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "FRAUD PROOF" in shown.output.split("FRAUD PROOFS")[0]
    assert "FRAUD PROOFS" in shown.output and "price: 3 vs 3.000001" in shown.output
    fraud_rows = shown.output.split("FRAUD PROOFS")[1]
    assert " s " in fraud_rows  # the culprit, by name
    verify = CliRunner().invoke(app, ["ledger", "verify", str(tmp_path / "b")])
    assert verify.exit_code == 0 and "1 fraud proof(s)" in verify.output


async def test_silent_before_reporting_the_auction_completes_without_it(tmp_path: Path) -> None:
    # d goes silent as it would report its bid: its parent b times out on it and the auction
    # completes on the tree without d (which is exactly what the replay of that tree says).
    fleet = F.build(F.scenario(), tmp_path, {"d": "silent@reported"})
    report = await F.run(fleet)
    assert report.outcome == "completed" and report.replay is not None
    assert report.hops[0] == HONEST_HOPS[0]
    assert "d" not in {h[1] for h in report.hops}
    assert_honest_ledgers_intact(report, {"d"})


async def test_under_guarded_resale_a_silent_or_crashed_buyer_is_sold_around(tmp_path: Path) -> None:
    # b is offered hop 1, then goes silent (or crashes) instead of hosting hop 2.  Its offer
    # lapses after the seller's confirm wait and she reruns hop 1 without b: the auction
    # completes, b never bought anything, and every honest ledger is identical.
    for attack in ("silent@hosting", "crash@hosting"):
        root = tmp_path / attack.replace("@", "-")
        fleet = F.build(F.scenario(), root, {"b": attack}, context_timeout=2.5)
        report = await F.run(fleet)
        assert report.outcome == "completed", (attack, report.reasons)
        assert "b" not in {buyer for _, buyer, _ in report.hops} and report.hops, (attack, report.hops)
        assert_honest_ledgers_intact(report, {"b"})


async def test_silent_host_aborts_cleanly_and_the_item_stays_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # b buys hop 1 (its countersigned entry is flooded), then goes silent instead of opening
    # hop 2.  No honest node waits forever: each aborts after Node.stall_after() without
    # progress, saying where the item is; the ledger (hop 1: s -> b at 3) is everywhere.
    monkeypatch.setattr(Node, "STALL_GRACE", 0.2)
    fleet = F.build(F.scenario(), tmp_path, {"b": "silent@hosting"}, context_timeout=2.5, paper_resale=True)
    report = await F.run(fleet)
    assert report.outcome == "aborted"
    assert set(report.reasons) == {"s", "a", "c", "d", "e"}
    assert all("the item stays with b, who bought it in hop 1" in r for r in report.reasons.values())
    assert report.hops == HONEST_HOPS[:1] and report.holder == "b"
    assert_honest_ledgers_intact(report, {"b"})
    assert report.ledger["b"] == "identical"


async def test_buyer_crashing_before_its_entry_leaves_then_restarting_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # b countersigns and fsyncs hop 1, then dies on entering "hosting", before its flood of
    # the entry leaves (its tasks stop at once, as under SIGKILL).  No honest copy has hop 1
    # and nobody can settle: all abort; the seller says it awarded hop 1 to b and never got
    # the entry back.  b's copy is one hop ahead, not forked.  Restarted once everyone has
    # aborted, b floods what it holds and every copy ends with hop 1: no entry was lost.
    monkeypatch.setattr(Node, "STALL_GRACE", 0.2)
    fleet = F.build(F.scenario(), tmp_path, {"b": "crash@hosting"}, context_timeout=2.5, paper_resale=True)
    report = await F.run(fleet, restart_when_done={"b"})
    assert report.outcome == "aborted" and set(report.reasons) == {"s", "a", "c", "d", "e"}
    assert all(e["hops"] == 0 for n in report.reasons for e in report.events[n] if e["kind"] == "aborted")
    assert "we awarded hop 1 to b and its countersigned entry never came back" in report.reasons["s"]
    assert report.hops == HONEST_HOPS[:1] and report.holder == "b"  # after b's restart
    assert_honest_ledgers_intact(report, {"b"})
    assert report.ledger["b"] == "identical"
    merged_late = [n for n in report.reasons
                   if any(e["kind"] == "ledger" and e.get("position") == 1 for e in report.events[n])]
    assert sorted(merged_late) == ["a", "c", "d", "e", "s"]


async def test_crash_then_late_restart_recovers_and_catches_up(tmp_path: Path) -> None:
    # d dies while gathering (it had the announcement) and comes back only after the auction
    # is over.  The auction completes without it.  Restarted, d reopens and re-verifies its
    # ledger, does not rejoin the auction it lost (it ignores those messages instead of
    # blaming its neighbours), and its neighbours answer its summaries with the hops it missed.
    fleet = F.build(F.scenario(), tmp_path, {"d": "crash@gathering"})
    report = await F.run(fleet, restart_when_done={"d"})
    assert report.outcome == "completed" and report.replay is not None
    assert report.ledger["d"] == "identical"
    kinds = [e["kind"] for e in report.events["d"]]
    assert kinds.count("started") == 2 and "recovered" in kinds
    recovered = next(e for e in report.events["d"] if e["kind"] == "recovered")
    assert recovered["ok"] and recovered["auctions"] == {fleet.auction: 1}
    # d's neighbours answered it (others may answer each other too: anti-entropy is continuous).
    catchups = [n for n, ev in report.events.items() if any(e["kind"] == "catchup" and e["peer"] == "d" for e in ev)]
    assert catchups and set(catchups) <= {"b", "c", "e"}
    missed = [e for e in report.events["d"][kinds.index("recovered"):] if e["kind"] == "ledger"]
    assert [e["position"] for e in missed] == [1]  # the hop it missed, after the restart
    after_restart = report.events["d"][kinds.index("recovered"):]
    assert not any(e["kind"] == "bad" for e in after_restart)
    assert_honest_ledgers_intact(report, {"d"})


async def test_false_settlement_is_refused_against_the_ledger(tmp_path: Path) -> None:
    # d floods "d won, 0 hops" as it reports its bid.  Every honest node checks a Settled
    # against its ledger before the machine sees it (the winner must be the last hop's
    # buyer): the lie is refused with the reason, and the sale goes on as if d were honest.
    fleet = F.build(F.scenario(), tmp_path, {"d": "false-settle"})
    report = await F.run(fleet)
    assert report.outcome == "completed" and report.hops == HONEST_HOPS
    assert report.refusals_of("settle")
    assert_honest_ledgers_intact(report, {"d"})


@pytest.mark.parametrize("spec", ["", "nonsense", "silent", "crash@nowhere", "replay@hosting", "false-reserve:x",
                                  "false-reserve:0", "equivocate:1"])
def test_bad_behaviour_specs_are_refused(spec: str) -> None:
    with pytest.raises(AttackError):
        Attack.parse(spec)


@pytest.mark.parametrize("spec", ["false-reserve:+1", "false-reserve:-0.5", "silent@hosting", "crash@gathering",
                                  "forge-origin", "forge-hop", "replay", "alter-gossip", "equivocate",
                                  "false-settle", "equivocate-bid"])
def test_behaviour_specs_round_trip(spec: str) -> None:
    assert str(Attack.parse(spec)) == spec
