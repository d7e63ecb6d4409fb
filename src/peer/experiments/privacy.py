"""What each party learns about the social graph: SRA's ledger and messages against IDM and a centralized mechanism.

SRA's motivation is that buyers need not reveal their connections to an
auctioneer.  But every hop entry (seller, buyer) is replicated to every node,
and a hop's buyer is always an invitee of its seller, so each entry is a graph
edge published to everyone.  This module runs many auctions per graph (a
seeded random seller and fresh seeded values each time, rounds mode) and
counts, per auction and cumulatively:

* **ledger edges**: distinct graph edges named by hop entries; every node
  learns them (after its own incident edges, which it knew);
* **relations from messages**: a ContextRequest from parent p naming host h
  tells the receiver that p sits in h's convergecast (p is h's participant or
  below one): an upstream relation it could not see before, counted as a
  (p, h) pair per receiver, not as an edge since it need not be one;
* **IDM / centralized**: every buyer reports its neighbour set to the
  auctioneer (IDM's seller, or CRM's center), which therefore learns every
  edge of the seller's component in every single auction;
* **the restricted-dissemination mode** (``peer.ledger.pseudonymous``, not
  wired into nodes): each auction's chain is rebuilt with real Ed25519
  identities, sealed by its parties, and verified as any node would; what an
  outside node then holds is the announcement and the sealed hops.  Counted
  against every identity key of the graph (an observer who knows them all):
  identities named beyond the seller, edges with both ends named, and
  one-time keys seen in more than one auction (what would let it link them).

Run: ``python -m peer.experiments.privacy [--auctions 100]``.
"""

from __future__ import annotations

import argparse
import hashlib
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
from nacl.signing import SigningKey

from peer.ledger.entries import Announcement, Chain, SignedHop, sign_hop
from peer.ledger.pseudonymous import seal_chain, verify_sealed_chain

from peer.scenario.load import load_scenario
from peer.scenario.model import Scenario
from peer.sim.run import simulate

SCENARIOS = ("karate-club", "les-miserables", "paper-figure2", "ws-20", "small-tree", "ba-1000")
CHECKPOINTS = (1, 10, 100)


@dataclass
class PrivacyRow:
    graph: str
    nodes: int
    edges: int
    auctions: int
    hops_per_auction: float  # edges every node learns per auction (hop entries)
    ledger_edges: dict[int, int] = field(default_factory=dict)  # after k auctions: distinct edges on the ledger
    relations_mean: float = 0.0  # per node, over all auctions: distinct (p, h) relations from context requests
    relations_max: int = 0
    centralized_edges: int = 0  # what IDM's seller or CRM's center learns in ONE auction
    # Restricted-dissemination mode, what an outside node learns (over all auctions):
    sealed_identities: int = 0  # distinct identities named by sealed hops, sellers excluded
    sealed_edges: int = 0  # distinct graph edges with both ends named
    sealed_linked_keys: int = 0  # one-time keys that appear in more than one auction
    sealed_hops: int = 0  # sealed hops built and verified (the path lengths are all it learns)

    def share(self, k: int) -> float:
        return self.ledger_edges.get(k, 0) / self.edges if self.edges else 0.0


def _fresh(scenario: Scenario, rng: random.Random) -> Scenario:
    nodes = sorted(scenario.graph.nodes)
    seller = rng.choice(nodes)
    top = max(1, max(scenario.values.values()))
    values = {n: rng.randint(0, top) for n in nodes}
    values[seller] = 0
    return Scenario(scenario.name, scenario.seed, seller, scenario.graph, values, {}, scenario.source)


class _Identities(dict[str, SigningKey]):
    """A seeded Ed25519 identity per node name, made on first use (ba-1000 uses few of its nodes)."""

    def __missing__(self, name: str) -> SigningKey:
        key = self[name] = SigningKey(hashlib.sha256(f"privacy/identity/{name}".encode()).digest())
        return key


def sealed_view(auction: str, hops: Sequence[tuple[str, str, int]], seller: str,
                identities: dict[str, SigningKey]) -> tuple[Announcement, list[str]]:
    """The chain of ``hops`` (seller name, buyer name, price) signed, sealed, verified: the outsider's view.

    Returns the announcement and the keys the sealed hops publish, in order.
    """
    announcement = Announcement.create(identities[seller], auction=auction, item="item", created_at_ms=0)
    chain = Chain(announcement)
    for s, b, price in hops:
        body = chain.next_body(identities[b].verify_key.encode().hex(), price)
        chain = chain.appended(SignedHop(body=body, seller_sig=sign_hop(identities[s], body),
                                         buyer_sig=sign_hop(identities[b], body)))
    by_key = {k.verify_key.encode().hex(): k for k in identities.values()}
    sealed = seal_chain(chain, by_key)
    verify_sealed_chain(announcement, sealed.sealed)
    return announcement, [key for hop in sealed.sealed for key in (hop.seller_key, hop.buyer_key)]


def measure(scenario: Scenario, auctions: int, *, seed: int = 1, fresh: bool = True,
            sealed: bool = True) -> PrivacyRow:
    """``auctions`` runs on ``scenario``'s graph; with ``fresh``, each with a random seller and random values.

    With ``sealed``, each run's chain is also sealed and what an outside node learns is counted.
    """
    graph = scenario.graph
    rng = random.Random(f"privacy/{scenario.name}/{seed}")
    ledger: set[frozenset[str]] = set()
    relations: dict[str, set[tuple[str, str]]] = {n: set() for n in graph.nodes}
    hops = 0
    identities = _Identities()
    name_of: dict[str, str] = {}
    named: set[str] = set()
    named_edges: set[frozenset[str]] = set()
    key_auctions: dict[str, set[int]] = {}
    row = PrivacyRow(scenario.name, graph.number_of_nodes(), graph.number_of_edges(), auctions, 0.0)
    for k in range(1, auctions + 1):
        run = _fresh(scenario, rng) if fresh else scenario
        result, network = simulate(run, seed=rng.randrange(2**31), mode="rounds")
        for h in result.hops:
            assert graph.has_edge(h.seller, h.buyer)  # a hop's buyer is always its seller's neighbour
            ledger.add(frozenset((h.seller, h.buyer)))
        hops += len(result.hops)
        if sealed and result.hops:
            ann, published = sealed_view(f"{scenario.name}/{k}", [(h.seller, h.buyer, h.price) for h in result.hops],
                                         run.seller, identities)
            name_of.update({key.verify_key.encode().hex(): n for n, key in identities.items()})
            names = [name_of.get(key) for key in published]
            named |= {n for n in names if n is not None and n != run.seller}
            named_edges |= {frozenset(p) for p in zip(names[::2], names[1::2], strict=True) if None not in p}
            for key in published:
                if key != ann.seller:
                    key_auctions.setdefault(key, set()).add(k)
            row.sealed_hops += len(published) // 2
        for name, machine in network.machines.items():
            relations[name] |= {(p, h) for p, h in machine.requests_seen if name not in (p, h)}
        if k in CHECKPOINTS or k == auctions:
            row.ledger_edges[k] = len(ledger)
    row.hops_per_auction = hops / auctions
    row.sealed_identities = len(named)
    row.sealed_edges = len(named_edges)
    row.sealed_linked_keys = sum(1 for runs in key_auctions.values() if len(runs) > 1)
    sizes = [len(r) for r in relations.values()]
    row.relations_mean = sum(sizes) / len(sizes)
    row.relations_max = max(sizes)
    component = nx.node_connected_component(graph, scenario.seller)
    row.centralized_edges = graph.subgraph(component).number_of_edges()
    return row


def _connected_gnp(n: int, p: float, seed: int) -> nx.Graph:
    graph = nx.gnp_random_graph(n, p, seed=seed)
    return graph.subgraph(max(nx.connected_components(graph), key=len)).copy()


def generated() -> Iterator[Scenario]:
    from peer.scenario.model import explicit_scenario

    for name, graph in (("gnp-60", _connected_gnp(60, 0.1, 5)),
                        ("ba-200", nx.barabasi_albert_graph(200, 2, seed=5)),
                        ("ws-100", nx.connected_watts_strogatz_graph(100, 4, 0.1, seed=5))):
        edges = [(str(u), str(v)) for u, v in graph.edges]
        values = {str(n): 100 for n in graph.nodes}  # the scale; each auction draws its own values
        yield explicit_scenario(edges, values, seller=str(min(graph.nodes)), seed=5, name=name)


def scenario_dir() -> Path:
    here = Path.cwd() / "scenarios"
    return here if here.is_dir() else Path(__file__).resolve().parents[3] / "scenarios"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auctions", type=int, default=100)
    parser.add_argument("--big-auctions", type=int, default=20, help="auctions on ba-1000")
    args = parser.parse_args(argv)
    cases = [load_scenario(scenario_dir() / f"{name}.toml") for name in SCENARIOS] + list(generated())
    print("graph           nodes  edges  auctions  hops/auction  ledger edges after k auctions (share of E)"
          "                relations per node (mean, max)  centralized: edges per auction"
          "  | sealed mode, outsider: identities beyond sellers, edges, linked keys (hops sealed)")
    for scenario in cases:
        auctions = args.big_auctions if scenario.graph.number_of_nodes() > 500 else args.auctions
        row = measure(scenario, auctions)
        marks = ", ".join(f"{k}: {row.ledger_edges[k]} ({row.share(k):.1%})" for k in sorted(row.ledger_edges))
        print(f"{row.graph:<15} {row.nodes:>5}  {row.edges:>5}  {row.auctions:>8}  {row.hops_per_auction:>12.2f}  "
              f"{marks:<58}  {row.relations_mean:>8.2f}, {row.relations_max:<4}  {row.centralized_edges:>8}"
              f"  | {row.sealed_identities}, {row.sealed_edges}, {row.sealed_linked_keys} ({row.sealed_hops})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
