"""What a view needs to know about a node, as plain data (no live objects)."""

from __future__ import annotations

from dataclasses import dataclass, field

STAGES = ("idle", "gathering", "aggregating", "reported", "hosting", "settled")


@dataclass
class NodeSnapshot:
    name: str
    key: str = ""  # short form of the public key
    stage: str = "idle"
    role: str = "other"
    value: int | None = None
    inviters: list[str] = field(default_factory=list)
    invitees: list[str] = field(default_factory=list)
    parent: str | None = None
    bought_at: int | None = None
    sold_at: int | None = None
    links_up: int = 0
    links_total: int = 0
    messages_in: int = 0
    messages_out: int = 0
    bad_frames: int = 0
    ledger_entries: int = 0
    winner: str | None = None
    alive: bool = True
    error: str | None = None


@dataclass(frozen=True)
class LedgerRow:
    hop: int
    seller: str
    buyer: str
    price: int
    digest: str
    copies: int = 0  # nodes holding this entry


@dataclass(frozen=True)
class NodeIdentity:
    """How neighbours reach a running node: what ``peer run`` shows at start."""

    name: str
    public_key: str  # hex
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    @property
    def neighbour_spec(self) -> str:
        """The exact ``--neighbours`` item another node needs to link to this one."""
        return f"{self.name}={self.url}#{self.public_key}"

    @property
    def wildcard(self) -> bool:
        """Listening on every interface: neighbours must use one of this machine's real addresses."""
        return self.host in ("0.0.0.0", "::", "")
