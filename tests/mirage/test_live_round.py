"""A Mirage round as a round of the distributed auctioneer, in one process (no sockets, seeded coins)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest

from peer.auctioneer.agreement import BidVector
from peer.auctioneer.bids import Side, sign_bid
from peer.auctioneer.deviations import wrong_result
from peer.auctioneer.effects import Aborted, Broadcast, Decided, Send
from peer.auctioneer.outcome import Allocation as SignedAllocation
from peer.auctioneer.outcome import Outcome, Trade
from peer.auctioneer.provider import ProviderMachine, RoundConfig
from peer.auctioneer.vcg import SolverError
from peer.auctioneer.sim import coin_secret
from peer.auctioneer import messages as m
from peer.coin import CoinStream
from peer.mirage.auctioneer_round import (
    MiragePlan, market_bid, pack_terms, round_inputs, sign_mirage_bid, slot_identity, unpack_terms,
)
from peer.mirage.clearing import clear
from peer.mirage.live import MirageBook, adopt, verify_records
from peer.mirage.live_config import LiveParams, load_live, make_cluster
from peer.mirage.live_sim import run_rounds
from peer.mirage.live_user import make_user
from peer.mirage.model import A2_MIP, A2_RULES, Bid, MarketError
from peer.net.identity import Identity

LIVE = Path(__file__).resolve().parents[2] / "scenarios" / "mirage" / "live.toml"


def world(rounds: int = 6, **changes):
    scenario, params = load_live(LIVE)
    params = replace(params, rounds=rounds, **changes)
    cluster, providers, users = make_cluster(scenario, params, str(LIVE))
    agents = [make_user(e, users[e.name], scenario, cluster.rules, cluster.capacity, cluster.baseline, rounds)
              for e in cluster.users]
    return cluster, providers, users, agents


def check(cluster, run, honest):
    copies = {p: json.dumps(run.records[p], sort_keys=True, default=str) for p in honest}
    for p in honest:
        assert verify_records(run.records[p], cluster.setup(), cluster.providers, cluster.k, cluster.rounds) == []
    return copies


# --- the bid in the auctioneer's fields ------------------------------------------------------------


def test_terms_pack_exactly_and_refuse_what_does_not_fit():
    for terms in [(1, 1, 0, 0), (1023, 32, 127, 127), (97, 4, 3, 71)]:
        q = pack_terms(*terms)
        assert q < 10**9 and unpack_terms(q) == terms
    for bad in [(0, 1, 0, 0), (1024, 1, 0, 0), (1, 33, 0, 0), (1, 1, 5, 4), (1, 1, 0, 128)]:
        with pytest.raises(MarketError):
            pack_terms(*bad)
    with pytest.raises(MarketError):
        unpack_terms(1 << 29)


def test_a_signed_slot_bid_stands_for_the_mirage_bid_relative_to_the_round_hour():
    user = Identity.from_seed(b"u" * 32)
    slot = slot_identity(user, 0)
    assert slot.public_hex == slot_identity(user, 0).public_hex != slot_identity(user, 1).public_hex
    bid = Bid("job/b0", "acct", 12_345, nodes=8, hours=4, earliest=3, latest=20)
    signed = sign_mirage_bid(slot, round_no=6, now=5, bid=bid)
    back = market_bid(signed, now=5, account="acct", seq=1)
    assert (back.value, back.nodes, back.hours, back.earliest, back.latest) == (12_345, 8, 4, 5, 20)
    with pytest.raises(MarketError):  # its last start has passed: not signed
        sign_mirage_bid(slot, 30, 29, bid)


# --- rounds among providers ------------------------------------------------------------------------


def test_several_rounds_every_provider_holds_identical_verifying_records_and_money_is_conserved():
    cluster, providers, _, agents = world()
    run = run_rounds(cluster, list(providers.values()), agents)
    assert all(set(o.values()) == {"decided"} for o in run.outputs)
    copies = check(cluster, run, cluster.providers)
    assert len(set(copies.values())) == 1
    last = run.records[cluster.providers[0]][-1]["mirage"]["balances"]
    assert sum(last.values()) == cluster.baseline * len(cluster.users)  # a closed currency
    won = sum(len(r["mirage"]["allocations"]) for r in run.records[cluster.providers[0]])
    assert won >= 5  # the scenario is busy enough for the rounds to allocate something
    assert sum(len(a.report.won) for a in agents) == won  # each user learnt its own winnings


def test_the_plan_combines_greedy_and_mip_tasks_exactly_as_the_market_clears():
    """Greedy and the MIP run as tasks of different provider groups; finish must pick what clear() picks."""
    scenario, params = load_live(LIVE)
    cluster, providers, users = make_cluster(scenario, replace(params, providers=4, k=1), str(LIVE))
    book = MirageBook(replace(cluster.setup(), rules=A2_MIP))
    ctx = book.context(1)
    # 12 nodes free at hour 0, every bid starting there: greedy takes the best rate (8 nodes, 8,500)
    # and nothing else fits beside it; the MIP finds the 10-node bid alone, worth 9,000.
    keys = [Identity.from_seed(bytes([i]) * 32) for i in range(3)]
    entries = {k.public_hex: u.key for k, u in zip(keys, cluster.users)}
    ctx = replace(ctx, slots=entries, used=(4,) + (0,) * 103)
    terms = [(9_000, 10, 2), (8_500, 8, 2), (8_400, 8, 2)]
    bids = tuple(sorted((sign_bid(k, 1, Side.USER, v, pack_terms(n, h, 0, 0)) for k, (v, n, h) in zip(keys, terms)),
                        key=lambda b: b.bidder))
    vector = BidVector(1, bids, ())
    coin = bytes(32)
    plan = MiragePlan(vector, coin, cluster.providers, cluster.k, ctx)
    assert set(plan.tasks) == {"greedy", "mip"} and plan.tasks["greedy"] != plan.tasks["mip"]
    allocation = plan.finish({t: plan.compute(t) for t in plan.tasks})
    inp = round_inputs(ctx, vector, coin)
    reference = clear(inp.state, inp.ordered, A2_MIP)
    assert plan.clearing.allocations == reference.allocations and plan.clearing.algorithm == reference.algorithm
    assert reference.algorithm == "mip" and plan.clearing.value == 9_000 and len(allocation.trades) == 1


def test_coin_breaks_ties_between_equal_bids_the_same_way_everywhere():
    cluster, *_ = world()
    ctx = MirageBook(cluster.setup()).context(1)
    users = [Identity.from_seed(bytes([9 + i]) * 32) for i in range(2)]
    slots = {slot_identity(u, 0).public_hex: e.key for u, e in zip(users, cluster.users)}
    ctx = replace(ctx, slots=slots)
    bids = tuple(sorted((sign_bid(slot_identity(u, 0), 1, Side.USER, 50_000, pack_terms(16, 1, 0, 0)) for u in users),
                        key=lambda b: b.bidder))
    vector = BidVector(1, bids, ())
    winners = set()
    for c in range(8):
        coin = bytes([c]) * 32
        plan = MiragePlan(vector, coin, cluster.providers, cluster.k, ctx)
        allocation = plan.finish({t: plan.compute(t) for t in plan.tasks})
        first = CoinStream(coin, b"mirage/tie-break").shuffled(sorted(b.bidder for b in bids))[0]
        assert allocation.trades[0].user == first  # the whole testbed, for the hour: the coin's first
        winners.add(first)
    assert len(winners) == 2


def test_a_provider_reporting_a_wrong_result_gives_bottom_for_that_round_not_another_allocation():
    cluster, providers, _, agents = world()
    liar = cluster.providers[1]
    honest = [p for p in cluster.providers if p != liar]
    tamper = {(liar, 3): wrong_result(lambda key: next(i for i in providers.values() if i.public_key == key))}
    run = run_rounds(cluster, list(providers.values()), agents, tamper=tamper)
    for p in honest:
        record = run.records[p][2]
        assert record["output"] == "bottom" and record["reason"] == "data transfer: conflicting results"
        assert record["culprits"] == [liar.hex()] and record["proved"] is True
        assert "allocations" not in record["mirage"]  # nobody pays, nothing is booked
    assert all(run.outputs[r][p] == "decided" for r in (0, 1, 3, 4, 5) for p in honest)
    copies = check(cluster, run, honest)
    assert len(set(copies.values())) == 1


def test_an_outcome_signature_sent_to_only_some_providers_does_not_split_them():
    """The deviant signs the right outcome but sends its signature to one honest provider only: that one
    decides and forwards every signature; the other adopts them (they are on the digest it computed)."""
    cluster, providers, _, agents = world(rounds=4)
    deviant, first, second = cluster.providers[1], cluster.providers[0], cluster.providers[2]

    def one_only(me, effects):
        return [Send(first, e.msg) if isinstance(e, Broadcast) and isinstance(e.msg, m.OutcomeSig) else e
                for e in effects]
    run = run_rounds(cluster, list(providers.values()), agents, tamper={(deviant, 2): one_only})
    assert run.outputs[1][first] == run.outputs[1][second] == "decided"
    copies = check(cluster, run, cluster.providers)
    assert len(set(copies.values())) == 1


def test_forwarded_signatures_are_adopted_only_when_complete_valid_and_on_this_providers_digest():
    cluster, providers, _, agents = world(rounds=1)
    run = run_rounds(cluster, list(providers.values()), agents)
    record = run.records[cluster.providers[0]][0]
    sigs = tuple((bytes.fromhex(p), bytes.fromhex(s)) for p, s in record["signatures"])
    allocation = SignedAllocation(
        tuple(Trade(bytes.fromhex(u), bytes.fromhex(p), q) for u, p, q in record["trades"]),
        tuple((bytes.fromhex(k), v) for k, v in record["charges"]),
        tuple((bytes.fromhex(k), v) for k, v in record["credits"]))
    outcome = Outcome(1, "mirage", bytes.fromhex(record["vector_digest"]), bytes.fromhex(record["coin"]), allocation)

    class AtSignPhase:  # what adopt reads of a provider machine that computed and signed ``outcome``
        vector = BidVector(1, (), ())
        config = RoundConfig(1, "mirage", cluster.providers, cluster.k, 1.0)

        def __init__(self, outcome):
            self.outcome = outcome
    digest = outcome.digest()
    assert digest.hex() == record["digest"]
    assert isinstance(adopt(AtSignPhase(outcome), digest, sigs), Decided)
    assert adopt(AtSignPhase(None), digest, sigs) is None  # not at the sign phase
    assert adopt(AtSignPhase(outcome), digest, sigs[:-1]) is None  # one signature short
    forged = sigs[:-1] + ((sigs[-1][0], bytes(64)),)
    assert adopt(AtSignPhase(outcome), digest, forged) is None
    other = Outcome(1, "mirage", bytes(32), outcome.coin, allocation)  # it computed another outcome
    assert adopt(AtSignPhase(other), digest, sigs) is None


def test_an_unready_market_state_is_bottom_not_a_guess():
    """A provider whose previous round has no output yet cannot clear this one: its task fails, the round is ⊥."""
    cluster, providers, _, _ = world()
    book = MirageBook(cluster.setup())  # round 1 has no output here
    ident = next(iter(providers.values()))
    share, nonce = coin_secret(1, ident.public_key)
    config = RoundConfig(2, "mirage", cluster.providers, cluster.k, 1.0, context=book.context_source(2))
    plan = MiragePlan(BidVector(2, (), ()), bytes(32), cluster.providers, cluster.k, config.context)
    with pytest.raises(SolverError, match="round 1 has no output here yet"):
        plan.compute("greedy")
    with pytest.raises(SolverError, match="no Mirage market state"):  # "mirage" without a context: ⊥ too
        MiragePlan(BidVector(2, (), ()), bytes(32), cluster.providers, cluster.k, None).compute("greedy")


# --- what a record proves ---------------------------------------------------------------------------


def test_verification_catches_a_changed_balance_bid_or_signature():
    cluster, providers, _, agents = world(rounds=4)
    run = run_rounds(cluster, list(providers.values()), agents)
    records = run.records[cluster.providers[0]]
    verify = lambda rs: verify_records(rs, cluster.setup(), cluster.providers, cluster.k, cluster.rounds)  # noqa: E731
    assert verify(records) == []
    rich = next(i for i, r in enumerate(records) if r["mirage"]["allocations"])
    forged = copy.deepcopy(records)
    user = next(iter(forged[rich]["mirage"]["balances"]))
    forged[rich]["mirage"]["balances"][user] += 1
    assert "balances" in verify(forged)[0]
    forged = copy.deepcopy(records)
    forged[rich]["mirage"]["bids"][0][1] += 1  # a bid's value: its signature no longer holds
    assert "bad signature" in verify(forged)[0]
    forged = copy.deepcopy(records)
    forged[rich]["credits"][0][1] += 1  # the signed outcome itself
    assert "digest" in verify(forged)[0]
    forged = copy.deepcopy(records)
    del forged[rich]["mirage"]["bids"][0]  # a bid left out: the vector digest no longer matches
    assert "agreed vector" in verify(forged)[0]


# --- users ------------------------------------------------------------------------------------------


def test_a_user_without_the_previous_view_sits_the_round_out_instead_of_rebidding_blind():
    cluster, providers, users, agents = world(rounds=3)
    u = next(a for a in agents if a.specs and a.specs[0].arrival == 0)
    assert u.bids_for(1)
    assert u.bids_for(2) == () and u.report.rounds_missed == 1  # no view of round 1 yet


def test_an_equivocating_slot_is_excluded_everywhere_and_the_round_still_decides():
    cluster, providers, users, agents = world(rounds=1)
    entry = cluster.users[0]
    slot = slot_identity(users[entry.name], 0)
    a = sign_mirage_bid(slot, 1, 0, Bid("x", entry.key, 1_000, 2, 1, 0, 5))
    b = sign_mirage_bid(slot, 1, 0, Bid("x", entry.key, 2_000, 2, 1, 0, 5))
    ids = sorted(providers.values(), key=lambda i: i.public_key)
    machines, queue, results = {}, [], {}
    for i, ident in enumerate(ids):
        share, nonce = coin_secret(7, ident.public_key)
        ctx = MirageBook(cluster.setup()).context_source(1)
        machines[ident.public_key] = ProviderMachine(ident, RoundConfig(1, "mirage", cluster.providers, cluster.k, 1.0,
                                                                        context=ctx), share=share, nonce=nonce)
        machines[ident.public_key].start(0.0)
        # The equivocator sends one bid to the first provider and the other to the rest.
        machines[ident.public_key].on_message(b"\x01" * 32, m.BidBatch(1, (a if i == 0 else b,)), 0.0)
    def push(owner, effects):
        for e in effects:
            if isinstance(e, Broadcast):
                queue.extend((to, owner, e.msg) for to in machines if to != owner)
            elif isinstance(e, (Decided, Aborted)):
                results[owner] = e
    for key, machine in machines.items():
        push(key, machine.on_tick(1.0))
    while queue:
        to, frm, msg = queue.pop(0)
        push(to, machines[to].on_message(frm, msg, 1.0))
    assert all(isinstance(r, Decided) for r in results.values()) and len(results) == 3
    assert {r.vector.excluded for r in results.values()} == {(slot.public_key,)}
    assert len({r.outcome.outcome.digest() for r in results.values()}) == 1


def test_resubmitting_an_unchanged_bid_pays_no_second_fee_but_a_revision_does():
    cluster, *_ = world()
    book = MirageBook(replace(cluster.setup(), rules=replace(A2_RULES, fee=7)))
    entry, slot = cluster.users[0], Identity.from_seed(b"q" * 32)
    first = sign_bid(slot, 1, Side.USER, 5_000, pack_terms(2, 1, 40, 60))
    ctx1 = replace(book.context(1), slots={slot.public_hex: entry.key})
    assert ctx1.previous == {}
    assert round_inputs(ctx1, BidVector(1, (first,), ()), bytes(32)).fees == {entry.key: 7}
    # Round 2 (hour 1), the book holding round 1's terms of the slot: the same bid, signed again.
    ctx2 = replace(ctx1, round=2, now=1, previous={slot.public_hex: (2, 1, 60, 5_000)})
    same = sign_bid(slot, 2, Side.USER, 5_000, pack_terms(2, 1, 39, 59))
    assert round_inputs(ctx2, BidVector(2, (same,), ()), bytes(32)).fees == {}
    revised = sign_bid(slot, 2, Side.USER, 6_000, pack_terms(2, 1, 39, 59))
    assert round_inputs(ctx2, BidVector(2, (revised,), ()), bytes(32)).fees == {entry.key: 7}


@pytest.mark.parametrize("mechanism", ["A2", "A2+MIP", "A2+rules"])
def test_every_mechanism_runs_live_rounds_that_verify(mechanism):
    cluster, providers, _, agents = world(rounds=5, mechanism=mechanism)
    run = run_rounds(cluster, list(providers.values()), agents)
    assert all(set(o.values()) == {"decided"} for o in run.outputs)
    copies = check(cluster, run, cluster.providers)
    assert len(set(copies.values())) == 1
    records = run.records[cluster.providers[0]]
    assert sum(records[-1]["mirage"]["balances"].values()) == cluster.baseline * len(cluster.users)
    if mechanism == "A2+rules":
        # The fee: charged for each bid that is new or changed since the round before (counted here
        # from the signed bids themselves), and each user holds one outstanding bid at a time.
        before: set[tuple] = set()
        for r in records:
            section = r["mirage"]
            terms = set()
            for slot, value, quantity, _ in section["bids"]:
                nodes, hours, _, latest = unpack_terms(quantity)
                terms.add((slot, nodes, hours, section["hour"] + latest, value))
            assert sum(a for _, a in section["fees"]) == cluster.fee * len(terms - before)
            owners = [cluster.setup().slots[slot] for slot, *_ in section["bids"]]
            assert len(owners) == len(set(owners))
            before = terms


def test_a_user_that_missed_a_view_learns_its_winnings_from_the_next_and_never_buys_twice():
    cluster, providers, _, agents = world(rounds=6)
    # The busiest bidder misses the view of round 2 (as if every provider's copy came too late).
    deaf = max(agents, key=lambda a: sum(1 for j in a.specs if j.arrival <= 2))
    take = deaf.on_update
    deaf.on_update = lambda view: None if view["round"] == 2 else take(view)
    run = run_rounds(cluster, list(providers.values()), agents)
    assert deaf.report.rounds_missed == 1  # it sat round 3 out
    records = run.records[cluster.providers[0]]
    mine = [[r["mirage"]["round"], *a[2:]] for r in records for a in r["mirage"]["allocations"] if a[1] == deaf.account]
    assert sorted(deaf.report.won) == sorted(mine) and mine
    assert any(w[0] == 2 for w in mine)  # won in the round whose view it missed, and it knows
    bids = [(r["mirage"]["round"], b[0]) for r in records for b in r["mirage"]["bids"]]
    assert not any(rnd == 3 and slot in deaf.slot_hex for rnd, slot in bids)
