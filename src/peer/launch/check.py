"""After a launch: assemble the run from the nodes' own reports and check it.

Two checks, both must pass for ``tools/launch`` to exit 0:

* the outcome equals the ``replay`` reference recomputed from the realised
  invitation relation and tree (in public-key space, so the hosts'
  tie-breaking streams are the very ones the nodes used);
* every node's ledger copy verifies offline and all copies are the same chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from peer.launch.monitor import NetworkState
from peer.launch.plan import NodePlan
from peer.ledger.store import LedgerStore
from peer.money import parse_money
from peer.reference.replay import replay_run
from peer.result import Hop, NodeReport, RunResult, utilities_from_hops
from peer.scenario.model import Scenario


@dataclass
class LaunchCheck:
    replay_matches: bool = False
    ledger_copies: int = 0
    ledger_verified: int = 0
    ledger_identical: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "replay_matches": self.replay_matches,
            "ledger_copies": self.ledger_copies,
            "ledger_verified": self.ledger_verified,
            "ledger_identical": self.ledger_identical,
            "problems": self.problems,
        }


def assemble(scenario: Scenario, seed: int, plans: list[NodePlan], state: NetworkState) -> tuple[RunResult, LaunchCheck]:
    check = LaunchCheck()
    name_of = {p.key_hex: p.name for p in plans}
    key_of = {p.name: p.key_hex for p in plans}
    auction = f"{scenario.name}/{seed}"
    missing = sorted(set(key_of) - set(state.finals))
    if missing:
        check.problems.append(f"{len(missing)} node(s) never reported a final state: {', '.join(missing[:8])}")

    # The realised relation, in key space (what the nodes' machines saw).
    key_nodes: dict[str, NodeReport] = {}
    for name, key in key_of.items():
        final = state.finals.get(name, {})
        key_nodes[key] = NodeReport(
            value=scenario.values[name],
            inviters=list(final.get("inviters", [])),
            invitees=list(final.get("invitees", [])),
            parent=final.get("parent"),
            bought_at=parse_money(final["bought_at"]) if final.get("bought_at") else None,
            sold_at=parse_money(final["sold_at"]) if final.get("sold_at") else None,
        )

    # The resale path from the seller's ledger copy; every copy must match it.
    chains = {}
    for plan in plans:
        try:
            with LedgerStore.open_data_dir(plan.data_dir, read_only=True) as store:
                report = store.verify_all()
                chain = store.chain(auction)
        except Exception as exc:  # noqa: BLE001 - a broken copy is a finding, not a crash
            check.problems.append(f"{plan.name}: ledger unreadable: {exc}")
            continue
        check.ledger_copies += 1
        if report.ok and chain is not None:
            check.ledger_verified += 1
            chains[plan.name] = tuple(h.hash for h in chain.hops), chain
        else:
            check.problems.append(f"{plan.name}: ledger copy does not verify: {'; '.join(report.lines()[:3])}")
    seller_chain = chains.get(scenario.seller)
    hops_key: list[Hop] = []
    if seller_chain is None:
        check.problems.append("the seller holds no verified chain of the auction")
    else:
        hops_key = [Hop(h.body.hop, h.body.seller, h.body.buyer, h.body.price) for h in seller_chain[1].hops]
        check.ledger_identical = all(c[0] == seller_chain[0] for c in chains.values()) and len(chains) == len(plans)
        if not check.ledger_identical:
            differ = sorted(n for n, c in chains.items() if c[0] != seller_chain[0])
            check.problems.append(f"ledger copies differ from the seller's: {', '.join(differ[:8])}")
    winner_key = hops_key[-1].buyer if hops_key else key_of[scenario.seller]
    finals_winners = {f.get("winner") for f in state.finals.values()}
    if finals_winners and finals_winners != {winner_key}:
        check.problems.append("nodes disagree on the winner, or it differs from the ledger")

    key_values = {key_of[n]: v for n, v in scenario.values.items()}
    key_run = RunResult(
        mechanism="sra", seller=key_of[scenario.seller], seed=seed, nodes=key_nodes, hops=hops_key,
        winner=winner_key, utilities={}, revenue=0,
    )
    replayed = replay_run(key_run, key_values)
    check.replay_matches = replayed.hops == hops_key and replayed.winner == winner_key
    if not check.replay_matches:
        check.problems.append("the outcome differs from the replay reference on the realised tree")

    # Back to scenario names for people.
    def nm(key: str | None) -> str | None:
        return None if key is None else name_of.get(key, key[:8])

    nodes = {
        name_of[k]: NodeReport(
            value=r.value,
            inviters=sorted(nm(x) or x for x in r.inviters),
            invitees=sorted(nm(x) or x for x in r.invitees),
            parent=nm(r.parent),
            bought_at=r.bought_at,
            sold_at=r.sold_at,
        )
        for k, r in key_nodes.items()
    }
    hops = [Hop(h.hop, nm(h.seller) or h.seller, nm(h.buyer) or h.buyer, h.price) for h in hops_key]
    winner = nm(winner_key)
    utilities, revenue = utilities_from_hops(scenario.seller, scenario.values, hops, winner)
    result = RunResult(
        mechanism="sra", seller=scenario.seller, seed=seed, nodes=dict(sorted(nodes.items())), hops=hops,
        winner=winner, utilities=dict(utilities), revenue=revenue,
        messages={s: state.sends.get(s, 0) for s in ("diffusion", "aggregation", "allocation", "settlement")},
    )
    return result, check
