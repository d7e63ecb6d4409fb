"""Hop entries between the machine and the ledger (mixed into :class:`peer.node.node.Node`).

Who signs what, and when, depends on the resale rule: under the paper's rule
the buyer countersigns the seller's half on its Award and floods the whole
entry; under guarded resale the buyer signed with its Confirm, so the seller
floods the whole entry before its Award, and that entry from gossip counts as
the Award if it comes first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from peer.errors import RemoteProtocolError
from peer.ledger import Entries, SignedHop, sign_hop
from peer.sra.ledger_entry import HopEntry
from peer.sra.messages import Award

if TYPE_CHECKING:
    from peer.node.node import Node


class HopSigning:
    """Mixed into Node; ``self`` is the Node."""

    async def _record(self: Node, entry: HopEntry, countersigned: bool = False) -> None:
        if entry.seller == self.me:
            self._my_sigs[entry.hash] = sign_hop(self.identity, entry)
            if not countersigned:
                return  # our half: the buyer countersigns, persists and floods the whole entry
            # Guarded resale: the buyer signed with its Confirm; the whole entry goes on the
            # ledger (and to the buyer through it) before the Award is sent.
            hop = SignedHop(body=entry, seller_sig=self._my_sigs[entry.hash],
                            buyer_sig=self._confirm_sigs.pop(entry.hash))
            await self._persist([hop])
            self._publish(Entries((hop,)))
            return
        seller_sig = self._award_sigs.pop(entry.hash)
        chain = self.store.chain(entry.auction)
        if chain is not None and any(h.body == entry for h in chain.hops):
            return  # guarded resale: our seller already put the whole entry on the ledger
        hop = SignedHop(body=entry, seller_sig=seller_sig, buyer_sig=sign_hop(self.identity, entry))
        await self._persist([hop])
        self._publish(Entries((hop,)))

    async def _awarded_by_ledger(self: Node, accepted: list[Any]) -> None:
        """Guarded resale: a whole entry selling us what we confirmed is our Award, however it came.

        The seller floods it before it sends the Award, so this usually wins the race; if
        the Award's link fails, nothing is lost.
        """
        machine = self.machine
        if machine is None:
            return
        for entry in accepted:
            waiting = machine.awaiting_award
            if not isinstance(entry, SignedHop) or waiting is None or entry.body != waiting:
                continue
            body = entry.body
            self._award_sigs[body.hash] = entry.seller_sig
            award = Award(auction=body.auction, hop=body.hop, price=body.price, entry=body.hash,
                          seller_sig=entry.seller_sig)
            try:
                effects = machine.receive(body.seller, award, trio.current_time())
            except RemoteProtocolError as exc:
                self._award_sigs.pop(body.hash, None)
                self._emit("error", reason=f"ledger award: {exc.reason}")
                continue
            await self._apply(effects)
