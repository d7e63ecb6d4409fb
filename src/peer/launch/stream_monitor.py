"""What the workload dashboard shows, learned from the nodes' event logs and the launcher's own runs.

Like :mod:`peer.launch.monitor`, it reads the NDJSON files an operator gets with
``peer run --log-json`` and never reaches into a node.  A stream of auctions
logs a ``send`` and a ``recv`` line per protocol message (about a thousand per
auction on 100 nodes); none of them changes what the dashboard shows, so they
are skipped before they are parsed, which keeps the launcher's share of the
machine small.

An auction in flight is in one of these stages (the network's, not one node's):

* ``starting``: the launcher asked its seller to sell; no announcement logged yet;
* ``diffusion``: announced, and some node still gathers invitations (stage 1);
* ``aggregation``: every node reached has forwarded; bids travel up (stage 2);
* ``allocation``: the seller hosts hop 1, or a hop is on the ledger (stage 3);
* ``settling``: a node logged the settlement; ledger copies complete, then it ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from peer.launch.plan import NodePlan
from peer.node.eventlog import Tail
from peer.tui.stream_view import OutcomeRow, StreamSnapshot

if TYPE_CHECKING:
    from peer.launch.workload import AuctionRun

RECENT = 10.0  # seconds the "recent" rate looks back
KEEP = 50  # outcomes kept for the table (the screen shows fewer)
_SKIPPED = (b'"kind":"send"', b'"kind":"recv"')  # the bulk of a node's log; nothing here needs them


@dataclass
class _Flight:
    """One auction in flight, as the logs show it."""

    seller: str
    gathering: set[str] = field(default_factory=set)  # nodes whose last stage is "gathering"
    hosting: bool = False
    hops: int = 0
    settled: bool = False

    def stage(self) -> str:
        if self.settled:
            return "settling"
        if self.hosting or self.hops:
            return "allocation"
        return "diffusion" if self.gathering else "aggregation"


class StreamMonitor:
    """Follows every node's log and the launcher's runs; ``snapshot()`` is what the view draws."""

    def __init__(self, plans: list[NodePlan], runs: list[AuctionRun], *, title: str, concurrency: int,
                 clock: Any = time.monotonic) -> None:
        self.runs = runs
        self.title = title
        self.concurrency = concurrency
        self.clock = clock
        self.status = "linking"
        self.stopped: float | None = None  # the clock stops here once the last auction ended
        self._tails = {p.name: Tail(p.log_path, skip=_SKIPPED) for p in plans}
        self._degree = {p.name: p.degree for p in plans}
        self._links: dict[str, set[str]] = {p.name: set() for p in plans}
        self._by_item = {r.item: r for r in runs}
        self._flights: dict[str, _Flight] = {}  # auction id -> what the logs say of it
        self._item_of: dict[str, str] = {}  # auction id -> item (from the seller's "announced")

    # ------------------------------------------------------------------ input

    def poll(self) -> None:
        for name, tail in self._tails.items():
            for event in tail.read_new():
                self.apply(name, event)

    def apply(self, node: str, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "link":
            if self.stopped is not None:
                return  # the stream is over: links now drop because the launcher stops the nodes
            peer = str(event.get("peer"))
            (self._links[node].add if event.get("up") else self._links[node].discard)(peer)
            return
        if kind == "started":
            self._links[node] = set()  # a (re)started process has no links yet
            return
        auction = event.get("auction")
        if not isinstance(auction, str):
            return
        if kind == "announced":
            run = self._by_item.get(str(event.get("item")))
            if run is not None and run.outcome == "pending":
                self._item_of[auction] = run.item
                self._flights[auction] = _Flight(seller=node)
            return
        flight = self._flights.get(auction)
        if flight is None:
            return  # an auction this run did not start, or one already over
        if kind == "stage":
            stage = event.get("stage")
            (flight.gathering.add if stage == "gathering" else flight.gathering.discard)(node)
            if stage == "hosting" and node == flight.seller:
                flight.hosting = True
        elif kind == "ledger":
            flight.hops = max(flight.hops, int(event.get("position", 0) or 0))
        elif kind == "settled":
            flight.settled = True

    # -------------------------------------------------------------- the view

    def linked(self) -> int:
        return sum(1 for n, up in self._links.items() if len(up) >= self._degree[n])

    def snapshot(self) -> StreamSnapshot:
        now = self.clock() if self.stopped is None else self.stopped
        started = [r for r in self.runs if r.started]
        t0 = min((r.started for r in started), default=None)
        done = [r for r in started if r.outcome != "pending"]
        for auction in [a for a, item in self._item_of.items() if self._by_item[item].outcome != "pending"]:
            self._flights.pop(auction, None)  # over: it leaves the dashboard's memory
            del self._item_of[auction]
        stage_of_item = {self._item_of[a]: f.stage() for a, f in self._flights.items()}
        in_flight: dict[str, int] = {}
        for run in started:
            if run.outcome == "pending":
                stage = stage_of_item.get(run.item, "starting")
                in_flight[stage] = in_flight.get(stage, 0) + 1
        elapsed = 0.0 if t0 is None else now - t0
        finished_times = [r.ended for r in done]
        recent = sum(1 for t in finished_times if now - t <= RECENT)
        latencies = sorted(r.latency for r in done if r.outcome in ("completed", "aborted"))
        last = sorted(done, key=lambda r: r.ended)[-KEEP:]
        return StreamSnapshot(
            title=self.title, nodes=len(self._tails), linked=self.linked(), total=len(self.runs),
            concurrency=self.concurrency, elapsed=elapsed, in_flight=in_flight,
            completed=sum(r.outcome == "completed" for r in done),
            aborted=sum(r.outcome == "aborted" for r in done), failed=sum(r.outcome == "failed" for r in done),
            rate=len(done) / elapsed if done and elapsed > 0 else None,
            recent_rate=recent / min(RECENT, elapsed) if done and elapsed > 0 else None,
            p50=percentile(latencies, 0.5), p95=percentile(latencies, 0.95),
            last=[OutcomeRow(r.index, r.item, r.seller, r.outcome, r.winner, r.price, r.hops, r.latency, r.error)
                  for r in last],
            status=self.status,
        )


def percentile(ordered: list[float], p: float) -> float | None:
    """The ``p`` quantile of an ascending list (nearest rank, as the summary computes it), or None."""
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else None
