"""The cluster file of node-hosted providers (``peer run --provider CLUSTER``) and its round schedule.

One file, JSON or TOML, that every provider and every user node reads::

    providers = ["p0=ws://10.0.0.1:9001#<key hex>", "p1=#<key hex>", ...]  # or bare key hex
    clients = ["<key hex>", ...]  # who may submit bids: user nodes and bid clients
    closers = ["<key hex>"]       # who may close a round's bids early (default: the clients)
    k = 1
    auction = "double"            # or "standard"
    interval = 10.0               # seconds between the starts of rounds
    bid_window = 4.0              # seconds a round collects bids (less than interval)
    phase_timeout = 5.0           # each later phase; a timeout is ⊥ naming the silent
    epoch = 0.0                   # wall-clock time of round 1's start
    address_dir = "addr"          # optional, one host only: providers publish <key>.addr here

How the cluster's links are made: every provider node adds the other
providers as neighbours (dialling those with a URL, accepting the others) and
every client key as a neighbour that dials in.  A provider listed without a
URL must be dialled by the others, or publish its address in ``address_dir``
(relative to the cluster file), which is how local clusters on port 0 find
each other.  The file of today's standalone providers (``peer auctioneer
setup``: providers as bare keys, no schedule) loads too.

Rounds are scheduled on the shared wall clock (NTP across hosts, as QPQ's
kickoff): round r starts at ``epoch + (r - 1) * interval``, collects bids for
``bid_window`` seconds, then runs agreement, validation, coin, tasks and
signatures.  Every provider derives the same round numbers from the same file,
so no one needs to start a round.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peer.auctioneer.shell import Cluster, ClusterError
from peer.node.config import ConfigError, NeighbourSpec, parse_neighbours

DEFAULT_INTERVAL = 10.0
DEFAULT_BID_WINDOW = 4.0


@dataclass(frozen=True)
class NodeCluster:
    """A :class:`Cluster` plus where the providers are and when rounds run."""

    base: Cluster  # keys, k, auction, timeouts (what the machines and the bid client need)
    specs: tuple[NeighbourSpec, ...]  # one per provider, sorted by key; host/port None if not given
    closers: frozenset[bytes]
    interval: float = DEFAULT_INTERVAL
    epoch: float = 0.0
    address_dir: Path | None = None
    source: Path | None = field(default=None, compare=False)
    scheduled: bool = True  # False: a standalone cluster file (rounds start when a client sends bids)

    # -- schedule

    def round_at(self, now: float) -> int:
        """The round whose slot contains ``now`` (round 1 before the epoch)."""
        return max(1, math.floor((now - self.epoch) / self.interval) + 1)

    def start_of(self, round_no: int) -> float:
        return self.epoch + (round_no - 1) * self.interval

    def bid_deadline(self, round_no: int) -> float:
        return self.start_of(round_no) + self.base.bid_window

    def open_round(self, now: float, margin: float = 0.0) -> int:
        """The round to bid for at ``now``: the current one if its window stays open ``margin`` s more."""
        current = self.round_at(now)
        return current if now + margin < self.bid_deadline(current) else current + 1

    # -- who is who

    @property
    def providers(self) -> tuple[bytes, ...]:
        return self.base.providers

    def name_of(self, key: bytes) -> str:
        for spec in self.specs:
            if spec.pubkey == key:
                return spec.name
        return key.hex()[:12]

    def neighbour_specs(self, me: bytes) -> list[NeighbourSpec]:
        """What a member node links to: the other providers, and (a provider) the clients, who dial in."""
        out = [s for s in self.specs if s.pubkey != me]
        if me in self.providers:
            out += [NeighbourSpec(name=f"client-{c.hex()[:8]}", pubkey=c) for c in sorted(self.base.clients)
                    if c != me and c not in self.providers]
        return out

    @staticmethod
    def load(path: Path) -> NodeCluster:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ClusterError(f"{path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ClusterError(f"{path}: not text") from None
        try:
            raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ClusterError(f"{path}: not {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}") from None
        if not isinstance(raw, dict):
            raise ClusterError(f"{path}: not a table of settings")
        return _parse(raw, path)


def _parse(raw: dict[str, Any], path: Path) -> NodeCluster:
    entries = raw.get("providers")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, str) for e in entries):
        raise ClusterError(f"{path}: 'providers' must be a non-empty list of NAME=ws://HOST:PORT#KEY or key hex")
    try:
        specs = parse_neighbours(",".join(
            e if "#" in e else f"p{i}=#{e}" for i, e in enumerate(entries)))
    except ConfigError as exc:
        raise ClusterError(f"{path}: providers: {exc}") from None
    keys = [s.pubkey for s in specs]
    if len(set(keys)) != len(keys):
        raise ClusterError(f"{path}: a provider key is listed twice")
    try:
        clients = frozenset(bytes.fromhex(c) for c in raw.get("clients", []))
        closers = frozenset(bytes.fromhex(c) for c in raw["closers"]) if "closers" in raw else clients
        # A standalone cluster file (no schedule) keeps its 30 s default window, in 60 s slots.
        bid_window = float(raw.get("bid_window", DEFAULT_BID_WINDOW if "interval" in raw else 30.0))
        interval = float(raw.get("interval", max(DEFAULT_INTERVAL, 2 * bid_window)))
        epoch = float(raw.get("epoch", 0.0))
        base = Cluster(tuple(sorted(keys)), clients, int(raw["k"]), str(raw.get("auction", "double")),
                       float(raw.get("phase_timeout", 5.0)), bid_window)
    except KeyError as exc:
        raise ClusterError(f"{path}: missing {exc}") from None
    except (ValueError, TypeError) as exc:
        raise ClusterError(f"{path}: malformed cluster file ({exc})") from None
    if any(len(c) != 32 for c in (*clients, *closers)):
        raise ClusterError(f"{path}: client and closer keys are 64 hex characters")
    if not (0 < base.phase_timeout <= 3600 and 0 < bid_window <= 86400):
        raise ClusterError(f"{path}: phase_timeout must be in (0, 3600] s and bid_window in (0, 86400] s")
    if "interval" in raw and not (bid_window < interval <= 86400) or not math.isfinite(epoch):
        raise ClusterError(f"{path}: interval must be longer than bid_window (and at most 86400 s), epoch finite")
    from peer.auctioneer.provider import RoundConfig

    try:
        RoundConfig(1, base.auction, base.providers, base.k, 0.0)
    except ValueError as exc:
        raise ClusterError(f"{path}: {exc}") from None
    address_dir = raw.get("address_dir")
    if address_dir is not None and not isinstance(address_dir, str):
        raise ClusterError(f"{path}: address_dir must be a path")
    return NodeCluster(
        base, tuple(sorted(specs, key=lambda s: s.pubkey)), closers, interval, epoch,
        None if address_dir is None else (path.parent / address_dir).resolve(), path.resolve(), "interval" in raw,
    )


def dump(cluster: NodeCluster, path: Path) -> None:
    """Write ``cluster`` as JSON (what ``peer auctioneer setup --nodes`` writes)."""
    data: dict[str, Any] = {
        "providers": [f"{s.name}=" + (f"ws://{s.host}:{s.port}" if s.host else "") + f"#{s.pubkey.hex()}"
                      for s in cluster.specs],
        "clients": sorted(c.hex() for c in cluster.base.clients),
        "closers": sorted(c.hex() for c in cluster.closers),
        "k": cluster.base.k, "auction": cluster.base.auction, "interval": cluster.interval,
        "bid_window": cluster.base.bid_window, "phase_timeout": cluster.base.phase_timeout, "epoch": cluster.epoch,
    }
    if cluster.address_dir is not None:
        data["address_dir"] = str(cluster.address_dir)
    path.write_text(json.dumps(data, indent=1))
