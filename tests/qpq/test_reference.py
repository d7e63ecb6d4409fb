"""k = 1 is plain QPQ: the paper's Table 1, written out independently with scipy's kstest."""

from __future__ import annotations

from scipy.stats import kstest

from peer.qpq.commit import derive_nonce, replacement_value, sim_secret, transcript_hash
from peer.qpq.fast import run_fast
from peer.qpq.fixed import ONE
from peer.qpq.gof import GofConfig
from peer.qpq.setup import preference_block
from ._helpers import setup


def plain_qpq(s, rounds: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Table 1: every player tests everyone's history + new value, replaces failures, arg max wins."""
    gof = s.config.gof
    players = list(s.membership.nodes)
    history: dict[str, list[int]] = {p: [] for p in players}
    prefs = preference_block(s, 0, rounds)
    secrets = {p: sim_secret(s.seed, p) for p in players}
    winners = []
    for r in range(rounds):
        declared = {p: s.profile(p).declare(int(prefs[i, r]), secrets[p], s.stream, r) for i, p in enumerate(players)}
        nonces = {p: derive_nonce(secrets[p], s.stream, r, 1) for p in players}
        transcript = transcript_hash(s.stream, r, 1, s.membership.ids[0], players, players,
                                     [declared[p] for p in players], [nonces[p] for p in players], [1] * len(players))
        used = {}
        for p in players:
            window = history[p][-gof.window:]
            fails = len(history[p]) >= gof.min_history and kstest(
                [v / ONE for v in window + [declared[p]]], "uniform").pvalue < gof.threshold
            used[p] = replacement_value(transcript, p) if fails else declared[p]
            history[p].append(declared[p])
        winners.append(max(players, key=lambda p: used[p]))
    return winners


def test_k1_is_plain_qpq() -> None:
    s = setup(n=6, k=1, rounds=250, gof=GofConfig(window=40, threshold=0.05, min_history=8),
              profiles={"p0": "beta_cheater(2)", "p3": "uniform_liar"})
    run = run_fast(s)
    assert run.winners == plain_qpq(s, 250)
    assert sum(run.replaced.values()) > 50  # the test really bit, so the comparison covered replacements
