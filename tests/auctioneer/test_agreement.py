"""Property 1 (bid agreement on signed bids) and Property 3 (input validation's digest)."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from peer.auctioneer.agreement import BidView, check_foreign, merge
from peer.auctioneer.bids import Equivocation
from tests.auctioneer._helpers import bid

HONEST = [bid(i, 1000 + i, 10 + i) for i in range(12)]
LIARS = [(bid(100 + i, 900, 5), bid(100 + i, 950, 5)) for i in range(3)]


def view_of(bids) -> BidView:
    view = BidView(1)
    for b in bids:
        assert check_foreign(view, (b,), ()) is None
        view.add(b)
    return view


@st.composite
def provider_inputs(draw):
    """What each of m providers received: every honest bid (correct users send to all), and for each
    equivocating user one of its two bids or none, chosen per provider."""
    m = draw(st.integers(2, 6))
    inputs = []
    for _ in range(m):
        bids = list(HONEST)
        for pair in LIARS:
            choice = draw(st.sampled_from([0, 1, None]))
            if choice is not None:
                bids.append(pair[choice])
        inputs.append(draw(st.permutations(bids)))
    return inputs


def slow_path(inputs):
    """Every provider merges every other provider's whole view into its own, in its own order."""
    views = [view_of(bids) for bids in inputs]
    snapshots = [(tuple(v.bids.values()), tuple(v.proofs.values())) for v in views]
    for i, view in enumerate(views):
        for j in [*range(i + 1, len(views)), *range(i)]:
            bids, proofs = snapshots[j]
            assert check_foreign(view, bids, proofs) is None
            merge(view, bids, proofs)
    return [v.vector() for v in views]


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(provider_inputs())
def test_agreement_and_validity(inputs):
    vectors = slow_path(inputs)
    # eventual agreement: one vector, whatever each provider received and in whatever order
    assert len({v.digest() for v in vectors}) == 1
    vector = vectors[0]
    # validity: a user that sent one bid to everyone has exactly that bid in the output
    assert set(HONEST) <= set(vector.bids)
    # an equivocator seen with both bids anywhere is excluded everywhere; otherwise its one bid stands
    for a, b in LIARS:
        seen = {x for bids in inputs for x in bids if x.bidder == a.bidder}
        if len(seen) == 2:
            assert a.bidder in vector.excluded
        elif seen:
            assert seen.pop() in vector.bids


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(provider_inputs())
def test_equal_views_have_equal_digests_and_different_views_different(inputs):
    views = [view_of(bids) for bids in inputs]
    for a in views:
        for b in views:
            same = a.vector() == b.vector()
            assert (a.digest() == b.digest()) == same


def test_a_forged_bid_in_a_view_is_refused_and_changes_nothing():
    view = view_of(HONEST[:3])
    before = view.digest()
    forged = dataclasses.replace(HONEST[5], value=1)  # signature no longer matches
    assert check_foreign(view, (forged,), ()) is not None
    assert view.digest() == before


def test_a_false_equivocation_proof_is_refused():
    view = view_of(HONEST[:3])
    fake = Equivocation.of(HONEST[0], dataclasses.replace(HONEST[0], value=5))
    assert check_foreign(view, (), (fake,)) is not None
    different_bidders = Equivocation(HONEST[1], HONEST[2])
    assert different_bidders.problem(1) is not None


def test_two_signatures_over_the_same_content_are_not_an_equivocation():
    view = view_of([HONEST[0]])
    same_content = dataclasses.replace(HONEST[0], sig=bytes(64))
    assert view.classify(same_content) == "same"


def test_a_conflicting_bid_convicts_its_bidder_with_a_checkable_proof():
    a, b = LIARS[0]
    view = view_of([a])
    proof = view.add(b)
    assert proof is not None and proof.problem(1) is None
    assert a.bidder in view.vector().excluded and a.bidder not in view.bids


def test_the_simulators_shared_verification_never_admits_a_forged_bid():
    from peer.auctioneer.bids import bid_problem, shared_verification

    forged = dataclasses.replace(HONEST[0], value=HONEST[0].value + 1)
    with shared_verification():
        assert bid_problem(HONEST[0], 1) is None
        assert bid_problem(HONEST[0], 1) is None  # from the cache
        assert bid_problem(forged, 1) == "bad signature"
    assert bid_problem(forged, 1) == "bad signature"
