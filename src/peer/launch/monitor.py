"""Follow every node's NDJSON event log and keep a picture of the whole network.

The launcher learns everything from the same event files an operator gets
with ``peer run --log-json``; it never reaches into a node process.
"""

from __future__ import annotations

import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from peer.launch.plan import NodePlan
from peer.money import parse_money
from peer.node.eventlog import Tail
from peer.tui.snapshot import LedgerRow, NodeSnapshot


@dataclass
class NetworkState:
    plans: list[NodePlan]
    names: dict[str, str]  # safe name (as logged) -> scenario name
    by_key: dict[str, str]  # public key hex -> scenario name
    seller: str
    nodes: dict[str, NodeSnapshot] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    seller_waiting: bool = False
    finals: dict[str, dict[str, Any]] = field(default_factory=dict)
    ledger: dict[int, LedgerRow] = field(default_factory=dict)
    ledger_copies: Counter[str] = field(default_factory=Counter)
    sends: Counter[str] = field(default_factory=Counter)  # per stage
    send_times: deque[float] = field(default_factory=lambda: deque(maxlen=20000))
    errors: list[str] = field(default_factory=list)
    frauds: list[dict[str, Any]] = field(default_factory=list)
    settled_at: dict[str, float] = field(default_factory=dict)
    # For fault injection (--kill, --behaviour, --restart-after); see peer.launch.faults.
    starts: Counter[str] = field(default_factory=Counter)  # "started" events: 2+ means restarted
    stages_seen: dict[str, list[str]] = field(default_factory=dict)  # every stage each node logged, in order
    last_stage: dict[str, dict[str, Any]] = field(default_factory=dict)  # each node's last "stage" event
    bid_to: dict[str, str] = field(default_factory=dict)  # node -> the neighbour it sent its Bid to (its parent)
    aborts: dict[str, dict[str, Any]] = field(default_factory=dict)
    recovered: dict[str, dict[str, Any]] = field(default_factory=dict)
    adversary: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # what attackers say they did
    refusals: Counter[str] = field(default_factory=Counter)  # node -> "bad" events it logged
    ignored: Counter[str] = field(default_factory=Counter)  # node -> messages ignored after a restart
    last_event: dict[str, float] = field(default_factory=dict)  # node -> monotonic time of its last event

    def __post_init__(self) -> None:
        self._tails = {p.name: Tail(p.log_path) for p in self.plans}
        for p in self.plans:
            self.nodes[p.name] = NodeSnapshot(name=p.name, key=p.identity.name, links_total=p.degree,
                                              role="seller" if p.name == self.seller else "other")
        self._links: dict[str, set[str]] = {p.name: set() for p in self.plans}
        self._dials = {p.name: {self.names.get(nb, nb) for nb in p.dials} for p in self.plans}

    # ------------------------------------------------------------------ input

    def poll(self) -> int:
        """Read whatever the nodes appended since the last call; return the number of events."""
        count = 0
        for name, tail in self._tails.items():
            # One stat instead of an open, a read and a close: most logs are idle at most polls
            # (a thousand nodes polled every 50 ms took a sixth of a core before any event was parsed).
            try:
                if os.stat(tail.path).st_size == tail.offset:
                    continue
            except OSError:
                continue
            for event in tail.read_new():
                self._apply(name, event)
                count += 1
        return count

    def _apply(self, name: str, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        snap = self.nodes[name]
        self.last_event[name] = time.monotonic()
        if kind == "started":
            self.started.add(name)
            self.starts[name] += 1
            if self.starts[name] > 1:  # a restarted process: its old links died with it
                self._links[name] = set()
                snap.links_up = 0
        elif kind == "waiting":
            self.seller_waiting = True
        elif kind == "link":
            peer = self.names.get(str(event.get("peer")), str(event.get("peer")))
            (self._links[name].add if event.get("up") else self._links[name].discard)(peer)
            snap.links_up = len(self._links[name])
        elif kind == "stage":
            snap.stage = str(event.get("stage"))
            self.stages_seen.setdefault(name, []).append(snap.stage)
            self.last_stage[name] = event
            snap.inviters = [self.by_key.get(k, k[:8]) for k in event.get("inviters", [])]
            snap.invitees = [self.by_key.get(k, k[:8]) for k in event.get("invitees", [])]
        elif kind == "send":
            snap.messages_out += 1
            if event.get("type") == "Bid":
                self.bid_to[name] = self.names.get(str(event.get("peer")), str(event.get("peer")))
            self.sends[str(event.get("stage"))] += 1
            self.send_times.append(time.monotonic())
        elif kind == "recv":
            snap.messages_in += 1
        elif kind == "bad":
            snap.bad_frames += 1
            self.refusals[name] += 1
        elif kind == "ledger":
            position = int(event.get("position", 0))
            snap.ledger_entries = max(snap.ledger_entries, position + 1)
            digest = str(event.get("entry"))
            self.ledger_copies[digest] += 1
            if position > 0 and position not in self.ledger:
                price = parse_money(str(event.get("price")))
                buyer = self.nodes.get(self.by_key.get(str(event.get("buyer_key")), ""))
                seller = self.nodes.get(self.by_key.get(str(event.get("seller_key")), ""))
                if buyer is not None:
                    buyer.bought_at, buyer.role = price, "local seller"
                if seller is not None:
                    seller.sold_at = price
                self.ledger[position] = LedgerRow(
                    hop=position,
                    seller=self.by_key.get(str(event.get("seller_key")), str(event.get("seller"))),
                    buyer=self.by_key.get(str(event.get("buyer_key")), str(event.get("buyer"))),
                    price=parse_money(str(event.get("price"))),
                    digest=digest,
                )
        elif kind == "settled":
            snap.winner = self.by_key.get(str(event.get("winner_key")), str(event.get("winner")))
            self.settled_at[name] = time.monotonic()
        elif kind == "final":
            self.finals[name] = event
            self._final_roles(name, event)
        elif kind == "fraud":
            self.frauds.append(event)
        elif kind == "error":
            self.errors.append(f"{name}: {event.get('reason')}")
        elif kind == "aborted":
            self.aborts[name] = event
            snap.stage = "aborted"
        elif kind == "recovered":
            self.recovered[name] = event
            lengths = event.get("auctions") or {}
            snap.ledger_entries = max([snap.ledger_entries, *(int(v) for v in lengths.values())])
        elif kind == "adversary":
            self.adversary.setdefault(name, []).append(event)
        elif kind == "ignored":
            self.ignored[name] += 1

    def _final_roles(self, name: str, event: dict[str, Any]) -> None:
        snap = self.nodes[name]
        snap.stage = "settled"
        snap.inviters = [self.by_key.get(k, k[:8]) for k in event.get("inviters", [])]
        snap.invitees = [self.by_key.get(k, k[:8]) for k in event.get("invitees", [])]
        snap.bought_at = parse_money(event["bought_at"]) if event.get("bought_at") else None
        snap.sold_at = parse_money(event["sold_at"]) if event.get("sold_at") else None
        winner = self.by_key.get(str(event.get("winner")))
        if name == self.seller:
            snap.role = "seller"
        elif winner == name:
            snap.role = "winner"
        elif snap.bought_at is not None:
            snap.role = "local seller"

    # -------------------------------------------------------------- questions

    def dialled(self) -> set[str]:
        """Nodes that started and whose links to the neighbours they dial are up."""
        return {n for n in self.started if self._dials[n] <= self._links[n]}

    def all_linked(self) -> bool:
        return all(s.links_up >= s.links_total for s in self.nodes.values()) and len(self.started) == len(self.nodes)

    def all_final(self) -> bool:
        return len(self.finals) == len(self.nodes)

    def message_rate(self, window: float = 1.0) -> float:
        now = time.monotonic()
        return sum(1 for t in self.send_times if now - t <= window) / window

    def ledger_rows(self) -> list[LedgerRow]:
        return [
            LedgerRow(r.hop, r.seller, r.buyer, r.price, r.digest, self.ledger_copies[r.digest])
            for _, r in sorted(self.ledger.items())
        ]
