"""Turn a scenario into per-node keys, ports, directories and ``peer run`` arguments."""

from __future__ import annotations

import hashlib
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from peer.money import format_money
from peer.net.identity import Identity
from peer.scenario.model import Scenario

ITEM = "item"


@dataclass(frozen=True)
class NodePlan:
    name: str
    identity: Identity
    port: int
    key_path: Path
    data_dir: Path
    log_path: Path
    out_path: Path
    argv: list[str]
    wave: int = 0  # staged start: the node starts once every node of the earlier waves listens

    @property
    def key_hex(self) -> str:
        return self.identity.public_hex

    @property
    def dials(self) -> list[str]:
        """The (file-safe) names of the neighbours this node dials: those given with an address."""
        spec = self.argv[self.argv.index("--neighbours") + 1]
        return [name for name, _, rest in (item.strip().partition("=") for item in spec.split(","))
                if name and not rest.startswith("#")]

    @property
    def degree(self) -> int:
        """Neighbours in this node's ``--neighbours`` (those it dials and those that only dial it)."""
        spec = self.argv[self.argv.index("--neighbours") + 1]
        return sum(1 for item in spec.split(",") if item.strip())


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports the OS says are free now (bound together, then released).

    Taken below the kernel's ephemeral range when there is room: a port from that range
    (what binding port 0 gives) can be handed to another node's outgoing connection
    before its own node binds it, and with a thousand nodes dialling at once one of
    them then failed to start ("address in use").  Ports below the range are never
    given out for outgoing connections.
    """
    low, _ = _ephemeral_range()
    floor = 10000  # clear of the well-known and most registered service ports
    chosen: list[int] = []
    sockets = []
    try:
        if low - floor >= 2 * count:
            start = floor + secrets.randbelow(low - floor - count)
            for port in (*range(start, low), *range(floor, start)):
                if len(chosen) == count:
                    break
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    sock.bind((host, port))
                except OSError:
                    sock.close()
                    continue
                sockets.append(sock)
                chosen.append(port)
        while len(chosen) < count:  # no room below the range: the OS's choice
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
            chosen.append(sock.getsockname()[1])
        return chosen
    finally:
        for sock in sockets:
            sock.close()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default; elsewhere only a guess, and port 0 still works


def launch_identity(scenario: Scenario, seed: int, node: str) -> Identity:
    """A key derived from the scenario, the seed and the node: a launch replays exactly.

    Real deployments use ``peer keygen`` (OS randomness); these keys are for
    local scenario runs only, where reproducibility matters more than secrecy.
    """
    material = hashlib.sha256(f"peer/launch/{scenario.name}/{seed}/{node}".encode()).digest()
    return Identity.from_seed(material)


def plan_nodes(
    scenario: Scenario,
    workdir: Path,
    *,
    seed: int,
    gather_window: float,
    reply_timeout: float,
    context_timeout: float,
    confirm_timeout: float | None = None,
    paper_resale: bool = False,
    verifiable_coins: bool = False,
    addresses: dict[str, tuple[str, int]] | None = None,
    wave_size: int | None = None,
) -> list[NodePlan]:
    """``addresses``: node -> (host, port) when the nodes run on several hosts (peer.launch.hosts);
    by default every node listens on a free port of 127.0.0.1.

    ``wave_size``: a staged start (see :func:`start_order`).  Each node is given the address of
    the neighbours that start before it only, and pins the others as neighbours that dial it
    (``NAME=#KEY``): one dial per link, always to a node that listens already.  Without it every
    node dials every neighbour (the higher key a moment later), as for nodes started together.
    """
    nodes = sorted(scenario.graph.nodes)
    if addresses is None:
        addresses = {n: ("127.0.0.1", p) for n, p in zip(nodes, free_ports(len(nodes)), strict=True)}
    ports = {n: addresses[n][1] for n in nodes}
    identities = {n: launch_identity(scenario, seed, n) for n in nodes}
    position = {n: i for i, n in enumerate(start_order(identities))} if wave_size else None
    for sub in ("keys", "data", "logs"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    plans = []
    for node in nodes:
        ident = identities[node]
        key_path = workdir / "keys" / f"{_safe(node)}.key"
        if not key_path.exists():
            ident.save(key_path)
        neighbours = ",".join(
            f"{_safe(nb)}=ws://{addresses[nb][0]}:{ports[nb]}#{identities[nb].public_hex}"
            if position is None or position[nb] < position[node] else f"{_safe(nb)}=#{identities[nb].public_hex}"
            for nb in scenario.neighbours(node)
        )
        log_path = workdir / "logs" / f"{_safe(node)}.ndjson"
        data_dir = workdir / "data" / _safe(node)
        argv = [
            "run",
            "--port", str(ports[node]),
            "--host", addresses[node][0],
            "--key", str(key_path),
            "--name", _safe(node),
            "--value", format_money(scenario.values[node]),
            "--neighbours", neighbours,
            "--seed", str(seed),
            "--data-dir", str(data_dir),
            "--log-json", str(log_path),
            "--gather-window", repr(gather_window),
            "--reply-timeout", repr(reply_timeout),
            "--context-timeout", repr(context_timeout),
            "--confirm-timeout", repr(3 * context_timeout if confirm_timeout is None else confirm_timeout),
            "--no-tui",
        ]
        if paper_resale:
            argv.append("--paper-resale")
        if verifiable_coins:
            argv.append("--verifiable-coins")
        if node == scenario.seller:
            # No --auction-id: the seller derives it from its key (an explicit id is open to squatting);
            # the check reads it from the seller's "announced" event.
            argv += ["--sell", ITEM, "--start-on-signal"]
        plans.append(NodePlan(
            name=node, identity=ident, port=ports[node], key_path=key_path, data_dir=data_dir,
            log_path=log_path, out_path=workdir / "logs" / f"{_safe(node)}.out", argv=argv,
            wave=position[node] // wave_size if position is not None and wave_size else 0,
        ))
    return plans


def start_order(identities: dict[str, Identity]) -> list[str]:
    """The order of a staged start: by public key, highest first.

    Each node dials only the neighbours before it, which are listening by then (their
    wave started before, or they are earlier in its own wave).  Highest key first makes
    the dialling side of every link the lower key, which the link layer lets dial at
    once (the higher key of a pair waits ``defer_dial`` before its first dial, expecting
    the lower key's), and whose link it would keep if both sides ever dialled.
    """
    return sorted(identities, key=lambda n: identities[n].public_key, reverse=True)


def _safe(name: str) -> str:
    """Node names become file names and --neighbours keys: keep them plain."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return cleaned or "node"
