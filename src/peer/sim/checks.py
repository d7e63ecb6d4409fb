"""The node shell's ledger checks, played by the simulator.

Real nodes check what the pure machine cannot, against their copy of the
signed ledger (``peer.node.node``'s ``_precheck``).  The simulator has no
signatures and no gossip, so it keeps one :class:`LedgerView` for the run,
built from the machines' ``Record`` effects, and runs the same checks at the
moment a message would reach its receiver:

* ``reserve``: before an ``Open`` for hop k reaches a participant, the host
  must be the buyer of hop k-1 on the ledger (the seller for hop 1), its
  reserve must be the price of that entry (0 for hop 1) and ``prev`` its hash.
  Under guarded resale the host's purchase is only offered when it opens, so
  the check is that ``prev`` is the hash of the entry the Open names with the
  reserve as its price; a host that names a made-up entry is caught by the
  ``award`` check, since its sale cannot chain to the ledger;
* ``award``: before an ``Award`` for hop k reaches the buyer, it must name the
  entry the host signed (its half, recorded when it closed the hop), and that
  entry must chain to hop k-1 (the host bought there, ``prev`` is that
  entry's hash, the price is not below what the host paid);
* ``settled``: before a ``Settled`` reaches a node, it must agree with the
  ledger (winner = last buyer or the seller, hops = chain length, price = the
  last price or 0).  Two Settled that disagree with each other are refused by
  the machine itself; the simulator records that as evidence too.

A message that fails a check is refused: it does not reach the machine, and
the receiver records a :class:`Detection` (who, against whom, which hop,
claimed vs recorded).  These are failed checks, not signed fraud proofs: the
ledger's fraud proofs (two signed entries for one position) need a forged
signature, which only the real-node tests can exercise.

Ledger model.  As on real nodes, an entry is *on the ledger* once its buyer
countersigns it (the buyer's ``Record``), and it is replicated to every
honest node at once (the simulator does not model gossip delays or losses;
real links and gossip retransmit).  The host's own ``Record`` is only its
signature on the hop (a *half*): if the Award never arrives, the ledger still
says the host holds the item.
"""

from __future__ import annotations

from peer.money import describe_amount

from dataclasses import dataclass
from typing import Any

from peer.money import to_decimal
from peer.sra.ledger_entry import HopEntry
from peer.sra.messages import Award, Open, Settled

CHECKS: frozenset[str] = frozenset({"reserve", "award", "settled"})


@dataclass(frozen=True, slots=True)
class Detection:
    """One refused message: the evidence a real node would log (and report to its link)."""

    by: str  # the node whose shell refused it
    against: str  # the sender
    check: str  # reserve | award | settled | settled-conflict
    hop: int | None
    claimed: int | str | None
    recorded: int | str | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        def amount(x: int | str | None) -> object:
            return to_decimal(x) if isinstance(x, int) else x  # amounts in whole units, like the rest of the JSON

        return {"by": self.by, "against": self.against, "check": self.check, "hop": self.hop,
                "claimed": amount(self.claimed), "recorded": amount(self.recorded), "detail": self.detail}


class LedgerView:
    """The run's ledger: countersigned entries by hop, the hosts' halves, and any fork seen."""

    def __init__(self, seller: str, genesis: str, *, guarded: bool = False) -> None:
        self.seller = seller
        self.genesis = genesis
        self.guarded = guarded  # guarded resale: an Open comes before the host's purchase is on the ledger
        self.entries: dict[int, HopEntry] = {}  # hop -> entry its buyer countersigned
        self.halves: dict[int, HopEntry] = {}  # hop -> entry its seller signed
        self.forks: list[tuple[HopEntry, HopEntry]] = []
        self._expected: tuple[int, tuple[str, int, int]] | None = None  # (entry count, settlement)
        # The flood forwards one Settled object over every link: the last one that passed, and the
        # entry count it passed at (a frozen message passes again while the ledger is unchanged).
        self._settled_ok: tuple[Settled, int] | None = None

    @classmethod
    def from_records(cls, seller: str, genesis: str, records: dict[str, list[HopEntry]]) -> LedgerView:
        view = cls(seller, genesis)
        for node in sorted(records):
            for entry in records[node]:
                view.record(node, entry)
        return view

    def record(self, node: str, entry: HopEntry, countersigned: bool = False) -> None:
        if countersigned and entry.seller == node:
            # Guarded resale: the seller holds the buyer's signature, so the whole entry goes on
            # the ledger, if it chains to it (a real store refuses one that does not).
            self.record(node, entry)
            basis = self.basis(entry.hop)
            if basis is not None and basis[0] == node and basis[2] == entry.prev:
                self.record(entry.buyer, entry)
            return
        table = self.entries if entry.buyer == node else self.halves if entry.seller == node else None
        if table is None:
            return
        old = table.get(entry.hop)
        if old is None:
            table[entry.hop] = entry
        elif old != entry:
            self.forks.append((old, entry))

    def chain(self) -> list[HopEntry]:
        """The countersigned entries 1, 2, ... up to the first gap."""
        out = []
        while len(out) + 1 in self.entries:
            out.append(self.entries[len(out) + 1])
        return out

    def basis(self, hop: int) -> tuple[str, int, str] | None:
        """(owner, price it bought at, entry hash) after hop ``hop - 1``; None if not on the ledger."""
        if hop == 1:
            return self.seller, 0, self.genesis
        entry = self.entries.get(hop - 1)
        return None if entry is None else (entry.buyer, entry.price, entry.hash)

    # -------------------------------------------------------------- checks

    def check(self, receiver: str, sender: str, msg: object, enabled: frozenset[str]) -> Detection | None:
        if type(msg) is Open:
            return self._check_open(receiver, sender, msg) if "reserve" in enabled else None
        if type(msg) is Award:
            return self._check_award(receiver, sender, msg) if "award" in enabled else None
        if type(msg) is Settled:
            if "settled" not in enabled:
                return None
            passed = self._settled_ok
            if passed is not None and passed[0] is msg and passed[1] == len(self.entries):
                return None
            detection = self._check_settled(receiver, sender, msg)
            if detection is None:
                self._settled_ok = (msg, len(self.entries))
            return detection
        return None

    def _check_open(self, receiver: str, host: str, msg: Open) -> Detection | None:
        hop = msg.hop
        if self.guarded and isinstance(hop, int) and hop > 1:
            # The purchase is only offered yet: check the reserve against the entry the Open
            # names (the machine checks this too); a consistent lie fails at the Award.
            named = HopEntry(auction=msg.auction, hop=hop - 1, seller=msg.bought_from, buyer=host,
                             price=msg.reserve, prev=msg.bought_prev)
            if named.hash != msg.prev:
                return Detection(receiver, host, "reserve", hop, msg.reserve, None,
                                 f"host claims reserve {describe_amount(msg.reserve)}, which is not the price in the entry it names")
            return None
        basis = self.basis(hop) if isinstance(hop, int) and hop >= 1 else None
        if basis is None or basis[0] != host:
            owner = None if basis is None else basis[0]
            return Detection(receiver, host, "reserve", hop, msg.reserve, None,
                             f"host did not buy the item in hop {hop - 1} (ledger owner: {owner})")
        _, bought, prev = basis
        if msg.reserve != bought:
            return Detection(receiver, host, "reserve", hop, msg.reserve, bought,
                             f"host claims reserve {describe_amount(msg.reserve)} but bought at {describe_amount(bought)}")
        if msg.prev != prev:
            return Detection(receiver, host, "reserve", hop, msg.prev, prev,
                             f"host's prev does not name the entry of hop {hop - 1}")
        return None

    def _check_award(self, buyer: str, host: str, msg: Award) -> Detection | None:
        half = self.halves.get(msg.hop)
        if half is None or (half.seller, half.buyer, half.hash, half.price) != (host, buyer, msg.entry, msg.price):
            return Detection(buyer, host, "award", msg.hop, msg.entry, None if half is None else half.hash,
                             "award names an entry the host did not sign")
        basis = self.basis(half.hop)
        problem = None
        if basis is None or basis[0] != host:
            problem = f"the host did not buy the item in hop {half.hop - 1}"
        elif half.prev != basis[2]:
            problem = f"the entry does not chain to hop {half.hop - 1}"
        elif half.price < basis[1]:
            problem = f"the entry sells at {describe_amount(half.price)}, below the {describe_amount(basis[1])} the host paid"
        if problem is None:
            return None
        return Detection(buyer, host, "award", half.hop, half.price, None if basis is None else basis[1], problem)

    def expected_settlement(self) -> tuple[str, int, int]:
        """(winner, hops, price) that a settlement must state, by the ledger."""
        # Asked once per Settled delivered (2|E| of them); entries are only ever added,
        # so their count tells whether the chain can have changed.
        cached = self._expected
        if cached is not None and cached[0] == len(self.entries):
            return cached[1]
        chain = self.chain()
        expected = (self.seller, 0, 0) if not chain else (chain[-1].buyer, len(chain), chain[-1].price)
        self._expected = (len(self.entries), expected)
        return expected

    def _check_settled(self, receiver: str, sender: str, msg: Settled) -> Detection | None:
        expected = self.expected_settlement()
        claimed = (msg.winner, msg.hops, msg.price)
        if claimed == expected:
            return None
        return Detection(receiver, sender, "settled", msg.hops,
                         f"{claimed[0]}/{claimed[1]} hops/{describe_amount(claimed[2])}",
                         f"{expected[0]}/{expected[1]} hops/{describe_amount(expected[2])}",
                         "settlement contradicts the ledger")
