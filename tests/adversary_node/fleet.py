"""Whole auctions of real node shells in one trio process, some of them adversaries, crashed or restarted.

Like ``tests/node/harness.py`` (real links, signatures, gossip, fsync'd
ledgers over in-memory streams), plus:

* any node can be an :class:`~peer.node.adversary.AdversaryNode`;
* a crashed node can be restarted after a delay: a fresh honest ``Node`` on the
  same key, data directory and address, which recovers its ledger from disk;
* the run ends when every honest node is done (settled with a full ledger copy,
  or aborted with a reason), bounded in time; a run that hits the bound is
  reported as *stalled*, which the tests treat as a bug;
* the report says, in node names, who refused what (the ``bad`` events from
  each node's own log, and the abuse counted on each link), the outcome, the
  replay check and how every ledger copy stands to the honest one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from peer.launch.check import chain_relation, replay_basis
from peer.ledger import LedgerStore
from peer.net.identity import Identity
from peer.net.link import LinkConfig
from peer.net.websocket import MemoryHub
from peer.node.adversary import AdversaryNode, Attack
from peer.node.config import NeighbourSpec, NodeConfig
from peer.node.eventlog import read_all
from peer.node.node import Node
from peer.result import Hop, NodeReport
from peer.scenario.model import Scenario, explicit_scenario

M = 10**6
FAST_LINKS = LinkConfig(heartbeat_interval=1.0, idle_timeout=5.0, defer_dial=0.05, backoff_base=0.02,
                        backoff_cap=0.2, abuse_threshold=64)

# Two-connected (no single node cuts anyone off) and, with seed 1, three hops:
# s sells to b at 3, b to c at 6, c to e at 6 (checked by test_the_honest_baseline).
EDGES = [("s", "a"), ("s", "b"), ("a", "c"), ("b", "c"), ("c", "d"), ("d", "e"), ("b", "d"), ("c", "e")]
VALUES = {"s": 0, "a": 3 * M, "b": 4 * M, "c": 2 * M, "d": 6 * M, "e": 9 * M}


def scenario(seed: int = 1) -> Scenario:
    return explicit_scenario(EDGES, VALUES, seller="s", seed=seed, name="adversary")


def identity_for(sc: Scenario, node: str) -> Identity:
    return Identity.from_seed(hashlib.sha256(f"adversary/{sc.name}/{node}".encode()).digest())


@dataclass
class Report:
    outcome: str  # completed | aborted | stalled | false-settlement (settled against the ledger)
    reasons: dict[str, str]  # honest node -> why it aborted
    hops: list[tuple[str, str, int]]  # (seller, buyer, price) from the honest ledger
    holder: str  # who has the item at the end (the winner, if completed)
    winners: dict[str, str]  # honest node -> the winner it settled on
    replay: str | None  # replay basis, see peer.launch.check.replay_basis
    ledger: dict[str, str]  # every node -> its copy vs the honest reference
    verified: dict[str, bool]  # every node -> its copy verifies offline
    refused: dict[str, list[tuple[str, str]]]  # honest node -> [(neighbour or origin, reason)]
    abuse: dict[str, int]  # node -> application-level abuse points its neighbours counted against it
    fraud: dict[str, int]  # node -> fraud proofs kept on its ledger
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # every node's log

    def refusals_of(self, reason_part: str) -> dict[str, int]:
        """How many refusals containing ``reason_part`` each honest node logged."""
        counts = {n: sum(1 for _, r in refs if reason_part in r) for n, refs in self.refused.items()}
        return {n: c for n, c in counts.items() if c}


@dataclass
class Fleet:
    scenario: Scenario
    root: Path
    attacks: dict[str, Attack]
    reply_timeout: float
    context_timeout: float
    gather_window: float
    paper_resale: bool = False
    hub: MemoryHub = field(default_factory=MemoryHub)
    ids: dict[str, Identity] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    first: dict[str, Node] = field(default_factory=dict)  # the node as first started (before a restart)

    def __post_init__(self) -> None:
        self.ids = {n: identity_for(self.scenario, n) for n in self.scenario.graph.nodes}
        for name in sorted(self.scenario.graph.nodes):
            self.nodes[name] = self.first[name] = self.make(name, self.attacks.get(name))

    @property
    def keys(self) -> dict[str, str]:
        return {n: i.public_hex for n, i in self.ids.items()}

    @property
    def auction(self) -> str:
        return f"{self.scenario.name}/{self.scenario.seed}"

    @property
    def honest(self) -> list[str]:
        return sorted(n for n in self.nodes if n not in self.attacks)

    def config(self, name: str) -> NodeConfig:
        sc = self.scenario
        return NodeConfig(
            key_path=self.root / f"{name}.key", port=0, value=sc.values[name],
            neighbours=[NeighbourSpec(name=nb, pubkey=self.ids[nb].public_key, dial=nb) for nb in sc.neighbours(name)],
            name=name, sell="item" if name == sc.seller else None,
            auction_id=self.auction if name == sc.seller else None, seed=sc.seed, data_dir=self.root / name,
            log_json=self.root / f"{name}.ndjson", gather_window=self.gather_window,
            reply_timeout=self.reply_timeout, context_timeout=self.context_timeout, start_timeout=20.0,
            confirm_timeout=3 * self.context_timeout,  # as tools/launch sets it
            paper_resale=self.paper_resale,
        )

    def make(self, name: str, attack: Attack | None = None) -> Node:
        kwargs: dict[str, Any] = {"transport": self.hub.transport(name), "link_config": FAST_LINKS}
        if attack is None:
            return Node(self.config(name), self.ids[name], **kwargs)
        return AdversaryNode(self.config(name), self.ids[name], attack=attack, **kwargs)


def build(sc: Scenario, root: Path, attacks: Mapping[str, str] | None = None, *, reply_timeout: float = 4.0,
          context_timeout: float = 3.0, gather_window: float = 0.05, paper_resale: bool = False) -> Fleet:
    parsed = {n: Attack.parse(spec) for n, spec in (attacks or {}).items()}
    return Fleet(sc, root, parsed, reply_timeout, context_timeout, gather_window, paper_resale)


async def run(fleet: Fleet, *, restart_after: Mapping[str, float] | None = None,
              restart_when_done: Collection[str] = (), limit: float = 30.0, catchup: float = 8.0) -> Report:
    """Run until every honest node is done; restart crashed nodes named in ``restart_after``
    (that many seconds after they stopped) or in ``restart_when_done`` (once every honest
    node is done: then it has surely missed entries, whatever the timing)."""
    restart_after = dict(restart_after or {})
    pending = set(restart_after) | set(restart_when_done)
    honest_done = trio.Event()

    async def supervise(name: str) -> None:
        await fleet.nodes[name].run()  # returns when the node crashes (raises if the run is over)
        if name in pending:
            if name in restart_after:
                await trio.sleep(restart_after[name])
            else:
                await honest_done.wait()
            fleet.nodes[name] = fleet.make(name)  # honest: it lost the attack with its memory
            pending.discard(name)
            await fleet.nodes[name].run()

    with trio.move_on_after(limit) as bound:  # every wait below is inside this bound
        async with trio.open_nursery() as nursery:
            for name in fleet.nodes:
                nursery.start_soon(supervise, name)
            for name in fleet.honest:
                await _wait_done(fleet, name)
            honest_done.set()
            # Restarts still due (of nodes that did crash), then give restarted nodes a moment
            # to catch their ledger up.
            while any(getattr(fleet.first[n], "crashed", False) for n in pending):
                await trio.sleep(0.05)
            # Until the honest and the restarted nodes hold the same copy of the auction: a
            # restarted node may bring entries the others lack (it floods them once linked again,
            # which can take a redial backoff), so the reference is read afresh each time.
            with trio.move_on_after(catchup):
                matched = [n for n in fleet.nodes if n in fleet.honest or fleet.nodes[n] is not fleet.first[n]]
                while len({_hashes(fleet.nodes[n], fleet.auction) for n in matched}) > 1:
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    stalled = bound.cancelled_caught
    return report(fleet, stalled=stalled)


async def _wait_done(fleet: Fleet, name: str) -> None:
    while True:  # poll: the node object can be replaced by a restart
        node = fleet.nodes[name]
        with trio.move_on_after(0.1):
            await node.done.wait()
            return


def _hashes(node: Node, auction: str | None = None) -> tuple[str, ...] | None:
    chains = node.store.chains()
    if not chains:
        return None
    chain = chains[0] if auction is None else node.store.chain(auction)
    return None if chain is None else tuple(h.hash for h in chain.hops)


def _reference_node(fleet: Fleet) -> str:
    seller = fleet.scenario.seller
    return seller if seller in fleet.honest else fleet.honest[0]


def report(fleet: Fleet, *, stalled: bool) -> Report:
    keys = fleet.keys
    names = {k: n for n, k in keys.items()}
    events = {n: read_all(fleet.root / f"{n}.ndjson") for n in fleet.nodes}
    honest = fleet.honest

    short = {i.name: n for n, i in fleet.ids.items()}  # nodes name non-neighbours by short key names

    def plain(text: str) -> str:
        for nick, name in short.items():
            text = text.replace(nick, name)
        return text

    reasons = {n: plain(str(fleet.nodes[n].aborted)) for n in honest if fleet.nodes[n].aborted}
    outcome = "stalled" if stalled else "aborted" if reasons else "completed"

    ref_node = fleet.nodes[_reference_node(fleet)]
    ref_chain = ref_node.store.chain(fleet.auction)
    assert ref_chain is not None, "the honest reference holds no chain"
    hops_key = [Hop(h.body.hop, h.body.seller, h.body.buyer, h.body.price) for h in ref_chain.hops]
    holder_key = hops_key[-1].buyer if hops_key else keys[fleet.scenario.seller]
    reference = tuple(h.hash for h in ref_chain.hops)

    ledger, verified = {}, {}
    for name, node in fleet.nodes.items():
        with LedgerStore.open_data_dir(fleet.root / name, read_only=True) as store:
            verified[name] = store.verify_all().ok
            chain = store.chain(fleet.auction)
        ledger[name] = chain_relation(reference, () if chain is None else tuple(h.hash for h in chain.hops))

    winners = {n: names.get(fleet.nodes[n].settled.winner, "?") for n in honest  # type: ignore[union-attr]
               if fleet.nodes[n].settled is not None}
    if outcome == "completed" and set(winners.values()) != {names[holder_key]}:
        outcome = "false-settlement"  # honest nodes settled on something the ledger contradicts

    replay = None
    if outcome == "completed":
        relation = {}
        for name in fleet.nodes:
            m = fleet.first[name].machine if name in fleet.attacks else fleet.nodes[name].machine
            if m is None:
                relation[keys[name]] = NodeReport(value=fleet.scenario.values[name])
                continue
            relation[keys[name]] = NodeReport(
                value=m.value, inviters=sorted(m.inviters), invitees=sorted(m.children.keys() | m.declined),
                parent=m.parents[0] if len(m.parents) == 1 else None)
        replay = replay_basis(keys[fleet.scenario.seller], fleet.scenario.seed, relation,
                              {keys[n]: v for n, v in fleet.scenario.values.items()}, hops_key, holder_key,
                              excluded={keys[n] for n in fleet.attacks},
                              stops_at={keys[n] for n, a in fleet.attacks.items() if a.kind == "false-reserve"})
        if replay is not None:
            for key, name in names.items():
                replay = replay.replace(key, name)

    refused: dict[str, list[tuple[str, str]]] = {}
    for name in honest:
        refused[name] = [(plain(str(e.get("origin") or e.get("peer"))), str(e.get("reason")))
                         for e in events[name] if e.get("kind") == "bad"]
    abuse: dict[str, int] = {}
    for name in fleet.nodes:
        for peer, snap in fleet.nodes[name].manager.snapshot().items():
            abuse[names[peer]] = abuse.get(names[peer], 0) + snap.bad_by_kind.get("app", 0)
    fraud = {n: len(fleet.nodes[n].store.fraud_proofs()) for n in fleet.nodes}
    return Report(
        outcome=outcome, reasons=reasons,
        hops=[(names[h.seller], names[h.buyer], h.price) for h in hops_key], holder=names[holder_key],
        winners=winners, replay=replay, ledger=ledger, verified=verified, refused=refused, abuse=abuse,
        fraud=fraud, events=events,
    )
