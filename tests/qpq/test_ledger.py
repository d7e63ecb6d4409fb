"""Allocation entries: identical across nodes, signed, chained."""

from __future__ import annotations

from dataclasses import replace

from nacl.signing import SigningKey

from peer.qpq.fast import run_fast
from peer.qpq.ledger import sign_allocation, stream_genesis, verify_allocation, verify_allocation_chain
from ._helpers import setup


def test_sign_verify_and_chain() -> None:
    s = setup(8, 2, rounds=12)
    run = run_fast(s)
    genesis = stream_genesis(s.stream, s.membership.digest)
    assert verify_allocation_chain(genesis, run.entries) is None
    key = SigningKey(bytes(32))
    signed = sign_allocation(key, run.entries[3])
    assert verify_allocation(signed)
    forged = replace(signed, entry=replace(run.entries[3], winner="p7" if run.entries[3].winner != "p7" else "p6"))
    assert not verify_allocation(forged)
    broken = list(run.entries)
    broken[5] = replace(broken[5], value=broken[5].value ^ 1)
    assert verify_allocation_chain(genesis, broken) == "round 6 does not chain to the entry before it"
    assert verify_allocation_chain(genesis, run.entries[1:]) == "entry 0 is for round 1"
