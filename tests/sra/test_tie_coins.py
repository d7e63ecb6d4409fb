"""Verifiable host tie-breaks (peer.sra.coins): a tie goes where the host's coin for the hop says.

Under ``SraConfig.verifiable_coins`` a host breaks a tie for first place by its
deterministic Ed25519 signature over (auction, "tie/<hop>"), and its Offer
(guarded resale) or Award (the paper's rule) carries that coin and the tied
bidders.  The buyer checks the coin and that it picks the buyer among them,
and refuses the sale otherwise, leaving its state untouched.  The simulator's
keys are derived from node names, so these tests can sign as any node.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer.reference.replay import replay_run
from peer.scenario.model import explicit_scenario
from peer.sim.run import default_config, simulate
from peer.sra.coin_keys import SimulatedKeys
from peer.sra.coins import coin_message, parent_purpose, tie_purpose, tie_winner
from peer.sra.effects import Send
from peer.sra.ledger_entry import HopEntry
from peer.sra.local_auction import run_local_auction, tie_break_rng
from peer.sra.machine import NodeStage, SraConfig, SraNode
from peer.sra.messages import Award, Bid, CoinBid, ContextBid, Offer, Open, Refuse
from tests.sra.test_machine import AUCTION, CONFIRM, CONTEXT, GENESIS, INVITE, ITEM, MARGIN, REPLY, WINDOW, assert_rejected

TIED = ("a", "b")


def config(*, guarded: bool, coins: bool = True) -> SraConfig:
    return SraConfig(gather_window=WINDOW, reply_timeout=REPLY, context_timeout=CONTEXT, margin=MARGIN,
                     guarded=guarded, confirm_timeout=CONFIRM, verifiable_coins=coins)


def sign(node: str, auction: str, purpose: str) -> bytes:
    return SimulatedKeys(node).sign(coin_message(auction, purpose))


def tie_coin(host: str = "s", hop: int = 1, auction: str = AUCTION) -> bytes:
    return sign(host, auction, tie_purpose(hop))


def coin_bid(node: str, amount: int) -> CoinBid:
    """``node``'s stage-2 Bid to the seller, its only inviter."""
    return CoinBid(auction=AUCTION, amount=amount, coin=sign(node, AUCTION, parent_purpose()), inviters=("s",))


def seller_with_tie(*, guarded: bool, coins: bool = True) -> tuple[SraNode, list]:
    """The seller hosting hop 1 with a and b tied at 7 and c at 3; the effects of the last context bid."""
    s = SraNode("s", ["a", "b", "c"], 0, auction=AUCTION, seed=0, seller="s", item=ITEM,
                config=config(guarded=guarded, coins=coins))
    s.start(0.0)
    for child, amount in (("a", 7), ("b", 7), ("c", 3)):
        s.receive(child, coin_bid(child, amount) if coins else Bid(auction=AUCTION, amount=amount), 2.0)
    assert s.stage is NodeStage.HOSTING
    s.receive("a", ContextBid(auction=AUCTION, hop=1, amount=7), 3.0)
    s.receive("c", ContextBid(auction=AUCTION, hop=1, amount=3), 3.0)
    return s, s.receive("b", ContextBid(auction=AUCTION, hop=1, amount=7), 3.0)


def bidder(name: str, *, guarded: bool, amount: int = 7, coins: bool = True) -> SraNode:
    """``name`` (value ``amount``, no neighbour but s) invited by s, opened hop 1 and bid ``amount`` in it."""
    m = SraNode(name, ["s"], amount, auction=AUCTION, seed=0, seller="s", item=ITEM,
                config=config(guarded=guarded, coins=coins))
    m.receive("s", INVITE, 1.0)
    m.on_timer(1.0 + WINDOW)
    assert m.stage is NodeStage.REPORTED
    effects = m.receive("s", Open(auction=AUCTION, hop=1, reserve=0, prev=GENESIS), 2.5)
    assert effects == [Send("s", ContextBid(auction=AUCTION, hop=1, amount=amount))]
    return m


def sale(buyer: str, *, guarded: bool, price: int = 7, coin: bytes = b"", tied: tuple[str, ...] = ()) -> Offer | Award:
    entry = HopEntry(auction=AUCTION, hop=1, seller="s", buyer=buyer, price=price, prev=GENESIS)
    if guarded:
        return Offer(auction=AUCTION, hop=1, price=price, entry=entry.hash, budget=30.0, tie_coin=coin, tied=tied)
    return Award(auction=AUCTION, hop=1, price=price, entry=entry.hash, tie_coin=coin, tied=tied)


# ------------------------------------------------------------------ the host's side


def test_the_host_gives_the_tie_to_its_coins_pick_and_says_so_on_the_offer() -> None:
    coin = tie_coin()
    winner = tie_winner(coin, TIED)
    for guarded in (True, False):
        s, effects = seller_with_tie(guarded=guarded)
        sent = [e.msg for e in effects if isinstance(e, Send)]
        kind = Offer if guarded else Award
        (msg,) = [m for m in sent if isinstance(m, kind)]
        assert (msg.price, msg.tie_coin, msg.tied) == (7, coin, TIED)
        assert [e.to for e in effects if isinstance(e, Send) and e.msg is msg] == [winner]


def test_without_verifiable_coins_the_seeded_stream_breaks_ties_and_nothing_is_added() -> None:
    s, effects = seller_with_tie(guarded=True, coins=False)
    (send,) = [e for e in effects if isinstance(e, Send)]
    expected = run_local_auction(0, 0, {"a": 7, "b": 7, "c": 3}, tie_break_rng(0, "s", 1), origin=True).winner
    assert send.to == expected
    assert (send.msg.tie_coin, send.msg.tied) == (b"", ())


def test_a_rerun_after_a_refuse_applies_the_same_coin_to_the_bidders_left() -> None:
    s, effects = seller_with_tie(guarded=True)
    first = tie_winner(tie_coin(), TIED)
    other = next(n for n in TIED if n != first)
    rerun = s.receive(first, Refuse(auction=AUCTION, hop=1, amount=6), 4.0)
    (send,) = [e for e in rerun if isinstance(e, Send)]
    # The other tied bidder is alone at the top now; the second price is c's 3.
    assert send.to == other and (send.msg.price, send.msg.tied) == (3, (other,))


# ----------------------------------------------------------------- the buyer's side


def test_the_coins_pick_takes_the_sale_and_the_other_tied_buyer_refuses_it() -> None:
    coin = tie_coin()
    winner = tie_winner(coin, TIED)
    loser = next(n for n in TIED if n != winner)
    for guarded in (True, False):
        # A host that gives the tie to the other buyer, naming both and its real coin: refused.
        m = bidder(loser, guarded=guarded)
        reason = assert_rejected(m, "s", sale(loser, guarded=guarded, coin=coin, tied=TIED)).reason
        assert "does not follow the host's tie coin" in reason
        # The honest sale is taken.
        w = bidder(winner, guarded=guarded)
        w.receive("s", sale(winner, guarded=guarded, coin=coin, tied=TIED), 4.0)
        if guarded:
            # It hosts its own hop (nobody to resell to) and confirms: it values the item at 7.
            assert w.stage is NodeStage.CONFIRMED and w.awaiting_award is not None
        else:
            assert w.bought_at == 7


def test_a_sale_without_a_valid_tie_coin_is_refused_under_verifiable_coins() -> None:
    coin = tie_coin()
    winner = tie_winner(coin, TIED)
    for guarded in (True, False):
        m = bidder(winner, guarded=guarded)
        cases = [
            ("without a well-formed tie coin", sale(winner, guarded=guarded)),  # a plain sale
            ("without a well-formed tie coin", sale(winner, guarded=guarded, coin=coin, tied=("a", "a", "b"))),
            ("leave out its buyer", sale(winner, guarded=guarded, coin=coin, tied=("c",))),
            # Another node's coin, and the host's own coin for another hop or another auction.
            ("not the host's signature", sale(winner, guarded=guarded, coin=tie_coin(host="a"), tied=TIED)),
            ("not the host's signature", sale(winner, guarded=guarded, coin=tie_coin(hop=2), tied=TIED)),
            ("not the host's signature", sale(winner, guarded=guarded, coin=tie_coin(auction="x/1"), tied=TIED)),
        ]
        for expected, msg in cases:
            assert expected in assert_rejected(m, "s", msg).reason, expected


def test_a_private_coin_auction_refuses_a_tie_coin_and_takes_the_plain_sale() -> None:
    m = bidder("a", guarded=True, coins=False)
    assert "without verifiable coins" in assert_rejected(
        m, "s", sale("a", guarded=True, coin=tie_coin(), tied=TIED)).reason
    m.receive("s", sale("a", guarded=True), 4.0)
    assert m.stage is NodeStage.CONFIRMED


def test_what_the_buyer_cannot_check_a_list_that_leaves_out_the_coins_pick() -> None:
    """The limit, pinned: a host that drops the better-ranked tied bidder from the list gets
    its sale taken by the other one, which cannot know the list is short."""
    coin = tie_coin()
    loser = next(n for n in TIED if n != tie_winner(coin, TIED))
    m = bidder(loser, guarded=True)
    m.receive("s", sale(loser, guarded=True, coin=coin, tied=(loser,)), 4.0)
    assert m.stage is NodeStage.CONFIRMED


# ----------------------------------------------------------------- the coin itself


def test_the_tie_coin_is_deterministic_and_per_host_hop_and_auction() -> None:
    assert tie_coin() == tie_coin() and len(tie_coin()) == 64
    coins = {tie_coin(host, hop, auction) for host in "sab" for hop in (1, 2) for auction in ("x/1", "x/2")}
    assert len(coins) == 12
    assert tie_coin() != sign("s", AUCTION, parent_purpose())


def test_the_tie_winner_is_uniform_over_auction_ids() -> None:
    """Over 3,000 auction ids each of three tied bidders wins about a third of the ties.

    Chi-squared with 2 degrees of freedom: 13.8 is its 0.999 quantile, so an honest
    uniform pick fails this one time in a thousand (the ids are fixed, so it never flakes).
    """
    names = ("a", "b", "c")
    n = 3000
    wins = Counter(tie_winner(tie_coin("s", 1, f"u/{i}"), names) for i in range(n))
    assert set(wins) == set(names)
    chi2 = sum((wins[name] - n / 3) ** 2 / (n / 3) for name in names)
    assert chi2 < 13.8, wins
    # And by hop within one auction: the same host's coins for hops 1..3000.
    wins = Counter(tie_winner(tie_coin("s", hop, "u/0"), names) for hop in range(1, n + 1))
    assert sum((wins[name] - n / 3) ** 2 / (n / 3) for name in names) < 13.8, wins


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=64, max_size=64), st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6,
                                                      unique=True), st.randoms(use_true_random=False))
def test_the_tie_winner_depends_only_on_the_coin_and_the_set(coin: bytes, names: list[str], rnd) -> None:
    winner = tie_winner(coin, names)
    shuffled = list(names)
    rnd.shuffle(shuffled)
    assert tie_winner(coin, shuffled) == winner  # order does not matter
    # Dropping a loser does not change the winner (a rerun without a refused bidder stays consistent).
    for loser in names:
        if loser != winner:
            assert tie_winner(coin, [n for n in names if n != loser]) == winner
    # The local auction ranks the tied bidders exactly as tie_winner does.
    bids = {name: 5 for name in names}
    assert run_local_auction(0, 0, bids, None, origin=True, tie_coin=coin).winner == winner


# --------------------------------------------------------------- whole simulated runs


@pytest.mark.parametrize("guarded", [True, False])
def test_simulated_runs_break_ties_by_the_hosts_coins_and_match_the_replay(guarded: bool) -> None:
    # s's three neighbours tie at 5; b and c tie again below a, as do a's two children.
    edges = [("s", "a"), ("s", "b"), ("s", "c"), ("a", "d"), ("a", "e")]
    values = {"s": 0, "a": 5, "b": 5, "c": 5, "d": 2, "e": 2}
    scenario = explicit_scenario(edges, values, seller="s", seed=1, name="ties")
    first_buyers = Counter()
    for seed in range(24):
        cfg = dataclasses.replace(default_config(scenario, "rounds", None), verifiable_coins=True, guarded=guarded)
        result, network = simulate(scenario, seed=seed, config=cfg)
        assert result.extra["status"] == "completed" and result.extra["coin_auction"] == f"ties/{seed}"
        assert result.hops[0].buyer == tie_winner(tie_coin("s", 1, f"ties/{seed}"), ("a", "b", "c"))
        replayed = replay_run(result, values)
        assert (replayed.hops, replayed.winner) == (result.hops, result.winner)
        first_buyers[result.hops[0].buyer] += 1
    assert set(first_buyers) == {"a", "b", "c"}  # the coin varies with the auction id
