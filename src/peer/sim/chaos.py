"""A seeded chaos router: message loss, duplication, extra delay and reordering in the simulator.

Every message the simulator sends passes :meth:`ChaosRouter.route`, which
decides, with one seeded random stream, the delays at which its copies arrive:

* ``drop``: with this probability the message is lost (no copy arrives);
* ``dup``: with this probability a second copy arrives too, with its own
  independent delay (so the copies may arrive in either order);
* ``delay``: every copy is held back by an extra uniform [0, ``delay``];
* ``reorder``: with this probability a copy is held back by a further
  uniform [1, 2] x ``reorder_span``.  With the default span of 2 time units
  (twice the longest base transit) later messages on the same link, and the
  replies they cause, overtake it: FIFO order per link is broken.

``stages``, ``messages`` and ``links`` restrict the faults to messages of
those stages (``peer.sra.behaviours.MESSAGE_STAGES``), of those types
(``Award``, ``Settled``, ...) or on those undirected links; other messages
pass untouched.  The random stream is drawn only for messages the
faults apply to, in the order the simulator sends them, so a run is a pure
function of (scenario, run seed, chaos config): reproducible.

Every delay is bounded (``max_extra``), so the simulator can compute a
horizon by which any run must be over, and ``default_config`` can make the
nodes' margins cover the longest transit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from peer.sra.behaviours import MESSAGE_STAGES
from peer.sra.messages import STAGE_OF, Message


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    """What the network does to messages.  All probabilities are per message."""

    drop: float = 0.0
    dup: float = 0.0
    delay: float = 0.0  # maximum extra delay, uniform on [0, delay]
    reorder: float = 0.0  # probability of a large extra hold-back
    reorder_span: float = 2.0
    stages: frozenset[str] | None = None  # None: every stage
    messages: frozenset[str] | None = None  # message type names; None: every type
    links: frozenset[frozenset[str]] | None = None  # None: every link
    seed: int = 0  # mixed with the run seed

    def __post_init__(self) -> None:
        for name in ("drop", "dup", "reorder"):
            p = getattr(self, name)
            if not 0 <= p <= 1:
                raise ValueError(f"chaos {name} must be a probability in [0, 1], got {p}")
        if self.drop == 1 and self.stages is None and self.links is None and self.messages is None:
            raise ValueError("chaos drop=1 on every message: nothing would ever arrive")
        if self.delay < 0 or self.reorder_span < 0:
            raise ValueError("chaos delays must be >= 0")
        if self.stages is not None and not self.stages <= set(MESSAGE_STAGES):
            raise ValueError(f"chaos stages must be among {', '.join(MESSAGE_STAGES)}")
        known = {t.__name__ for t in STAGE_OF}
        if self.messages is not None and not self.messages <= known:
            raise ValueError(f"chaos messages must be among {', '.join(sorted(known))}")

    @property
    def max_extra(self) -> float:
        """The longest extra delay any copy can get."""
        return self.delay + (1.0 if self.dup else 0.0) + (2 * self.reorder_span if self.reorder else 0.0)

    @property
    def active(self) -> bool:
        return bool(self.drop or self.dup or self.delay or self.reorder)

    def describe(self) -> str:
        parts = [f"{k}={getattr(self, k):g}" for k in ("drop", "dup", "delay", "reorder") if getattr(self, k)]
        if self.stages is not None:
            parts.append("stages=" + "+".join(s for s in MESSAGE_STAGES if s in self.stages))
        if self.messages is not None:
            parts.append("messages=" + "+".join(sorted(self.messages)))
        if self.links is not None:
            parts.append("links=" + "+".join(":".join(sorted(link)) for link in sorted(self.links, key=sorted)))
        return ",".join(parts) or "none"


def parse_chaos(text: str) -> ChaosConfig:
    """``drop=0.05,dup=0.05,delay=0.5,reorder=0.1,stages=allocation+settlement,messages=Award,links=a:b,seed=3``.

    Raises ValueError naming the offending item.
    """
    fields: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"chaos item {item!r} is not key=value")
        if key in ("drop", "dup", "delay", "reorder", "reorder_span"):
            try:
                fields[key] = float(raw)
            except ValueError:
                raise ValueError(f"chaos {key} must be a number, got {raw!r}") from None
        elif key == "seed":
            fields[key] = int(raw)
        elif key in ("stages", "messages"):
            fields[key] = frozenset(s for s in raw.split("+") if s)
        elif key == "links":
            links = [frozenset(link.split(":")) for link in raw.split("+") if link]
            if any(len(link) != 2 for link in links):
                raise ValueError(f"chaos links are u:v pairs joined by '+', got {raw!r}")
            fields[key] = frozenset(links)
        else:
            raise ValueError(f"unknown chaos key {key!r}")
    return ChaosConfig(**fields)  # type: ignore[arg-type]


class ChaosRouter:
    """Applies one :class:`ChaosConfig` to the messages of one run, and counts what it did."""

    def __init__(self, config: ChaosConfig, run_seed: int) -> None:
        self.config = config
        self._rng = random.Random(f"sim/chaos/{run_seed}/{config.seed}")
        self.dropped: list[tuple[str, str, str]] = []  # (sender, receiver, message type)
        self.duplicated = 0
        self.delayed = 0
        self.reordered = 0

    def applies(self, sender: str, receiver: str, msg: Message) -> bool:
        c = self.config
        if c.stages is not None and STAGE_OF[type(msg)].value not in c.stages:
            return False
        if c.messages is not None and type(msg).__name__ not in c.messages:
            return False
        return c.links is None or frozenset((sender, receiver)) in c.links

    def route(self, sender: str, receiver: str, msg: Message, base: float) -> list[float]:
        """The transit times of the copies of this message that arrive (empty: lost)."""
        c = self.config
        if not self.applies(sender, receiver, msg):
            return [base]
        rng = self._rng
        if c.drop and rng.random() < c.drop:
            self.dropped.append((sender, receiver, type(msg).__name__))
            return []
        copies = [base]
        if c.dup and rng.random() < c.dup:
            self.duplicated += 1
            copies.append(base + rng.uniform(0.0, 1.0))  # the copy has its own transit
        out = []
        for transit in copies:
            if c.delay:
                transit += rng.uniform(0.0, c.delay)
                self.delayed += 1
            if c.reorder and rng.random() < c.reorder:
                transit += rng.uniform(1.0, 2.0) * c.reorder_span
                self.reordered += 1
            out.append(transit)
        return out
