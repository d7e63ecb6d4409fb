"""After a launch: assemble the run from the nodes' own reports and check it.

Two checks, both must pass for ``tools/launch`` to exit 0:

* the outcome equals the ``replay`` reference recomputed from the realised
  invitation relation and tree (in public-key space, so the hosts'
  tie-breaking streams are the very ones the nodes used);
* every node's ledger copy verifies offline and all copies are the same chain.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from peer.launch.monitor import NetworkState
from peer.node.eventlog import read_all
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
    # With injected faults (--kill, --behaviour): see assemble_with_faults.
    outcome: str = "completed"  # completed | aborted | stalled | false-settlement
    reasons: list[str] = field(default_factory=list)  # why it aborted, or stalled
    replay_basis: str | None = None  # "full", "without NAME, ...", or "not applicable: ..."
    excluded: dict[str, str] = field(default_factory=dict)  # faulty node -> what happened to it
    ledger_relations: dict[str, str] = field(default_factory=dict)  # faulty node -> its copy vs the honest one

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok,
            "outcome": self.outcome,
            "replay_matches": self.replay_matches,
            "ledger_copies": self.ledger_copies,
            "ledger_verified": self.ledger_verified,
            "ledger_identical": self.ledger_identical,
            "problems": self.problems,
        }
        if self.reasons or self.replay_basis or self.excluded or self.ledger_relations:
            out.update(reasons=self.reasons, replay_basis=self.replay_basis, excluded=self.excluded,
                       ledger_relations=self.ledger_relations)
        return out


# --------------------------------------------------------------------------- fault helpers
# Pure, in whatever id space the caller uses (keys here, names in the tests).


def chain_relation(reference: Sequence[str], copy: Sequence[str]) -> str:
    """How one ledger copy (entry hashes in order) stands to the honest one.

    "identical", "behind by N" (a prefix: it missed entries), "ahead by N" (the
    honest copy is a prefix of it: it holds entries that never got out), or
    "FORKED at position P" (a different entry at the same place: never allowed).
    """
    common = 0
    for a, b in zip(reference, copy, strict=False):
        if a != b:
            return f"FORKED at position {common + 1}"
        common += 1
    if len(copy) == len(reference):
        return "identical"
    if len(copy) < len(reference):
        return f"behind by {len(reference) - len(copy)}"
    return f"ahead by {len(copy) - len(reference)}"


def without_nodes(nodes: Mapping[str, NodeReport], gone: Collection[str]) -> dict[str, NodeReport]:
    """The realised relation with ``gone`` nodes taken out, as their neighbours lived it when
    they went silent before contributing anything: nobody opens to them, they are nobody's
    tree child, and their own children are reachable only where they take part directly."""
    out = {}
    for node, r in nodes.items():
        if node in gone:
            out[node] = NodeReport(value=r.value)
        else:
            out[node] = replace(r, invitees=[x for x in r.invitees if x not in gone])
    return out


def replay_basis(
    seller: str, seed: int, nodes: Mapping[str, NodeReport], values: Mapping[str, int], hops: Sequence[Hop],
    winner: str, excluded: Collection[str] = (), stops_at: Collection[str] = (),
    tie_coin: Callable[[str, int], bytes] | None = None,
) -> str | None:
    """On which relation the outcome equals its replay: "full" (the realised one), "without
    X, Y" (the excluded nodes taken out), or None if on neither.

    A node that died or went silent before it contributed anything leaves the
    outcome of the relation without it; one that died after the outcome was
    decided leaves the full one.  Dying in between matches neither, and says so.
    ``stops_at``: nodes whose own hop may end with no bids whatever the replay
    says (a host whose false reserve every participant refused keeps the item);
    if the chain ends at one of them, the hops up to it must match ("... up to X").
    """
    candidates = [("full", dict(nodes))]
    if excluded:
        candidates.append((f"without {', '.join(sorted(excluded))}", without_nodes(nodes, excluded)))
    for basis, relation in candidates:
        run = RunResult(mechanism="sra", seller=seller, seed=seed, nodes=relation, hops=list(hops), winner=winner,
                        utilities={}, revenue=0)
        replayed = replay_run(run, values, tie_coin=tie_coin)
        if replayed.hops == list(hops) and replayed.winner == winner:
            return basis
        if winner in stops_at and replayed.hops[:len(hops)] == list(hops) and replayed.winner != winner:
            return f"{basis}, up to {winner} keeping the item"
    return None


def _read_chains(plans: list[NodePlan], auction: str | None, check: LaunchCheck) -> tuple[dict[str, Any], dict[str, bool]]:
    """Every copy's chain (None if it holds none) and whether the copy verifies offline."""
    chains: dict[str, Any] = {}
    verified: dict[str, bool] = {}
    for plan in plans:
        try:
            with LedgerStore.open_data_dir(plan.data_dir, read_only=True) as store:
                report = store.verify_all()
                chains[plan.name] = store.chain(auction) if auction is not None else None
        except Exception as exc:  # noqa: BLE001 - a broken copy is a finding, not a crash
            check.problems.append(f"{plan.name}: ledger unreadable: {exc}")
            continue
        check.ledger_copies += 1
        verified[plan.name] = report.ok
        if report.ok:
            check.ledger_verified += 1
        else:
            check.problems.append(f"{plan.name}: ledger copy does not verify: {'; '.join(report.lines()[:3])}")
    return chains, verified


def announced_auction(scenario: Scenario, plans: Sequence[NodePlan]) -> str | None:
    """The auction id the seller announced (its first ``announced`` event), or None if it never did.

    The launcher does not name the auction: the seller derives its id from its
    own key, so it is read back from the seller's log.
    """
    seller = next((p for p in plans if p.name == scenario.seller), None)
    if seller is None:
        return None
    try:
        events = read_all(seller.log_path)
    except OSError:
        return None
    for event in events:
        auction = event.get("auction")
        if event.get("kind") == "announced" and isinstance(auction, str) and auction:
            return auction
    return None


def assemble_with_faults(
    scenario: Scenario, seed: int, plans: list[NodePlan], state: NetworkState, *, faulty: Collection[str],
    notes: Mapping[str, str], stops_at: Collection[str] = (), stalled: bool = False, verifiable_coins: bool = False,
) -> tuple[RunResult, LaunchCheck]:
    """Like :func:`assemble`, judged on the honest nodes only, with a defined outcome.

    * completed: every honest node that joined the auction settled with a full
      ledger copy; the outcome must equal its replay, on the realised relation
      or on it without the faulty nodes (see :func:`replay_basis`);
    * aborted: some honest node gave up (its stall watchdog) and logged why
      (others may have settled: a node cut off by a fault aborts alone); no
      replay check, the item stays where the ledger says;
    * stalled: the launcher's own timeout hit first.  Always a problem.

    In every case every copy must verify.  The reference is the longest honest
    copy; every other honest copy must be identical to it, except that one
    whose node aborted may be behind (it missed what came after).  Each faulty
    node's copy must not be forked: behind (it missed entries), identical, or
    ahead (it holds entries that never got out).  Nothing else is allowed.
    """
    check = LaunchCheck()
    check.excluded = dict(notes)
    key_of = {p.name: p.key_hex for p in plans}
    name_of = {k: n for n, k in key_of.items()}
    auction = announced_auction(scenario, plans)
    if auction is None:
        check.problems.append("the seller never announced an auction")
    honest = [p.name for p in plans if p.name not in faulty]
    joined = [n for n in honest if state.stages_seen.get(n)]
    aborted = {n: str(state.aborts[n].get("reason")) for n in honest if n in state.aborts}
    waiting = [n for n in joined if n not in state.finals and n not in aborted]
    never = [n for n in honest if n not in joined]
    if stalled or waiting:
        check.outcome = "stalled"
        check.reasons.append(f"no outcome on {', '.join(waiting[:8]) or 'any node'} when the launcher gave up")
        check.problems.append("stalled: " + check.reasons[-1])
    elif aborted:
        check.outcome = "aborted"
        settled = sorted(n for n in joined if n in state.finals)
        if settled:
            check.reasons.append(f"settled nonetheless: {', '.join(settled[:8])}")
        # Nodes name non-neighbours by their short key names: say the scenario's names.
        short = {p.identity.name: p.name for p in plans}
        check.reasons += [f"{n}: {_names_in(r, short)}" for n, r in sorted(aborted.items())]
    if never:
        check.reasons.append(f"never invited (cut off by a faulty node): {', '.join(never[:8])}")

    chains, _ = _read_chains(plans, auction, check)
    # The reference is the longest honest copy (the seller's on a tie): a node the faults cut
    # off from the rest (its only neighbour died) may hold a shorter one, never a different one.
    held = [n for n in honest if chains.get(n) is not None]
    reference_name = max(held, key=lambda n: (len(chains[n].hops), n == scenario.seller), default=scenario.seller)
    reference = chains.get(reference_name)
    hops_key: list[Hop] = []
    if reference is None:
        check.problems.append("no honest node holds a chain of the auction")
    else:
        hops_key = [Hop(h.body.hop, h.body.seller, h.body.buyer, h.body.price) for h in reference.hops]
        ref_hashes = [h.hash for h in reference.hops]
        check.ledger_identical = True
        for name in sorted(set(key_of) - {reference_name}):
            chain = chains.get(name)
            relation = chain_relation(ref_hashes, [] if chain is None else [h.hash for h in chain.hops])
            if chain is None:
                relation += " (no chain at all)"
            if name in faulty:
                check.ledger_relations[name] = relation
                if relation.startswith("FORKED"):
                    check.problems.append(f"{name}'s ledger copy is {relation}")
                continue
            if relation == "identical":
                continue
            check.ledger_identical = False
            check.ledger_relations[name] = relation
            # An honest node that aborted may have missed what came after; nothing else may differ.
            if not (name in aborted and relation.startswith("behind")):
                check.problems.append(f"honest ledger copy of {name} is {relation} against {reference_name}'s")
    holder_key = hops_key[-1].buyer if hops_key else key_of[scenario.seller]
    winners = {state.finals[n].get("winner") for n in honest if n in state.finals}  # aborted ones have none
    if winners and winners != {holder_key}:
        check.problems.append("honest nodes disagree on the winner, or it differs from the ledger")
        if check.outcome == "completed":
            # Settled on a claim the ledger contradicts (the shell does not check Settled yet).
            check.outcome = "false-settlement"
            short = {p.identity.name: p.name for p in plans}
            claimed = sorted(_names_in(name_of.get(str(w), str(w)), short) for w in winners)
            check.reasons.append(f"honest nodes settled on winner {', '.join(claimed)}; the ledger says "
                                 f"{name_of.get(holder_key, holder_key)} holds the item")

    key_nodes: dict[str, NodeReport] = {}
    for name, key in key_of.items():
        final = state.finals.get(name)
        last = final or state.last_stage.get(name, {})
        parent = (final.get("parent") if final else
                  key_of.get(state.bid_to.get(name, ""), None))
        key_nodes[key] = NodeReport(
            value=scenario.values[name], inviters=list(last.get("inviters", [])),
            invitees=list(last.get("invitees", [])), parent=parent,
            bought_at=parse_money(final["bought_at"]) if final and final.get("bought_at") else None,
            sold_at=parse_money(final["sold_at"]) if final and final.get("sold_at") else None,
        )
    if check.outcome == "completed" and reference is not None:
        values = {key_of[n]: v for n, v in scenario.values.items()}
        basis = replay_basis(key_of[scenario.seller], seed, key_nodes, values, hops_key, holder_key,
                             excluded={key_of[n] for n in faulty}, stops_at={key_of[n] for n in stops_at},
                             tie_coin=_tie_coins(plans, auction, verifiable_coins))
        check.replay_matches = basis is not None
        check.replay_basis = None if basis is None else _names_in(basis, name_of)
        if basis is None:
            check.problems.append("the outcome differs from the replay, with and without the faulty nodes")
    else:
        check.replay_basis = f"not applicable: {check.outcome}"

    return _named_result(scenario, seed, name_of, key_nodes, hops_key, holder_key, state), check


def _names_in(text: str, name_of: Mapping[str, str]) -> str:
    for key, name in name_of.items():
        text = text.replace(key, name)
    return text


def _tie_coins(plans: list[NodePlan], auction: str | None, verifiable: bool) -> Callable[[str, int], bytes] | None:
    """Under verifiable coins hosts break ties by their signature over (auction, hop): the
    launcher made the identities, so its replay signs the same coins (peer.sra.coins)."""
    if not verifiable or auction is None:
        return None
    from peer.sra.coins import coin_message, tie_purpose

    signers = {p.key_hex: p.identity for p in plans}
    return lambda host, hop: signers[host].sign(coin_message(auction, tie_purpose(hop)))


def assemble(scenario: Scenario, seed: int, plans: list[NodePlan], state: NetworkState, *,
             verifiable_coins: bool = False) -> tuple[RunResult, LaunchCheck]:
    check = LaunchCheck()
    name_of = {p.key_hex: p.name for p in plans}
    key_of = {p.name: p.key_hex for p in plans}
    auction = announced_auction(scenario, plans)
    if auction is None:
        check.problems.append("the seller never announced an auction")
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
                chain = store.chain(auction) if auction is not None else None
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
    replayed = replay_run(key_run, key_values, tie_coin=_tie_coins(plans, auction, verifiable_coins))
    check.replay_matches = replayed.hops == hops_key and replayed.winner == winner_key
    if not check.replay_matches:
        check.problems.append("the outcome differs from the replay reference on the realised tree")

    return _named_result(scenario, seed, name_of, key_nodes, hops_key, winner_key, state), check


def _named_result(
    scenario: Scenario, seed: int, name_of: Mapping[str, str], key_nodes: Mapping[str, NodeReport],
    hops_key: list[Hop], holder_key: str | None, state: NetworkState,
) -> RunResult:
    """The run in scenario names (the nodes worked in public keys), as ``peer sim`` reports it."""

    def nm(key: str | None) -> str | None:
        return None if key is None else name_of.get(key, key[:8])

    nodes = {
        name_of[k]: NodeReport(value=r.value, inviters=sorted(nm(x) or x for x in r.inviters),
                               invitees=sorted(nm(x) or x for x in r.invitees), parent=nm(r.parent),
                               bought_at=r.bought_at, sold_at=r.sold_at)
        for k, r in key_nodes.items()
    }
    hops = [Hop(h.hop, nm(h.seller) or h.seller, nm(h.buyer) or h.buyer, h.price) for h in hops_key]
    holder = nm(holder_key)
    utilities, revenue = utilities_from_hops(scenario.seller, scenario.values, hops, holder)
    return RunResult(
        mechanism="sra", seller=scenario.seller, seed=seed, nodes=dict(sorted(nodes.items())), hops=hops,
        winner=holder, utilities=dict(utilities), revenue=revenue,
        messages={s: state.sends.get(s, 0) for s in ("diffusion", "aggregation", "allocation", "settlement")},
    )
