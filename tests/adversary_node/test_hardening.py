"""Node-level hardening (issue #15): each attack here worked against the node before its fix."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from peer.ledger import Announcement, Entries
from peer.ledger.store import StoreError
from peer.net.websocket import MemoryHub
from peer.node import ledger_io as node_module
from peer.node.node import SellError
from peer.sra.ids import derive_auction_id
from tests.adversary_node import fleet as F
from tests.node.live import M, make_node, make_nodes, running, sell, wait_everywhere

HONEST_HOPS = [("s", "b", 3 * M), ("b", "c", 6 * M), ("c", "e", 6 * M)]


async def test_a_settlement_matching_the_ledger_head_but_not_signed_by_its_winner_is_refused(
        tmp_path: Path) -> None:
    # #15.5: d, invited, floods "the seller keeps it, 0 hops, price 0".  It agrees with every
    # still-empty ledger copy, so before Settled was signed it ended the live auction
    # everywhere.  Only the winner (here the seller) can sign it; d cannot.
    fleet = F.build(F.scenario(), tmp_path, {"d": "false-settle-head"})
    report = await F.run(fleet)
    assert fleet.nodes["d"].evidence["false settlements"] > 0  # type: ignore[attr-defined]
    assert report.outcome == "completed" and report.hops == HONEST_HOPS
    assert report.refusals_of("not signed by the winner")
    assert all(report.winners[n] == "e" for n in report.winners)


def _frozen_clock():  # type: ignore[no-untyped-def]
    now = time.time()  # real time (gossip expiry is checked against it), but no longer moving
    return lambda: now


async def test_an_auction_id_announced_first_by_a_neighbour_is_refused_and_the_seller_sells(
        tmp_path: Path) -> None:
    # #15.2: m announces, validly signed as its own sale, the id s is about to use.  Before,
    # every node kept m's announcement and s crashed at start ("auction id already announced
    # by another seller").  Ids now carry the seller's key prefix; m's claim is refused.
    hub = MemoryHub()
    nodes = make_nodes([("s", "m"), ("s", "b"), ("m", "b")], {"b": 5 * M}, tmp_path, hub)
    s, m = nodes["s"], nodes["m"]
    s.wallclock = _frozen_clock()  # a predictable id, as the attacker would guess it
    created = int(s.wallclock() * 1000)
    target = derive_auction_id(s.me, "lamp", created)
    async with running(nodes):
        squat = Announcement.create(m.identity, auction=target, item="lamp", created_at_ms=created)
        m.publish(Entries((squat,)))
        await trio.sleep(0.5)
        auction = await sell(s, "lamp")
        assert auction == target
        await wait_everywhere(nodes, auction)
    for name in ("s", "b"):
        assert nodes[name].store.chain(target) is not None, (name, [c.auction for c in nodes[name].store.chains()])
        assert nodes[name].store.chain(target).announcement.seller == s.me  # type: ignore[union-attr]
        assert [o["outcome"] for o in nodes[name].outcomes] == ["completed"]
    assert nodes["b"].outcomes[0]["winner"] == nodes["b"].me


async def test_a_failed_start_is_an_error_line_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = MemoryHub()
    seller = make_node("s", [], 0, tmp_path, hub, sell="lamp", exit_when_done=True, done_grace=0.0)

    def full(announcement: object) -> bool:
        raise StoreError("No space left on device")

    monkeypatch.setattr(seller.store, "append_announcement", full)
    with trio.fail_after(10):
        await seller.run()  # returns: done, with the reason; no exception
    assert seller.start_error is not None and "No space left on device" in seller.start_error
    assert seller.machine is None


async def test_a_node_that_cannot_persist_declines_and_recovers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # #15.4: c's disk is full.  Before, a StoreError from an append ended the node, and a
    # failed merge made it refuse the next Invite with an abuse point on its sender.  Now it
    # declines to take part (no blame), refuses local sales with the reason, never floods a
    # signature it could not persist, and takes part again once the ledger is writable.
    monkeypatch.setattr(node_module, "PROBE_INTERVAL", 0.2)
    nodes = make_nodes([("a", "b"), ("b", "c"), ("a", "c")], {"b": 2 * M, "c": 7 * M}, tmp_path, MemoryHub())
    c = nodes["c"]
    disk_full = StoreError("No space left on device")
    failing = {"on": True}
    probe_dir = c.data_dir

    def merge(entries: object, **options: object) -> object:  # options: vouched_by (#16.1)
        raise disk_full

    def append(entry: object) -> bool:
        raise disk_full

    monkeypatch.setattr(c.store, "merge", merge)
    monkeypatch.setattr(c.store, "append", append)
    real_open = node_module.LedgerStore.open_data_dir

    def reopen(data_dir: Path, **kw: object) -> object:
        if failing["on"] and Path(data_dir) == probe_dir:
            raise StoreError("still full")
        return real_open(data_dir, **kw)

    monkeypatch.setattr(node_module.LedgerStore, "open_data_dir", reopen)
    async with running(nodes):
        lamp = await sell(nodes["a"], "lamp")
        await wait_everywhere(nodes, lamp)
        assert c.store_failure is not None and c.refused_invites >= 1
        with pytest.raises(SellError, match="ledger cannot be written"):
            await sell(c, "vase")
        failing["on"] = False  # space is back: the next probe reopens the ledger
        while c.store_failure is not None:
            await trio.sleep(0.05)
        book = await sell(nodes["b"], "book")
        await wait_everywhere(nodes, book)
    assert [o["outcome"] for o in nodes["a"].outcomes] == ["completed", "completed"]
    assert nodes["a"].outcomes[0]["winner"] == nodes["b"].me  # c sat the lamp out
    assert [o["auction"] for o in c.outcomes] == [book]
    assert c.outcomes[0]["winner"] == c.me and c.internal_errors == 0
    abuse = sum(s.bad_by_kind.get("app", 0) for n in nodes.values() for s in n.manager.snapshot().values())
    assert abuse == 0
