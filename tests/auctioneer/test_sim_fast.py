"""The simulator's fast mode (symbolic signatures, shared task results) against full crypto.

The fast mode is only worth having if it simulates exactly what the nodes run:
the same outcome, digests, messages and wire sizes as the full run for the
same seed, and every deviation detected the same way, with the same culprits.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from peer.auctioneer.agreement import BidView
from peer.auctioneer.allocators import make_plan, shared_task_results
from peer.auctioneer.bids import sign_bid
from peer.auctioneer.deviations import DEVIATIONS, by_name
from peer.auctioneer.double import double_auction
from peer.auctioneer.effects import Aborted, Decided
from peer.auctioneer.scenario import make_instance
from peer.auctioneer.sim import run_round
from peer.auctioneer.symbolic import SymbolicSignatures, _token

DOUBLE = make_instance(11, 60, 8, "double")
STANDARD = make_instance(11, 14, 8, "standard")


def identity_of(instance):
    return {p.public_key: p for p in instance.providers}.__getitem__


def execs(instance, n):
    return sorted(p.public_key for p in instance.providers[:n])


def summary(result):
    """Everything a round decides, per provider, with no signature bytes in it."""
    out = {}
    for p, r in result.results.items():
        if isinstance(r, Decided):
            o = r.outcome.outcome
            out[p] = ("decided", o.digest(), o.vector_digest, o.coin, o.allocation, tuple(s for s, _ in r.outcome.signatures))
        elif isinstance(r, Aborted):
            out[p] = ("aborted", r.reason, r.culprits, r.proved)
        else:
            out[p] = None
    return out


@pytest.mark.parametrize(("instance", "executors", "k"), [
    (DOUBLE, 8, 3), (DOUBLE, 5, 2), (DOUBLE, 3, 1), (STANDARD, 8, 3), (STANDARD, 8, 1),
])
def test_the_fast_mode_decides_exactly_what_full_crypto_decides(instance, executors, k):
    full = run_round(instance, executors=executors, k=k, seed=5, wire=True, latency=0.001)
    fast = run_round(instance, executors=executors, k=k, seed=5, wire=True, latency=0.001, fast=True)
    assert summary(fast) == summary(full)
    assert len(full.decided()) == executors
    assert fast.client.settled() == full.client.settled() is not None
    # the same schedule (virtual time), the same messages, the same bytes on the wire
    assert (fast.makespan, fast.messages, fast.wire_bytes) == (full.makespan, full.messages, full.wire_bytes)
    assert not fast.rejected and not full.rejected


def test_the_headline_round_has_the_same_outcome_digest_in_both_modes():
    instance = make_instance(1, 1000, 8, "double")
    full = run_round(instance, executors=8, k=3, seed=1)
    fast = run_round(instance, executors=8, k=3, seed=1, fast=True)
    digests = {d.outcome.outcome.digest() for d in full.decided().values()}
    assert len(digests) == 1 and len(full.decided()) == 8
    assert {d.outcome.outcome.digest() for d in fast.decided().values()} == digests
    assert summary(fast) == summary(full)


def test_fast_outcomes_carry_symbolic_signatures_that_verify_only_under_their_round():
    fast = run_round(DOUBLE, executors=5, k=2, fast=True)
    providers = tuple(execs(DOUBLE, 5))
    signed = next(iter(fast.decided().values())).outcome
    with fast.checking():
        assert signed.problem(providers) is None
    assert signed.problem(providers) is not None  # not Ed25519 signatures: outside the round they mean nothing
    full = run_round(DOUBLE, executors=5, k=2)
    assert next(iter(full.decided().values())).outcome.problem(providers) is None


def test_a_symbolic_signature_cannot_be_forged_inside_the_simulator():
    scheme, other_scheme = SymbolicSignatures(), SymbolicSignatures()
    alice, bob = DOUBLE.users[0], DOUBLE.users[1]
    signer = scheme.signer(alice)
    token = signer.sign(b"pay bob 5")
    assert scheme.verify(alice.public_key, b"pay bob 5", token)
    assert not scheme.verify(alice.public_key, b"pay bob 6", token)  # another message
    assert not scheme.verify(bob.public_key, b"pay bob 5", token)  # another signer
    assert not other_scheme.verify(alice.public_key, b"pay bob 5", token)  # another round's scheme
    # the hash a token is made of, computed without the signer: not a signature
    assert not scheme.verify(alice.public_key, b"pay alice 5", _token(alice.public_key, b"pay alice 5"))
    # real Ed25519 signatures still count (deviations and test bids sign with real keys), forged ones do not
    assert scheme.verify(bob.public_key, b"hello", bob.sign(b"hello"))
    assert not scheme.verify(bob.public_key, b"hello", alice.sign(b"hello"))
    with pytest.raises(TypeError):
        scheme.signer(signer)  # a signer is made from the identity (its secret key) only


@pytest.mark.parametrize("name", DEVIATIONS)
@pytest.mark.parametrize(("instance", "executors", "k", "count"), [
    (DOUBLE, 5, 2, 1), (DOUBLE, 8, 3, 3), (STANDARD, 8, 1, 1), (STANDARD, 8, 3, 3),
])
def test_every_deviation_is_detected_the_same_way_in_the_fast_mode(name, instance, executors, k, count):
    deviants = execs(instance, executors)[:count]
    tamper = {p: by_name(name, identity_of(instance)) for p in deviants}
    full = run_round(instance, executors=executors, k=k, tamper=tamper, phase_timeout=2.0)
    fast = run_round(instance, executors=executors, k=k, tamper=tamper, phase_timeout=2.0, fast=True)
    assert summary(fast) == summary(full)
    honest = [r for p, r in fast.results.items() if p not in deviants]
    assert any(isinstance(r, Aborted) for r in honest), "the deviation must be noticed"
    assert [(p, r.reason) for p, r in fast.rejected] == [(p, r.reason) for p, r in full.rejected]


def test_equivocating_and_forged_client_bids_are_handled_the_same_in_the_fast_mode():
    user = DOUBLE.users[0]
    original = next(b for b in DOUBLE.bids if b.bidder == user.public_key)
    other = sign_bid(user, 1, original.side, original.value + 1, original.quantity)
    forged = dataclasses.replace(DOUBLE.bids[1], value=DOUBLE.bids[1].value + 1)  # signature of other content
    providers = execs(DOUBLE, 5)
    per_provider = {
        p: tuple(other if (b.bidder == user.public_key and i % 2) else forged if b == DOUBLE.bids[1] else b
                 for b in DOUBLE.bids)
        for i, p in enumerate(providers)
    }
    full = run_round(DOUBLE, executors=5, k=2, client_bids=per_provider)
    fast = run_round(DOUBLE, executors=5, k=2, client_bids=per_provider, fast=True)
    assert summary(fast) == summary(full)
    decided = fast.decided()
    assert len(decided) == 5 and all(user.public_key in d.vector.excluded for d in decided.values())
    assert all(forged.bidder not in {b.bidder for b in d.vector.bids} for d in decided.values())
    assert fast.client.rejected == full.client.rejected and fast.client.rejected


def test_the_fast_mode_cannot_time_providers_one_core_each():
    with pytest.raises(ValueError, match="fast mode"):
        run_round(DOUBLE, executors=3, k=1, fast=True, cpu_time=True)


def test_shared_task_results_are_keyed_by_every_input():
    view = BidView(1)
    for bid in DOUBLE.bids:
        view.add(bid)
    vector = view.vector()
    coins = [hashlib.sha256(bytes([i])).digest() for i in range(3)]
    providers = execs(DOUBLE, 3)
    with shared_task_results():
        shared = [make_plan("double", vector, c, providers, 1).finish({}) for c in coins for _ in range(2)]
    assert shared == [double_auction(vector.bids, c) for c in coins for _ in range(2)]
    assert len(set(shared)) == 3  # a result is never handed to a different coin
