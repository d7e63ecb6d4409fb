"""How a simulated auction ended: completed, aborted (with a reason) or stalled.

Definitions (for one run, judged when the network stops at its horizon):

* **stalled** (always a bug): the run hit its event limit; or a message or a
  live wait is still scheduled at the horizon (no correct run lasts that
  long, since every wait is bounded and so is every delay); or a live
  machine still has a deadline that nothing will ever wake it for.
* **completed**: not stalled, and every *informed honest* node (a node whose
  machine left IDLE, that runs the intended strategy and is not down; if
  there is none, every informed node that is not down) holds
  the same ``Settled``, which agrees with the ledger (winner = last buyer or
  the seller, hops = chain length, price = last price or 0).
* **aborted**: not stalled, not completed.  Every honest node has done all it
  owes and waits for nothing with a deadline: the ones without a settlement
  are parked in ``reported`` and a real shell closes the auction for them
  at its horizon.  The reason is one of

  - ``sale-stopped``: nobody settled; the ledger ends at a holder that did not
    carry on (it is down, silent, or its Award to the next buyer never got
    countersigned: the detail says which);
  - ``settlement-refused``: a settlement contradicted the ledger and the
    shells refused it;
  - ``false-settlement``: honest nodes accepted a settlement that contradicts
    the ledger (only when the ``settled`` check is switched off);
  - ``settlement-undelivered``: the auction settled, but the flood of
    ``Settled`` did not reach every informed honest node (messages lost, or
    the only way to them runs through a silent or crashed node);
  - ``settlement-conflict``: honest nodes hold different settlements (never
    seen: it would take a forged settlement).

Ledger integrity is judged separately, for every status: no fork (two
different entries for one hop, or a host's half that differs from what its
buyer countersigned), the countersigned chain verifies from genesis with no
gap, and no entry an honest node recorded is missing from the ledger.
"""

from __future__ import annotations

from peer.money import describe_amount

from dataclasses import dataclass

from peer.sim.network import SimNetwork
from peer.sra.ledger_entry import verify_chain
from peer.sra.node_stage import IDLE
from peer.sra.messages import Award, Settled

COMPLETED, ABORTED, STALLED = "completed", "aborted", "stalled"


@dataclass(frozen=True)
class Integrity:
    forks: int = 0
    broken: str | None = None  # the chain's first problem
    lost: int = 0  # honest countersigned entries missing from the ledger

    @property
    def ok(self) -> bool:
        return not self.forks and self.broken is None and not self.lost

    def to_json(self) -> dict[str, object]:
        return {"ok": self.ok, "forks": self.forks, "broken": self.broken, "lost": self.lost}


@dataclass(frozen=True)
class Verdict:
    status: str
    reason: str | None  # None when completed
    detail: str
    holder: str  # who holds the item by the ledger
    unsettled: tuple[str, ...]  # informed honest nodes without a settlement
    integrity: Integrity


def integrity(network: SimNetwork, honest: set[str]) -> Integrity:
    ledger = network.ledger
    forks = len(ledger.forks)
    forks += sum(1 for hop, half in ledger.halves.items() if hop in ledger.entries and ledger.entries[hop] != half)
    chain = ledger.chain()
    broken = verify_chain(ledger.genesis, chain)
    if broken is None and len(chain) != len(ledger.entries):
        broken = f"gap after hop {len(chain)}"
    lost = sum(
        1
        for node in honest
        for entry in network.stats.records.get(node, ())
        if entry.buyer == node and ledger.entries.get(entry.hop) != entry
    )
    return Integrity(forks, broken, lost)


def _stall(network: SimNetwork, horizon: float) -> str | None:
    if network.stats.truncated:
        return "the run hit its event limit"
    live = {n: m for n, m in network.machines.items() if not network.down(n)}
    for time, target, sender, msg in network.pending():
        if msg is not None:
            return f"{type(msg).__name__} from {sender} to {target} still in flight at the horizon ({horizon:g})"
        machine = live.get(target)
        if machine is not None and machine.next_deadline() is not None:
            return f"{target} still waiting (deadline {machine.next_deadline():g}) at the horizon ({horizon:g})"
    waiting = [name for name, machine in live.items() if machine.next_deadline() is not None]
    if waiting:
        name = min(waiting)  # the first by name, as it always was, without sorting every node
        return f"{name} waits for a deadline ({live[name].next_deadline():g}) that nothing will wake it for"
    return None


def judge(network: SimNetwork, honest: set[str], horizon: float) -> Verdict:
    """The status of a finished (or horizon-stopped) run; ``honest``: the nodes running the intended strategy."""
    ledger = network.ledger
    winner, hops, price = ledger.expected_settlement()
    holder = winner
    check = integrity(network, honest)
    machines = network.machines
    live = [n for n in sorted(machines) if machines[n].stage is not IDLE and not network.down(n)]
    # With no honest node in the auction at all (tiny graphs of deviators), judge the live ones.
    informed = [n for n in live if n in honest] or live
    unsettled = tuple(n for n in informed if machines[n].result is None)

    def verdict(status: str, reason: str | None, detail: str) -> Verdict:
        return Verdict(status, reason, detail, holder, unsettled, check)

    stall = _stall(network, horizon)
    if stall is not None:
        return verdict(STALLED, "stalled", stall)
    expected = Settled(auction=next(iter(machines.values())).auction, winner=winner, hops=hops, price=price)
    # Every node holds the flood's one object: hash each distinct object once, not once per node.
    by_object = {id(r): r for n in informed if (r := machines[n].result) is not None}
    versions = set(by_object.values())
    if len(versions) > 1:
        return verdict(ABORTED, "settlement-conflict", f"honest nodes hold {len(versions)} different settlements")
    if not unsettled and versions == {expected}:
        return verdict(COMPLETED, None, "")
    if versions and versions != {expected}:
        (held,) = versions
        return verdict(ABORTED, "false-settlement",
                       f"honest nodes accepted {held.winner}/{held.hops} hops/{describe_amount(held.price)}, but the ledger "
                       f"says {winner}/{hops} hops/{describe_amount(price)} (the settled check is off)")
    if any(d.check == "settled" for d in network.stats.detections):
        first = next(d for d in network.stats.detections if d.check == "settled")
        return verdict(ABORTED, "settlement-refused",
                       f"{first.against}'s settlement {first.claimed} contradicts the ledger ({first.recorded})")
    anyone = {m.result for n, m in machines.items() if not network.down(n)} - {None}  # a crashed machine is lost
    if anyone:
        return verdict(ABORTED, "settlement-undelivered",
                       f"{len(unsettled)} of {len(informed)} informed honest nodes never got the settlement"
                       f" ({_flood_cause(network)})")
    return verdict(ABORTED, "sale-stopped", _why_stopped(network, holder, hops))


def _flood_cause(network: SimNetwork) -> str:
    dropped = sum(1 for *_, kind in (network.chaos.dropped if network.chaos else ()) if kind == "Settled")
    down = sorted(n for n in network.machines if network.down(n))
    muted = sorted(n for n, m in network.machines.items() if m.behaviour.silent_from is not None)
    parts = []
    if dropped:
        parts.append(f"{dropped} Settled messages dropped")
    if down or muted:
        parts.append("cut by " + ", ".join(down + muted))
    return "; ".join(parts) or "unknown"


def _why_stopped(network: SimNetwork, holder: str, hops: int) -> str:
    """Why the holder by the ledger did not carry the sale on."""
    machines = network.machines
    stats = network.stats
    where = f"the ledger ends at hop {hops} with {holder}"
    if holder in stats.crashed:
        return f"{where}, which crashed at t={stats.crashed[holder]:g}"
    if network.down(holder):
        return f"{where}, which never answers"
    behaviour = machines[holder].behaviour
    half = network.ledger.halves.get(hops + 1)
    if half is not None and half.seller == holder:
        buyer = half.buyer
        if buyer in stats.crashed:
            cause = f"the buyer crashed at t={stats.crashed[buyer]:g}"
        elif network.down(buyer):
            cause = "the buyer never answers"
        elif any(d.check == "award" and d.hop == hops + 1 for d in stats.detections):
            cause = "the buyer's shell refused it"
        elif refusal := next((reason for (by, reason), sender in zip(stats.rejected, stats.refused_from)
                              if by == buyer and sender == holder and "award" in reason), None):
            cause = f"the buyer's machine refused it: {refusal}"
        elif network.chaos is not None and any(
            (s, r, k) == (holder, buyer, Award.__name__) for s, r, k in network.chaos.dropped
        ):
            cause = "the network dropped it"
        else:
            cause = "it never arrived"
        return f"{where}: its Award of hop {hops + 1} to {buyer} was never countersigned ({cause})"
    if behaviour.silent_from is not None:
        return f"{where}, which is silent from {behaviour.silent_from}"
    return f"{where}, which neither resold nor settled"
