"""A fixed-seed run gives the same result, ledger and event trace as before the speed work.

The expected digests were recorded by running main's simulator (commit 9a7fc09,
before any of the speed changes) on these exact scenarios; see
:mod:`tests.sim.fingerprint` for what each digest covers.  If a change to the
simulator or the machines alters one, the change altered a run: not allowed for
a speed change.
"""

from __future__ import annotations

import pytest

from peer.sim.chaos import ChaosConfig
from peer.sim.run import simulate
from tests.sim.fingerprint import ba_scenario, fingerprint, with_faults

RECORDED = {
    "rounds": ("480c66e339ca79869017229e", "82d143b12fdcb93d6d345787"),
    "async": ("ff771bbc37649acb3467c58b", "250818fbb47ac069f2d5948e"),
    "paper-rule": ("57ee05a622c4555cd7ea57aa", "c8a799d12b04256e6b3694b5"),
    "async-chaos": ("b55f891098d13fd19af2e323", "4cecea7a94f553c04223aec7"),
    "faults": ("38821d3fb49f6b1b0a27355a", "6f1c92a44956900a07cba094"),
    "async-faults-chaos": ("e83e3478d2d4884ba5e2538a", "fd69bf97e83ed92c488ce867"),
}

CASES = {
    "rounds": {},
    "async": {"mode": "async"},
    "paper-rule": {"guarded": False},
    "async-chaos": {"mode": "async", "chaos": ChaosConfig(drop=0.02, dup=0.05, delay=0.3, reorder=0.05)},
    "faults": {"faults": True},
    "async-faults-chaos": {"mode": "async", "faults": True,
                           "chaos": ChaosConfig(drop=0.01, dup=0.02, reorder=0.02)},
}


@pytest.fixture(scope="module")
def ba2000():  # type: ignore[no-untyped-def]
    return ba_scenario(2000)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_2000_node_run_is_bit_identical_to_main(case: str, ba2000) -> None:  # type: ignore[no-untyped-def]
    kwargs = dict(CASES[case])
    scenario = with_faults(ba2000) if kwargs.pop("faults", False) else ba2000
    result, network = simulate(scenario, **kwargs)
    got = fingerprint(result, network)
    assert (got["outcome"], got["trace"]) == RECORDED[case]
