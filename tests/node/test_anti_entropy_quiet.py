"""The periodic anti-entropy offer is skipped while the ledger is unchanged (it costs every
neighbour work in proportion to the ledger); link-ups and changes still offer at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from peer.net.websocket import MemoryHub
from peer.node.recovery import QUIET_REFRESH, SUMMARY_INTERVAL
from tests.ledger._helpers import make_chain
from tests.node.live import M, make_node
from tests.node.test_node_ledger_wiring import fill


def test_periodic_offers_only_after_a_change_or_a_quiet_refresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chains = [make_chain(f"c-{i}", hops=1, seller=i) for i in range(3)]
    fill(tmp_path / "x", chains[:2], monkeypatch)
    node = make_node("x", ["y"], M, tmp_path, MemoryHub(), log_json=None)
    sent: list[object] = []
    monkeypatch.setattr(node, "publish_scoped", sent.append)
    try:
        node.catchup.exchange(0.0)  # a link-up: always
        assert len(sent) == 1
        node.catchup.periodic(SUMMARY_INTERVAL)  # each state is offered in two periods (a cooldown may eat one)
        assert len(sent) == 2
        node.catchup.periodic(2 * SUMMARY_INTERVAL)  # then, unchanged, our last offer stands
        node.catchup.periodic(3 * SUMMARY_INTERVAL)
        assert len(sent) == 2 and node.catchup.next_exchange == 4 * SUMMARY_INTERVAL
        for entry in chains[2].entries:  # the ledger grew: the next periods offer
            assert node.store.append(entry)
        node.catchup.periodic(4 * SUMMARY_INTERVAL)
        node.catchup.periodic(5 * SUMMARY_INTERVAL)
        assert len(sent) == 4
        node.catchup.periodic(6 * SUMMARY_INTERVAL)
        assert len(sent) == 4
        node.catchup.periodic((5 + QUIET_REFRESH) * SUMMARY_INTERVAL)  # unchanged, but offered again now and then
        assert len(sent) == 5
        node.catchup.exchange((5 + QUIET_REFRESH) * SUMMARY_INTERVAL + 1)  # a link-up offers even unchanged
        assert len(sent) == 6
    finally:
        node.store.close()
        node.log.close()


def test_an_empty_ledger_offers_nothing_until_a_chain_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every link-up offers to every linked neighbour: at a launch, with every ledger empty, those
    # empty offers cost hubs a fifth of their start-up CPU.  A neighbour with chains offers them
    # itself (test_node_lives' late joiner catches up so), so an empty offer carries nothing.
    node = make_node("x", ["y"], M, tmp_path, MemoryHub(), log_json=None)
    sent: list[object] = []
    monkeypatch.setattr(node, "publish_scoped", sent.append)
    try:
        node.catchup.exchange(0.0)
        node.catchup.periodic(SUMMARY_INTERVAL)
        assert sent == []
        announcement = make_chain("c-0", hops=0, seller=1)  # an announcement only: not synced either
        for entry in announcement.entries:
            assert node.store.append(entry)
        node.catchup.exchange(2 * SUMMARY_INTERVAL)
        assert sent == []
        for entry in make_chain("c-1", hops=1, seller=2).entries:  # a chain that started: offered
            assert node.store.append(entry)
        node.catchup.exchange(3 * SUMMARY_INTERVAL)
        assert len(sent) == 1
    finally:
        node.store.close()
        node.log.close()


def test_an_answer_goes_to_the_asker_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A neighbour that lacks our chains (a late joiner: empty summaries covering every bucket)
    # gets them on its own link.  Sending the answer to every neighbour made a hub send its whole
    # ledger to each of them whenever one joined; the others ask for themselves.
    from peer.ledger.codec import Summaries
    from peer.ledger.reconcile import BUCKETS
    from peer.node.recovery import SUMMARY_TOPIC
    from tests.node.live import ident

    chains = [make_chain(f"c-{i}", hops=1, seller=i) for i in range(3)]
    fill(tmp_path / "x", chains, monkeypatch)
    node = make_node("x", ["y", "z"], M, tmp_path, MemoryHub(), log_json=None)
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(node, "_send", lambda to, env, priority: sent.append((to, env.topic)))
    try:
        asker = ident("y").public_key
        node.catchup.answer_summaries(asker, Summaries((), tuple(range(BUCKETS))), 100.0)
        assert sent and {to for to, _ in sent} == {asker.hex()} and {t for _, t in sent} == {SUMMARY_TOPIC}
        sent.clear()
        node.catchup.exchange(200.0)  # our own offer still goes to every neighbour
        assert {to for to, _ in sent} == {ident("y").public_key.hex(), ident("z").public_key.hex()}
    finally:
        node.store.close()
        node.log.close()
