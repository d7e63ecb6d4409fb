"""The settlement check of :class:`peer.node.node.Node` (mixed into Node).

The machine takes the first Settled it sees, so a false one would stop the
sale everywhere.  The shell judges every Settled against the ledger before
the machine sees it, and holds one that is ahead of the local copy until its
entries arrive (an honest Settled can overtake its entry on another path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from peer.errors import RemoteProtocolError
from peer.sra.messages import Settled

if TYPE_CHECKING:
    from peer.node.node import Node

HOLD = "hold"  # a settlement our ledger cannot judge yet
HELD_LIMIT = 16  # settlements waiting for their ledger entries


class SettlementGlue:
    """Mixed into Node; ``self`` is the Node."""

    def _settlement_verdict(self: Node, msg: Settled) -> str | None:
        """None if ``msg`` agrees with our ledger, HOLD if the ledger is behind it, else why not.

        The machine takes the first Settled it sees, so a false one would stop
        the sale everywhere; the ledger is what it must agree with: the winner
        is the buyer of the last hop (the seller if none), at that hop's price.
        """
        chain = self.store.chain(msg.auction)
        have = 0 if chain is None else len(chain.hops)
        if not isinstance(msg.hops, int) or msg.hops < have:
            return f"settlement claims {msg.hops} hops but the ledger holds {have}"
        if msg.hops > have:
            return HOLD
        assert self.machine is not None
        winner, price = (self.machine.seller, 0) if have == 0 else (
            chain.hops[-1].body.buyer, chain.hops[-1].body.price)  # type: ignore[union-attr]
        if msg.winner != winner or msg.price != price:
            return (f"settlement names {self._n(msg.winner) if isinstance(msg.winner, str) else msg.winner!r} "
                    f"but the ledger's last buyer is {self._n(winner)}")
        return None

    def _hold_settlement(self: Node, peer: str, msg: Settled) -> None:
        if len(self._held_settlements) >= HELD_LIMIT:
            self._reject(peer, "settlement ahead of the ledger, and too many are held already")
            return
        self._held_settlements.append((peer, msg))
        self._emit("held", peer=self._n(peer), reason="settlement ahead of our ledger: waiting for its entries")

    async def _release_settlements(self: Node) -> None:
        """Re-judge held settlements once the ledger has grown."""
        held, self._held_settlements = self._held_settlements, []
        for peer, msg in held:
            if self.machine is None or self.machine.result is not None:
                continue
            verdict = self._settlement_verdict(msg)
            if verdict == HOLD:
                self._held_settlements.append((peer, msg))
            elif verdict is not None:
                self._reject(peer, verdict)
            else:
                try:
                    effects = self.machine.receive(peer, msg, trio.current_time())
                except RemoteProtocolError as exc:
                    self._reject(peer, exc.reason)
                    continue
                await self._apply(effects)
