"""Verifiable coins (peer.sra.coins): the parent choice follows a coin the node cannot choose.

The coin is the node's deterministic Ed25519 signature over the auction id; a
parent checks the coin on the Bid and that it ranks first on the listed
inviters, and a declined inviter checks that the coin ranks the named parent
before it.  The simulator's keys are derived from node names.
"""

from __future__ import annotations

import dataclasses

import pytest

from peer.reference.replay import replay_run
from peer.scenario.model import explicit_scenario
from peer.sim.run import default_config, simulate
from peer.sra.coin_keys import SimulatedKeys
from peer.sra.coins import choose_parent, coin_message, outranks, parent_purpose
from peer.sra.effects import Send
from peer.sra.machine import Behaviour, NodeStage, SraConfig, SraNode
from peer.sra.messages import Bid, CoinBid, CoinDecline, Decline
from tests.sra.test_machine import AUCTION, INVITE, ITEM, REPLY, WINDOW, assert_rejected

CONFIG = SraConfig(gather_window=WINDOW, reply_timeout=REPLY, verifiable_coins=True)
INVITERS = ["p", "q", "r"]


def coin_of(node: str) -> bytes:
    return SimulatedKeys(node).sign(coin_message(AUCTION, parent_purpose()))


def node(node_id: str, neighbours: list[str], behaviour: Behaviour = Behaviour(), value: int = 4) -> SraNode:
    return SraNode(node_id, neighbours, value, auction=AUCTION, seed=0, seller="s", item=ITEM, config=CONFIG,
                   behaviour=behaviour)


def reported_with(behaviour: Behaviour = Behaviour()) -> list[Send]:
    """d, invited by p, q and r and with no one else to invite, reports at once."""
    d = node("d", INVITERS, behaviour)
    for inviter in INVITERS:
        d.receive(inviter, INVITE, 1.0)
    effects = d.on_timer(1.0 + WINDOW)
    assert d.stage is NodeStage.REPORTED
    return [e for e in effects if isinstance(e, Send)]


def aggregating_inviter(name: str) -> SraNode:
    """Inviter ``name`` (itself invited by s) waiting for d's stage-2 reply."""
    m = node(name, ["s", "d"])
    m.receive("s", INVITE, 1.0)
    m.on_timer(1.0 + WINDOW)
    assert m.stage is NodeStage.AGGREGATING
    return m


def test_the_coin_is_deterministic_and_the_honest_report_follows_it() -> None:
    coin = coin_of("d")
    assert coin == coin_of("d") and len(coin) == 64
    parent = choose_parent(coin, INVITERS)
    sends = reported_with()
    assert sends == [Send(parent, CoinBid(auction=AUCTION, amount=4, coin=coin, inviters=tuple(INVITERS)))] + [
        Send(i, CoinDecline(auction=AUCTION, coin=coin, parent=parent)) for i in INVITERS if i != parent
    ]


def test_the_parent_accepts_the_honest_bid_and_refuses_a_bid_its_coin_does_not_back() -> None:
    coin = coin_of("d")
    parent = choose_parent(coin, INVITERS)
    other = next(i for i in INVITERS if i != parent)
    m = aggregating_inviter(parent)
    honest = CoinBid(auction=AUCTION, amount=4, coin=coin, inviters=tuple(INVITERS))
    assert "without a coin" in assert_rejected(m, "d", Bid(auction=AUCTION, amount=4)).reason
    forged = dataclasses.replace(honest, coin=coin_of("e"))
    assert "not the sender's signature" in assert_rejected(m, "d", forged).reason
    assert "does not follow" in assert_rejected(m, "d", dataclasses.replace(honest, inviters=(other,))).reason
    m.receive("d", honest, 2.0)
    assert m.children == {"d": 4}
    # The inviter the coin does not pick refuses the same Bid.
    o = aggregating_inviter(other)
    assert "does not follow" in assert_rejected(o, "d", honest).reason


def test_a_declined_inviter_checks_that_the_coin_ranks_the_named_parent_first() -> None:
    coin = coin_of("d")
    ranked = sorted(INVITERS, key=lambda i: [outranks(coin, j, i) for j in INVITERS].count(True))
    first, second, third = ranked
    m = aggregating_inviter(second)
    assert "ranks after" in assert_rejected(m, "d", CoinDecline(auction=AUCTION, coin=coin, parent=third)).reason
    assert "without a coin" in assert_rejected(m, "d", Decline(auction=AUCTION)).reason
    # "Your invitation came late" is no cover: an honest invitee never answers an invitation late.
    assert "names no parent" in assert_rejected(m, "d", CoinDecline(auction=AUCTION, coin=coin, parent="")).reason
    m.receive("d", CoinDecline(auction=AUCTION, coin=coin, parent=first), 2.0)
    assert m.declined == {"d"}


@pytest.mark.parametrize("cover", ["omit", "silent"])
def test_a_node_that_chooses_its_parent_must_drop_the_inviters_its_coin_ranks_first(cover: str) -> None:
    coin = coin_of("d")
    honest_parent = choose_parent(coin, INVITERS)
    chosen = next(i for i in sorted(INVITERS, reverse=True) if i != honest_parent)
    ahead = {i for i in INVITERS if outranks(coin, i, chosen)}
    assert honest_parent in ahead
    sends = reported_with(Behaviour(parent=chosen, coin_cover=cover))
    bid = next(s.msg for s in sends if s.to == chosen)
    assert isinstance(bid, CoinBid) and set(bid.inviters) == set(INVITERS) - ahead
    aggregating_inviter(chosen).receive("d", bid, 2.0)  # the chosen parent cannot tell
    to_ahead = [s for s in sends if s.to in ahead]
    if cover == "silent":
        assert to_ahead == []  # it sits out the local auctions of those inviters
    else:
        for send in to_ahead:  # each of them refuses the Decline: the lie is evidence
            assert "ranks after" in assert_rejected(aggregating_inviter(send.to), "d", send.msg).reason


def test_naive_parent_choice_is_refused_by_the_chosen_parent() -> None:
    coin = coin_of("d")
    chosen = next(i for i in INVITERS if i != choose_parent(coin, INVITERS))
    sends = reported_with(Behaviour(parent=chosen))
    bid = next(s.msg for s in sends if s.to == chosen)
    assert "does not follow" in assert_rejected(aggregating_inviter(chosen), "d", bid).reason


def test_whole_runs_with_verifiable_coins_complete_and_match_the_replay() -> None:
    edges = [("s", "a"), ("s", "b"), ("a", "c"), ("b", "c"), ("a", "b"), ("c", "d"), ("b", "d")]
    values = {"s": 0, "a": 3, "b": 5, "c": 7, "d": 7}
    scenario = explicit_scenario(edges, values, seller="s", seed=1)
    for seed in range(6):
        config = dataclasses.replace(default_config(scenario, "rounds", None), verifiable_coins=True)
        result, network = simulate(scenario, seed=seed, config=config)
        assert result.extra["status"] == "completed"
        assert replay_run(result, values).hops == result.hops
        for name, machine in network.machines.items():
            if len(machine.inviters) > 1:
                coin = SimulatedKeys(name).sign(coin_message(machine.auction, parent_purpose()))
                assert machine.parents == [choose_parent(coin, sorted(machine.inviters))]
