"""The provider machine end to end in the simulator: honest runs, and every deviation of #12."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer.auctioneer import messages as m
from peer.auctioneer.allocators import make_plan
from peer.auctioneer.deviations import DEVIATIONS, by_name
from peer.auctioneer.effects import Aborted, Decided, Rejected
from peer.auctioneer.provider import ProviderMachine, RoundConfig
from peer.auctioneer.scenario import make_instance
from peer.auctioneer.sim import coin_secret, run_round
from peer.auctioneer.vcg import standard_auction
from peer.auctioneer.double import double_auction
from peer.auctioneer.bids import sign_bid

DOUBLE = make_instance(7, 40, 8, "double")
STANDARD = make_instance(7, 16, 8, "standard")


def identity_of(instance):
    table = {p.public_key: p for p in instance.providers}
    return table.__getitem__


def execs(instance, n):
    return sorted(p.public_key for p in instance.providers[:n])


def assert_all_decided_the_reference(result, instance, reference):
    decided = result.decided()
    assert len(decided) == len(result.results), result.aborted()
    outcomes = {d.outcome.outcome for d in decided.values()}
    assert len(outcomes) == 1
    outcome = outcomes.pop()
    assert outcome.allocation == reference(outcome)
    for d in decided.values():
        assert d.outcome.problem(tuple(sorted(result.results))) is None
    assert result.client.settled() == outcome.digest()


@pytest.mark.parametrize(("executors", "k"), [(3, 1), (5, 2), (8, 3)])
def test_honest_double_auction_matches_the_centralised_allocator(executors, k):
    result = run_round(DOUBLE, executors=executors, k=k, wire=True)
    assert_all_decided_the_reference(result, DOUBLE, lambda o: double_auction(DOUBLE.bids, o.coin))
    assert not result.rejected


@pytest.mark.parametrize(("executors", "k"), [(8, 7), (8, 3), (8, 1)])
def test_honest_standard_auction_splits_payments_and_matches_exact_vcg(executors, k):
    result = run_round(STANDARD, executors=executors, k=k, wire=True)
    assert_all_decided_the_reference(result, STANDARD, lambda o: standard_auction(STANDARD.bids))


def only_honest(result, deviants):
    return {p: r for p, r in result.results.items() if p not in deviants}


def check_deviation(instance, executors, k, deviants, name, *, culprit_named=True, proved=None):
    tamper = {p: by_name(name, identity_of(instance)) for p in deviants}
    result = run_round(instance, executors=executors, k=k, tamper=tamper, phase_timeout=2.0)
    honest = only_honest(result, deviants)
    assert honest and all(isinstance(r, (Aborted, Decided)) for r in honest.values())
    # never another result: whoever decides decides the honest outcome
    clean = run_round(instance, executors=executors, k=k).decided()
    reference = next(iter(clean.values())).outcome.outcome.digest()
    for r in honest.values():
        if isinstance(r, Decided):
            assert r.outcome.outcome.digest() == reference
    aborts = [r for r in honest.values() if isinstance(r, Aborted)]
    assert aborts, "a deviation that changes what is sent must be noticed"
    if culprit_named:
        for r in aborts:
            assert set(r.culprits) <= set(deviants) and r.culprits, r
            if proved is not None:
                assert r.proved == proved
    return aborts


def test_a_provider_reporting_another_bid_vector_makes_the_honest_output_bottom():
    deviant = execs(DOUBLE, 5)[2]
    aborts = check_deviation(DOUBLE, 5, 2, [deviant], "other-vector", proved=False)
    assert all("input validation" in a.reason for a in aborts)


@pytest.mark.parametrize("name", ["withhold-reveal", "change-reveal"])
def test_a_provider_withholding_or_changing_its_reveal_is_named(name):
    deviant = execs(DOUBLE, 5)[0]
    aborts = check_deviation(DOUBLE, 5, 2, [deviant], name, proved=(name == "change-reveal"))
    assert all("coin" in a.reason for a in aborts)


def test_a_wrong_task_result_is_caught_by_cross_checking_and_named_by_recomputation():
    deviant = execs(STANDARD, 8)[1]
    aborts = check_deviation(STANDARD, 8, 1, [deviant], "wrong-result", proved=True)
    assert any("data transfer" in a.reason for a in aborts)


def test_a_wrong_double_auction_outcome_is_refused_at_signing():
    deviant = execs(DOUBLE, 3)[1]
    aborts = check_deviation(DOUBLE, 3, 1, [deviant], "wrong-result", proved=True)
    assert all("outcome" in a.reason for a in aborts)


def test_a_silent_provider_times_out_and_is_suspected():
    deviant = execs(DOUBLE, 3)[0]
    aborts = check_deviation(DOUBLE, 3, 1, [deviant], "silent", proved=False)
    assert all("timeout" in a.reason for a in aborts)


@pytest.mark.parametrize("name", ["other-vector", "change-reveal", "wrong-result", "silent"])
def test_a_coalition_of_k_providers_cannot_change_the_outcome(name):
    # k = 3 of 8; for the standard auction a group holds 4 providers, so the coalition can fill
    # all but one seat of a group: the one honest member is enough to expose it.
    deviants = execs(STANDARD, 8)[:3]
    check_deviation(STANDARD, 8, 3, deviants, name, culprit_named=(name != "other-vector"))


def test_a_user_who_equivocates_is_excluded_with_proof_and_everyone_agrees():
    user = DOUBLE.users[0]
    original = next(b for b in DOUBLE.bids if b.bidder == user.public_key)
    other = sign_bid(user, 1, original.side, original.value + 1, original.quantity)
    providers = execs(DOUBLE, 5)
    per_provider = {
        p: tuple(other if (b.bidder == user.public_key and i % 2) else b for b in DOUBLE.bids)
        for i, p in enumerate(providers)
    }
    result = run_round(DOUBLE, executors=5, k=2, client_bids=per_provider)
    decided = result.decided()
    assert len(decided) == 5
    assert len({d.outcome.outcome.digest() for d in decided.values()}) == 1
    for d in decided.values():
        assert user.public_key in d.vector.excluded
        assert all(b.bidder != user.public_key for b in d.vector.bids)


def machine(instance, n=3, k=1, index=0):
    ids = sorted(instance.providers[:n], key=lambda i: i.public_key)
    config = RoundConfig(1, instance.auction, tuple(i.public_key for i in ids), k, bid_deadline=10.0)
    share, nonce = coin_secret(0, ids[index].public_key)
    return ProviderMachine(ids[index], config, share=share, nonce=nonce), ids


def test_bad_input_is_rejected_and_changes_nothing():
    pm, ids = machine(DOUBLE)
    stranger = b"\x01" * 32
    before = (pm.phase, pm.view.digest())
    assert isinstance(pm.on_message(stranger, m.ViewDigest(1, bytes(32), 0), 0.0)[0], Rejected)
    assert isinstance(pm.on_message(ids[1].public_key, m.ViewDigest(2, bytes(32), 0), 0.0)[0], Rejected)
    assert isinstance(pm.on_message(stranger, m.CloseBids(1), 0.0)[0], Rejected)
    forged = DOUBLE.bids[0].__class__(1, DOUBLE.bids[0].bidder, DOUBLE.bids[0].side, 1, 1, DOUBLE.bids[0].sig)
    receipt = pm.on_message(stranger, m.BidBatch(1, (forged,)), 0.0)[0]
    assert receipt.msg.accepted == 0 and "signature" in receipt.msg.rejected[0][1]
    assert (pm.phase, pm.view.digest()) == before


def test_a_provider_that_never_hears_from_others_times_out():
    pm, ids = machine(DOUBLE)
    pm.start(0.0)
    pm.on_tick(10.0)  # deadline: close the bids
    assert pm.phase == "agree"
    out = pm.on_tick(15.1)
    aborted = [e for e in out if isinstance(e, Aborted)]
    assert aborted and set(aborted[0].culprits) == {ids[1].public_key, ids[2].public_key}


def test_make_plan_refuses_unknown_auctions():
    with pytest.raises(ValueError):
        make_plan("dutch", None, bytes(32), [], 0)


def test_early_task_results_from_one_provider_are_bounded():
    from peer.auctioneer.signing import result_bytes

    pm, ids = machine(DOUBLE)
    other = ids[1]
    out = []
    for g in range(len(ids) + 1):
        task = f"pay.{g}"
        sig = other.sign(result_bytes(1, task, b"x"))
        out = pm.on_message(other.public_key, m.TaskResult(1, task, b"x", sig), 0.0)
    assert isinstance(out[0], Rejected) and len(pm._early_results[other.public_key]) == len(ids)


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_any_coalition_of_at_most_k_mixing_deviations_never_changes_the_honest_output(data):
    auction = data.draw(st.sampled_from(["double", "standard"]))
    instance = DOUBLE if auction == "double" else STANDARD
    executors, k = data.draw(st.sampled_from([(3, 1), (5, 2), (8, 3), (4, 1)]))
    members = execs(instance, executors)
    deviants = data.draw(st.lists(st.sampled_from(members), max_size=k, unique=True))
    names = {p: data.draw(st.sampled_from(DEVIATIONS)) for p in deviants}
    tamper = {p: by_name(names[p], identity_of(instance)) for p in deviants}
    clean = run_round(instance, executors=executors, k=k)
    reference = {d.outcome.outcome.digest() for d in clean.decided().values()}
    assert len(reference) == 1 and len(clean.decided()) == executors
    result = run_round(instance, executors=executors, k=k, tamper=tamper, phase_timeout=2.0)
    for p, r in result.results.items():
        if p in deviants:
            continue
        assert isinstance(r, (Aborted, Decided))
        if isinstance(r, Decided):
            assert r.outcome.outcome.digest() in reference
        elif r.proved:
            assert set(r.culprits) <= set(deviants)  # proof never convicts an honest provider
