"""One SRA auction as a node hosts it: the sans-I/O machine plus what the shell keeps for it.

An :class:`SraAuction` is an *instance* in the sense of :mod:`peer.node.instances`:
it is keyed by its auction id, the node routes that auction's messages to it,
and it leaves the node's memory when it is over (the ledger keeps the
auction).  Everything here is plain data; the SRA collaborator
(:mod:`peer.sra.shell`) does the signing, the ledger checks and the effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peer.sra.effects import Effect
from peer.sra.equivocation import ReceiptBook
from peer.sra.machine import SraNode
from peer.sra.messages import Message, Open, Settled


@dataclass(eq=False)
class SraAuction:
    """One auction this node takes part in (or sells in)."""

    machine: SraNode
    origin: str | None  # the neighbour whose Invite opened it here; None when we sell
    created: float  # trio time
    stall_after: float  # seconds without progress before this node gives up on it
    progress_at: float = 0.0  # trio time of the last sign of progress
    # Signatures and messages the shell keeps between two effects of one auction.
    my_sigs: dict[str, bytes] = field(default_factory=dict)  # entry hash -> our seller signature
    award_sigs: dict[str, bytes] = field(default_factory=dict)  # entry hash -> the seller's, received
    confirm_sigs: dict[str, bytes] = field(default_factory=dict)  # guarded resale: our buyer's
    opens: dict[int, tuple[str, Open]] = field(default_factory=dict)
    held: list[tuple[str, Settled]] = field(default_factory=list)  # settlements ahead of our ledger
    receipts: ReceiptBook | None = None  # signed stage-2 bids of our subtree (peer.sra.equivocation)
    settled: Settled | None = None
    aborted: str | None = None
    finished: bool = False  # final (settled, ledger complete) or aborted: it leaves the node

    def __post_init__(self) -> None:
        self.progress_at = self.created

    # --- the instance interface (peer.node.instances.Instance) -------------------------

    @property
    def key(self) -> str:
        return self.machine.auction

    @property
    def owner(self) -> str:
        return self.machine.seller

    @property
    def stage(self) -> str:
        return self.machine.stage.value

    def receive(self, sender: str, msg: Message, now: float) -> list[Effect]:
        return self.machine.receive(sender, msg, now)

    def on_timer(self, now: float) -> list[Effect]:
        return self.machine.on_timer(now)

    def stall_deadline(self) -> float | None:
        return None if self.finished else self.progress_at + self.stall_after

    def next_deadline(self) -> float | None:
        """The earliest of the machine's own deadlines and the stall watchdog's: never None while live."""
        if self.finished:
            return None
        times = [t for t in (self.machine.next_deadline(), self.stall_deadline()) if t is not None]
        return min(times) if times else None
