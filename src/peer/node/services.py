"""What a mechanism's shell collaborator may ask of the node that hosts it.

The SRA collaborator (:mod:`peer.sra.shell`) and the QPQ one
(:mod:`peer.qpq.node_shell`) are given the node as a :class:`NodeServices`:
they never import :class:`peer.node.node.Node`, so there is no import circle
and each mechanism's shell code lives with the mechanism.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from peer.ledger.store import LedgerStore
from peer.net.identity import Identity
from peer.node.config import NodeConfig


class NodeServices(Protocol):
    config: NodeConfig
    identity: Identity
    me: str
    store: LedgerStore
    neighbours: list[str]
    messages_out: int
    store_failure: str | None  # why the last ledger write failed (None: the ledger is writable)

    def send(self, to: str, msg: Any) -> None: ...

    def publish(self, payload: Any) -> None: ...

    def publish_topic(self, topic: str, payload: bytes) -> None: ...

    def publish_scoped(self, payload: Any) -> None: ...

    def is_live(self, auction: str) -> bool: ...

    async def persist(self, entries: Sequence[Any]) -> bool: ...

    async def run_sync(self, fn: Any, *args: Any) -> Any: ...

    def emit(self, kind: str, **fields: Any) -> None: ...

    def reject(self, peer: str, reason: str, **evidence: Any) -> None: ...

    def bad_input(self, who: str, reason: str) -> None: ...

    def note(self, line: str) -> None: ...

    def n(self, key: str) -> str: ...
