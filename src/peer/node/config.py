"""A node's configuration, and parsing of ``--neighbours``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from peer.errors import PeerError


class ConfigError(PeerError):
    """A node option is malformed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class NeighbourSpec:
    """A configured neighbour: a local name, its pinned public key, and where to dial it (if we do)."""

    name: str
    pubkey: bytes
    host: str | None = None
    port: int | None = None
    dial: Any = None  # any other transport's address (the in-memory hub's names, in tests)

    @property
    def address(self) -> Any:
        if self.host is not None and self.port is not None:
            return (self.host, self.port)
        return self.dial


def parse_neighbours(text: str, what: str = "--neighbours") -> list[NeighbourSpec]:
    """Parse ``b=ws://127.0.0.1:9002#<pubkey hex>,c=ws://...#<hex>``.

    ``name=#<hex>`` (no URL) pins a neighbour that only dials us.  ``what`` names
    the input in errors (the option, or the control command's argument).
    """
    specs: list[NeighbourSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(filter(None, (part.strip() for part in text.split(",")))):
        name, eq, rest = item.partition("=")
        if not eq or not name:
            raise ConfigError(f"{what}{f' item {index + 1}' if what.startswith('--') else ''} {item!r}: expected NAME=ws://HOST:PORT#PUBKEY")
        url, hash_, key_hex = rest.partition("#")
        if not hash_:
            raise ConfigError(f"{what} {name}: missing '#<public key hex>' (keys are pinned)")
        try:
            pubkey = bytes.fromhex(key_hex)
        except ValueError:
            raise ConfigError(f"{what} {name}: public key is not hex") from None
        if len(pubkey) != 32:
            raise ConfigError(f"{what} {name}: public key must be 32 bytes (64 hex digits)")
        host = port = None
        if url:
            parts = urlsplit(url)
            if parts.scheme != "ws" or not parts.hostname or parts.port is None:
                raise ConfigError(f"{what} {name}: URL must look like ws://HOST:PORT, got {url!r}")
            host, port = parts.hostname, parts.port
        if name in seen:
            raise ConfigError(f"{what}: {name!r} given twice")
        seen.add(name)
        specs.append(NeighbourSpec(name=name, pubkey=pubkey, host=host, port=port))
    return specs


@dataclass(frozen=True)
class NodeConfig:
    """Everything ``peer run`` needs (times in seconds; value in minor units)."""

    key_path: Path
    port: int
    value: int
    neighbours: list[NeighbourSpec] = field(default_factory=list)
    name: str | None = None
    host: str = "127.0.0.1"
    sell: str | None = None  # the item, if this node sells
    auction_id: str | None = None
    seed: int = 0
    data_dir: Path | None = None
    log_json: Path | None = None
    gather_window: float = 0.2
    reply_timeout: float = 30.0
    context_timeout: float = 30.0
    confirm_timeout: float = 90.0  # guarded resale: the seller's wait for her buyer's answer
    paper_resale: bool = False  # the paper's literal stage 3 (every node of an auction must agree)
    verifiable_coins: bool = False  # parents picked by verifiable coins (every node of an auction must agree)
    start_on_signal: bool = False
    start_timeout: float = 60.0  # the seller starts anyway once this passes with neighbours missing
    exit_when_done: bool = False
    done_grace: float = 1.0
    qpq_plan: Path | None = None  # take part in a QPQ resource stream (tools/launch writes the plan)
    provider_cluster: Path | None = None  # take the distributed auctioneer's provider role (peer.auctioneer.cluster)
    values_file: Path | None = None  # per-item values (TOML; default DATA_DIR/values.toml if it exists)
    max_auctions: int = 64  # auctions in flight at once
    max_per_neighbour: int = 32  # ... opened here by one neighbour's invitations
    max_per_seller: int = 8  # ... of one seller
    keep_outcomes: int = 100  # recent outcomes kept in memory for status
    control: bool = True  # serve the control socket DATA_DIR/control.sock
    heartbeat: float | None = None  # link heartbeat interval (idle timeout 3x); None: the link layer's 5 s
