"""QpqNode: rounds with honest, silent, late and lying members; rejected input leaves state unchanged."""

from __future__ import annotations

import copy

import pytest

from peer.errors import LocalProtocolError, RemoteProtocolError
from peer.qpq.clusters import chunk_membership
from peer.qpq.commit import sim_secret
from peer.qpq.decide import Fault, Level
from peer.qpq.effects import Broadcast, Decided, Flag, Record, RoundDone
from peer.qpq.fixed import ONE
from peer.qpq.ledger import stream_genesis, verify_allocation_chain
from peer.qpq.machine import QpqNode
from peer.qpq.messages import Commit, Reveal
from peer.qpq.router import Router, run_machines
from ._helpers import ids, setup


def _flags(run, reason: str) -> set[tuple[int, int, str]]:  # type: ignore[no-untyped-def]
    return {(r, lvl, m) for r, lvl, m, why in run.flags if why == reason}


def test_honest_round_every_node_records_the_same_chain() -> None:
    s = setup(9, 3, rounds=30)
    router = Router(s)
    run = router.run_rounds(30)
    assert run.disagreements == 0 and not run.rejected
    assert all(run.winners)
    genesis = stream_genesis(s.stream, s.membership.digest)
    assert verify_allocation_chain(genesis, run.entries) is None
    heads = {m.head for m in router.machines.values()}
    assert heads == {run.entries[-1].hash}


def test_replacement_is_the_same_on_every_member() -> None:
    # A cheater that fails the test: every member of its cluster computes the same replacement,
    # and every node the same winner level; the histories stay equal too.
    s = setup(8, 2, rounds=40, profiles={"p0": "beta_cheater(30)"})
    router = Router(s)
    run = router.run_rounds(40)
    assert run.replaced["p0"] > 20
    m = s.membership
    for cid, members in m.clusters.items():
        for r in range(40):
            seen = {next(d.result for d in router.decisions[x] if d.round == r and d.result.level is Level.CLUSTER)
                    for x in members}
            assert len(seen) == 1
        assert len({router.machines[x].cluster_history.digest() for x in members}) == 1
    assert len({mc.winner_history.digest() for mc in router.machines.values()}) == 1


def test_silent_member_forfeits_is_flagged_and_the_round_completes() -> None:
    s = setup(8, 2, rounds=20, profiles={"p1": "silent"})
    run = run_machines(s)
    assert run.disagreements == 0 and len(run.entries) == 20
    assert "p1" not in run.winners
    assert _flags(run, "missing_reveal") == {(r, int(Level.CLUSTER), "p1") for r in range(20)}


def test_absent_member_is_flagged_missing_commit() -> None:
    s = setup(8, 2, rounds=10, profiles={"p5": "absent"})
    run = run_machines(s)
    assert run.disagreements == 0 and "p5" not in run.winners
    assert _flags(run, "missing_commit") == {(r, int(Level.CLUSTER), "p5") for r in range(10)}


def test_reveal_not_matching_its_commitment_is_replaced_and_flagged() -> None:
    # "mismatch" reveals the top value instead of the one it committed to: it would always win if believed.
    s = setup(8, 2, rounds=20, profiles={"p2": "mismatch"})
    run = run_machines(s)
    assert run.disagreements == 0 and len(run.entries) == 20
    assert "p2" not in run.winners
    assert _flags(run, "bad_reveal") == {(r, int(Level.CLUSTER), "p2") for r in range(20)}


def test_late_reveal_is_ignored_flagged_and_the_round_completes() -> None:
    s = setup(8, 2, rounds=10)
    router = Router(s, extra_delay={"p3": 2.5})
    run = router.run_rounds(10)
    # p3 cannot know it is late: it counts its own value and, when that makes it its cluster's
    # winner, claims; the real winner claims too, and every node sees both (the winner-commit
    # phase runs to its deadline): the cluster forfeits alike everywhere.
    assert run.disagreements == 0 and len(run.entries) == 10
    assert "p3" not in run.winners
    assert "p3" in {m for _, _, m in _flags(run, "false_claim")}  # (p3, out of step, flags others too)
    assert _flags(run, "missing_reveal") == {(r, int(Level.CLUSTER), "p3") for r in range(10)}
    late = _flags(run, "late")
    assert {m for _, _, m in late} == {"p3"} and len(late) >= 8  # the last ones may land after the run


def test_a_whole_silent_cluster_has_no_claim() -> None:
    s = setup(6, 2, rounds=5, profiles={x: "silent" for x in ids(6)[:3]})
    run = run_machines(s)
    assert run.disagreements == 0
    assert all(w in ids(6)[3:] for w in run.winners)
    assert _flags(run, "no_claim") == {(r, int(Level.WINNER), "c0") for r in range(5)}


# ------------------------------------------------------------- one machine by hand

def _node(n: int = 4, k: int = 2) -> QpqNode:
    m = chunk_membership(ids(n), k)
    return QpqNode("p0", m, stream="s", secret=sim_secret(1, "p0"))


def _state(node: QpqNode) -> object:
    return copy.deepcopy((node._rounds, node.finished, node.head, node.cluster_history.digest()))


@pytest.mark.parametrize(
    ("sender", "msg"),
    [
        ("p1", Commit(stream="other", round=0, level=Level.CLUSTER, digest=bytes(32))),  # wrong stream
        ("zz", Commit(stream="s", round=0, level=Level.CLUSTER, digest=bytes(32))),  # not a member
        ("p0", Commit(stream="s", round=0, level=Level.CLUSTER, digest=bytes(32))),  # myself
        ("p2", Commit(stream="s", round=0, level=Level.CLUSTER, digest=bytes(32))),  # other cluster, cluster level
        ("p1", Commit(stream="s", round=5, level=Level.CLUSTER, digest=bytes(32))),  # round far ahead
        ("p1", Commit(stream="s", round=0, level=Level.CLUSTER, digest=b"short")),
        ("p1", Commit(stream="s", round=0, level=Level.CLUSTER, digest=bytes(32), support=3)),
        ("p2", Commit(stream="s", round=0, level=Level.WINNER, digest=bytes(32), support=9)),  # support > size
        ("p1", Reveal(stream="s", round=0, level=Level.CLUSTER, value=ONE, nonce=bytes(16))),  # out of range
        ("p1", Reveal(stream="s", round=0, level=Level.CLUSTER, value=1, nonce=bytes(3))),
    ],
)
def test_rejected_input_raises_and_changes_nothing(sender: str, msg: object) -> None:
    node = _node()
    node.start_round(0, ONE // 2, 0.0)
    before = _state(node)
    with pytest.raises(RemoteProtocolError):
        node.receive(sender, msg, 0.1)  # type: ignore[arg-type]
    assert _state(node) == before


def test_a_second_different_commitment_is_rejected() -> None:
    node = _node()
    node.receive("p1", Commit(stream="s", round=0, level=Level.CLUSTER, digest=bytes(32)), 0.0)
    assert node.receive("p1", Commit(stream="s", round=0, level=Level.CLUSTER, digest=bytes(32)), 0.0) == []
    before = _state(node)
    with pytest.raises(RemoteProtocolError, match="second"):
        node.receive("p1", Commit(stream="s", round=0, level=Level.CLUSTER, digest=b"\x01" * 32), 0.0)
    assert _state(node) == before


def test_start_round_order_is_enforced() -> None:
    node = _node()
    with pytest.raises(LocalProtocolError):
        node.start_round(1, 5, 0.0)
    node.start_round(0, 5, 0.0)
    with pytest.raises(LocalProtocolError):
        node.start_round(0, 5, 0.0)


def test_deadlines_drive_a_round_with_silent_peers_to_its_end() -> None:
    # p0 alone hears nothing: at the commit deadline it reveals and (everyone who committed having
    # revealed) decides its cluster alone and claims; at the winner-commit deadline it reveals and
    # allocates to itself, the other cluster flagged no_claim.
    node = _node()
    effects = node.start_round(0, ONE // 3, 0.0)
    assert isinstance(effects[0], Broadcast) and effects[0].recipients == ("p1",)
    assert node.next_deadline() == 1.0 and node.on_timer(0.5) == []
    effects = node.on_timer(1.0)
    assert any(isinstance(e, Broadcast) and isinstance(e.msg, Reveal) for e in effects)
    decided = [e for e in effects if isinstance(e, Decided)]
    assert decided and decided[0].result.winner_entrant == "p0"
    assert Flag(0, Level.CLUSTER, "p1", Fault.MISSING_COMMIT) in effects
    commit = next(e for e in effects if isinstance(e, Broadcast) and isinstance(e.msg, Commit) and e.scope == "all")
    assert commit.msg.support == 1 and commit.recipients == ("p1", "p2", "p3")
    assert node.next_deadline() == 3.0
    effects = node.on_timer(3.0)
    assert RoundDone(0, "p0") in effects and any(isinstance(e, Record) for e in effects)
    assert Flag(0, Level.WINNER, "c1", Fault.NO_CLAIM) in effects
    assert node.finished == 0 and node.next_deadline() is None
    # A message for the finished round is late: flagged once, ignored.
    late = Reveal(stream="s", round=0, level=Level.CLUSTER, value=1, nonce=bytes(16))
    assert node.receive("p1", late, 5.0) == [Flag(0, Level.CLUSTER, "p1", Fault.LATE)]
    assert node.receive("p1", late, 5.1) == []


def test_single_level_round_ends_after_the_cluster_level() -> None:
    s = setup(5, 1, rounds=5)
    router = Router(s)
    run = router.run_rounds(5)
    assert run.disagreements == 0
    assert all(d.result.level is Level.CLUSTER for ds in router.decisions.values() for d in ds)
    assert all(mc.finished == 4 and mc.next_deadline() is None for mc in router.machines.values())
    assert run.traffic.frames["winner/commit"] == 0
