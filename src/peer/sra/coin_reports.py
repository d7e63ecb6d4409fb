"""Stage-2 reports under verifiable coins: the coin on Bids and Declines, and their checks.

Mixed into :class:`peer.sra.machine.SraNode` (``self`` is the node); the
coin itself is defined in :mod:`peer.sra.coins`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peer.errors import RemoteProtocolError
from peer.sra.coins import choose_parent, coin_message, outranks, parent_purpose
from peer.sra.effects import Effect, Send
from peer.sra.messages import Bid, CoinBid, CoinDecline, Decline

if TYPE_CHECKING:
    from peer.sra.machine import SraNode


class CoinReports:
    """The coin-carrying side of stage 2 (mixed into SraNode)."""

    __slots__ = ()  # SraNode keeps the state in slots (see its docstring)

    @property
    def coin(self: SraNode) -> bytes:
        """This node's coin for its parent choice (verifiable coins only): its signature, drawn once."""
        assert self._keys is not None
        if self._coin is None:
            self._coin = self._keys.sign(coin_message(self.auction, parent_purpose()))
        return self._coin

    def _decline(self: SraNode, parent: str) -> Decline:
        if self._keys is None:
            return Decline(auction=self.auction)
        return CoinDecline(auction=self.auction, coin=self.coin, parent=parent)

    def _report_with_coin(self: SraNode, inviters: list[str], aggregate: int) -> list[Effect]:
        """Stage-2 reports that carry the coin.  An honest node lists every inviter.  A node that
        chose another parent than its coin (``Behaviour.parent``) hides the choice as well as it can
        (``Behaviour.coin_cover``): "omit" leaves the inviters its coin ranks first off the list,
        "silent" also sends them nothing; otherwise it lists everyone and is refused."""
        cover = self.behaviour.coin_cover if self.behaviour.parent is not None else None
        effects: list[Effect] = []
        coin = self.coin
        for parent in self.parents:
            ahead = {i for i in inviters if outranks(coin, i, parent)} if cover else set()
            listed = tuple(i for i in inviters if i not in ahead)
            effects.append(Send(parent, CoinBid(auction=self.auction, amount=aggregate, coin=coin,
                                            inviters=listed)))
        for inviter in inviters:
            if inviter in self.parents:
                continue
            ahead = cover is not None and any(outranks(coin, inviter, p) for p in self.parents)
            if ahead and cover == "silent":
                continue
            effects.append(Send(inviter, self._decline(self.parents[0] if len(self.parents) == 1 else "")))
        return effects

    def _check_bid_coin(self: SraNode, sender: str, msg: Bid) -> None:
        if not isinstance(msg, CoinBid):
            raise RemoteProtocolError(sender, "a Bid without a coin in an auction with verifiable coins")
        listed = msg.inviters
        if not (isinstance(msg.coin, bytes) and isinstance(listed, tuple)
                and all(isinstance(i, str) for i in listed) and len(set(listed)) == len(listed)):
            raise RemoteProtocolError(sender, "malformed coin on a Bid")
        if not self._keys.verify(sender, coin_message(self.auction, parent_purpose()), msg.coin):  # type: ignore[union-attr]
            raise RemoteProtocolError(sender, "the Bid's coin is not the sender's signature on this auction")
        if self.id not in listed or choose_parent(msg.coin, listed) != self.id:
            raise RemoteProtocolError(sender, "the Bid's parent choice does not follow its coin")

    def _check_decline_coin(self: SraNode, sender: str, msg: Decline) -> None:
        if not isinstance(msg, CoinDecline):
            raise RemoteProtocolError(sender, "a Decline without a coin in an auction with verifiable coins")
        if not (isinstance(msg.coin, bytes) and isinstance(msg.parent, str)):
            raise RemoteProtocolError(sender, "malformed coin on a Decline")
        if not self._keys.verify(sender, coin_message(self.auction, parent_purpose()), msg.coin):  # type: ignore[union-attr]
            raise RemoteProtocolError(sender, "the Decline's coin is not the sender's signature on this auction")
        if not msg.parent:
            # "Your invitation came late": an honest invitee never says so, since it invites every
            # neighbour that has not invited it, so a late invitation crosses its own and voids the edge.
            raise RemoteProtocolError(sender, "a Decline that names no parent")
        if msg.parent == self.id or outranks(msg.coin, self.id, msg.parent):
            raise RemoteProtocolError(sender, "the Decline names a parent its coin ranks after this node")
