"""Origin-signed flooding with de-duplication: a sans-I/O machine.

Theory of operation
-------------------
An origin signs each message once::

    signed_bytes = lp(DOMAIN) || origin (32) || seq (u64 BE) || expires_ms (u64 BE)
                   || lp(topic, UTF-8) || lp(payload)
    sig = Sign(origin_sk, signed_bytes)

and every node that accepts it hands it to the application (``Deliver``) and
floods it unchanged to every neighbour except the one it came from and the
origin (``Forward``).  Relays add nothing inside the signature, so a relay that
alters a byte of topic, payload, seq or expiry is caught by the next honest
node; hop metadata belongs to the link frame, not here.

Why each rule:

* ``(origin, seq)`` is the message id; the origin's ``seq`` is strictly
  increasing and persisted (:mod:`peer.net.seqstore`), so ids are never reused.
* The seen cache is checked *before* the signature (duplicates are the common
  case and cost nothing) but an id is marked seen only *after* the signature
  verifies, so a forger cannot "squat" an id and suppress the real message
  (go-libp2p-pubsub#406).
* Every message carries a signed expiry and the seen cache keeps an id until
  that expiry: a message can never outlive its cache entry and loop back in
  (lotus#12389).  Expiries further ahead than ``max_ttl`` (+ clock skew) are
  dropped, which bounds how long an entry must be kept.
* The cache is also bounded in size.  When full it evicts the entry closest to
  expiry and raises that origin's *floor* to its seq: anything at or below a
  floor counts as seen, so an eviction can never re-admit a message.  (The cost:
  under that pressure a late, unseen, lower-numbered message from the same
  origin is dropped too.)

* Relaying is bounded (#16.1): an unseen message costs a token from its
  sending link's bucket *before* its signature is checked (so a neighbour
  cannot make us burn CPU without bound either) and one from its origin's
  bucket after; each bucket counts messages and payload bytes, refills at a
  fixed rate and holds at most a burst (:class:`GossipLimits`).  A message
  refused for rate is dropped, not forwarded, counted in ``stats``; one refused
  on its origin's rate is marked seen (it is that origin's excess, wherever it
  comes from), one refused on the link's rate is not (another neighbour may
  still bring it).  Origin buckets are kept for the ``max_origins`` most recent
  origins, so throwaway origins cost memory only up to that bound, and what
  they can push through is bounded by the links they arrive on.

* An optional ``screen`` (set by the application, e.g. the node's ledger) is
  asked after the signature and before the origin's bucket whether an
  envelope from this link may be delivered and relayed at all; a refusal is a
  link-rate refusal too (counted ``screened``, not marked seen).  The ledger
  uses it to bound how many auctions new to this node one neighbour may
  introduce (#16.1): without it, each neighbour could make every node relay
  thousands of throwaway announcements a second within the byte budget.

Time is an input: ``now`` is *wall-clock* unix seconds (``time.time()``), not
trio's monotonic clock, because expiries are compared across machines.  The
buckets are fed the same ``now`` (a clock that jumps back refills nothing).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from peer.errors import LocalProtocolError, RemoteProtocolError
from peer.net.codec import MAX_GOSSIP_PAYLOAD, MAX_TOPIC, GossipEnvelope
from peer.net.handshake import lp
from peer.net.identity import Identity, verify
from peer.net.seqstore import SeqCounter

DOMAIN = b"peer/net/gossip/v1"
DEFAULT_TTL = 30.0
DEFAULT_MAX_TTL = 300.0
DEFAULT_MAX_SKEW = 5.0

MessageId = tuple[bytes, int]


def signed_bytes(origin: bytes, seq: int, expires_ms: int, topic: str, payload: bytes) -> bytes:
    return (
        lp(DOMAIN) + origin + seq.to_bytes(8, "big") + expires_ms.to_bytes(8, "big")
        + lp(topic.encode("utf-8")) + lp(payload)
    )


def sign_envelope(identity: Identity, seq: int, expires_ms: int, topic: str, payload: bytes) -> GossipEnvelope:
    sig = identity.sign(signed_bytes(identity.public_key, seq, expires_ms, topic, payload))
    return GossipEnvelope(
        origin=identity.public_key, seq=seq, expires_ms=expires_ms, topic=topic, payload=payload, sig=sig
    )


def verify_envelope(env: GossipEnvelope) -> bool:
    return verify(env.origin, signed_bytes(env.origin, env.seq, env.expires_ms, env.topic, env.payload), env.sig)


def to_ms(now: float) -> int:
    return int(now * 1000)


class GossipError(RemoteProtocolError):
    """A neighbour forwarded an envelope whose origin signature fails: it forged or altered it."""


class PublishError(LocalProtocolError, ValueError):
    """This node asked to publish something the wire cannot carry (bad ttl, topic or an oversize
    payload).  Nothing was signed or sent and no sequence number was used.  It is a ``ValueError``
    too, for callers written against the old contract."""


class PayloadTooLarge(PublishError):
    """The payload is larger than ``MAX_GOSSIP_PAYLOAD``: split it first (``peer.ledger.split``)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"gossip payload of {size} bytes exceeds the {MAX_GOSSIP_PAYLOAD}-byte limit")
        self.size = size


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand this message to the local application (exactly once per message id)."""

    envelope: GossipEnvelope
    via: str | None  # the neighbour it came from; None for our own publish


@dataclass(frozen=True, slots=True)
class Forward:
    """Send this envelope, unchanged, to each neighbour in ``to``."""

    to: frozenset[str]
    envelope: GossipEnvelope


Effect = Deliver | Forward


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; sans-I/O: the caller passes the time."""

    __slots__ = ("rate", "burst", "tokens", "at")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate < 0 or burst <= 0:
            raise ValueError("rate must be >= 0 and burst > 0")
        self.rate, self.burst, self.tokens, self.at = rate, burst, burst, now

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now

    def can(self, now: float, cost: float = 1.0) -> bool:
        self._refill(now)
        return self.tokens >= cost

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if there are that many; False (and take nothing) if not."""
        if not self.can(now, cost):
            return False
        self.tokens -= cost
        return True


@dataclass(frozen=True, slots=True)
class GossipLimits:
    """How much one neighbour (link) and one origin may make this node relay.

    Rates are per second, bursts are what may arrive at once.  The defaults
    leave honest traffic alone: a QPQ phase of a 1,000-node launch puts about
    one message per member on a link at once, a restart's catch-up a few dozen
    60 KiB pieces, an SRA auction a handful of messages per origin per second.
    """

    link_msgs: float = 200.0
    link_msgs_burst: float = 2000.0
    link_bytes: float = 2 * 1024 * 1024
    link_bytes_burst: float = 8 * 1024 * 1024
    origin_msgs: float = 20.0
    origin_msgs_burst: float = 200.0
    origin_bytes: float = 256 * 1024
    origin_bytes_burst: float = 2 * 1024 * 1024
    max_origins: int = 4096
    max_links: int = 1024


class _Pair:
    """A message bucket and a byte bucket, taken together or not at all."""

    __slots__ = ("msgs", "bytes")

    def __init__(self, msgs: float, msgs_burst: float, nbytes: float, bytes_burst: float, now: float) -> None:
        self.msgs = TokenBucket(msgs, msgs_burst, now)
        self.bytes = TokenBucket(nbytes, bytes_burst, now)

    def take(self, now: float, size: int) -> bool:
        cost = min(float(size), self.bytes.burst)  # a message larger than the burst is possible, once
        if not (self.msgs.can(now) and self.bytes.can(now, cost)):
            return False
        self.msgs.take(now)
        self.bytes.take(now, cost)
        return True


class RateLimiter:
    """Per-link and per-origin buckets (bounded LRU maps) for :class:`Gossip`."""

    def __init__(self, limits: GossipLimits) -> None:
        self.limits = limits
        self._links: OrderedDict[str, _Pair] = OrderedDict()
        self._origins: OrderedDict[bytes, _Pair] = OrderedDict()

    def _pair(self, table: OrderedDict, key: object, bound: int, now: float, origin: bool) -> _Pair:  # type: ignore[type-arg]
        pair = table.get(key)
        if pair is None:
            lim = self.limits
            pair = (_Pair(lim.origin_msgs, lim.origin_msgs_burst, lim.origin_bytes, lim.origin_bytes_burst, now)
                    if origin else
                    _Pair(lim.link_msgs, lim.link_msgs_burst, lim.link_bytes, lim.link_bytes_burst, now))
            table[key] = pair
            if len(table) > bound:
                table.popitem(last=False)
        else:
            table.move_to_end(key)
        return pair

    def link(self, neighbour: str, now: float, size: int) -> bool:
        return self._pair(self._links, neighbour, self.limits.max_links, now, False).take(now, size)

    def origin(self, origin: bytes, now: float, size: int) -> bool:
        return self._pair(self._origins, origin, self.limits.max_origins, now, True).take(now, size)


@dataclass(slots=True)
class GossipStats:
    published: int = 0
    delivered: int = 0
    duplicates: int = 0
    expired: int = 0
    too_far_ahead: int = 0
    stale: int = 0  # at or below an origin's floor
    echoes: int = 0  # our own messages coming back
    invalid: int = 0  # bad origin signature
    link_limited: int = 0  # dropped: the sending neighbour is over its rate
    origin_limited: int = 0  # dropped: the origin is over its rate
    screened: int = 0  # dropped: the application's screen refused it from this link


class SeenCache:
    """Message ids seen recently: bounded, expiring, with per-origin floors (see module doc)."""

    def __init__(self, capacity: int = 4096, *, max_origins: int = 1024) -> None:
        if capacity < 1 or max_origins < 1:
            raise ValueError("capacity and max_origins must be positive")
        self.capacity = capacity
        self.max_origins = max_origins
        self._expires: dict[MessageId, int] = {}
        self._heap: list[tuple[int, bytes, int]] = []  # (expires_ms, origin, seq); lazy deletion
        self._floors: OrderedDict[bytes, int] = OrderedDict()  # LRU, bounded by max_origins

    def __len__(self) -> int:
        return len(self._expires)

    def __contains__(self, msg_id: MessageId) -> bool:
        origin, seq = msg_id
        return msg_id in self._expires or seq <= self._floors.get(origin, 0)

    def floor(self, origin: bytes) -> int:
        return self._floors.get(origin, 0)

    def add(self, msg_id: MessageId, expires_ms: int, now_ms: int) -> None:
        self.sweep(now_ms)
        if msg_id in self._expires:
            return
        while len(self._expires) >= self.capacity:
            self._evict_soonest()
        self._expires[msg_id] = expires_ms
        heapq.heappush(self._heap, (expires_ms, msg_id[0], msg_id[1]))

    def sweep(self, now_ms: int) -> None:
        """Forget ids whose message has expired: a copy arriving later is dropped as expired anyway."""
        while self._heap and self._heap[0][0] <= now_ms:
            expires_ms, origin, seq = heapq.heappop(self._heap)
            if self._expires.get((origin, seq)) == expires_ms:
                del self._expires[(origin, seq)]

    def _evict_soonest(self) -> None:
        while self._heap:
            expires_ms, origin, seq = heapq.heappop(self._heap)
            if self._expires.get((origin, seq)) != expires_ms:
                continue  # stale heap entry
            del self._expires[(origin, seq)]
            self._floors[origin] = max(seq, self._floors.get(origin, 0))
            self._floors.move_to_end(origin)
            if len(self._floors) > self.max_origins:
                self._floors.popitem(last=False)
            return


@dataclass
class Gossip:
    """One node's flooding state.  Neighbours and origins are public keys; neighbours as hex."""

    identity: Identity
    counter: SeqCounter
    neighbours: frozenset[str] = frozenset()
    max_ttl: float = DEFAULT_MAX_TTL
    max_skew: float = DEFAULT_MAX_SKEW
    seen: SeenCache = field(default_factory=SeenCache)
    stats: GossipStats = field(default_factory=GossipStats)
    limits: GossipLimits | None = field(default_factory=GossipLimits)  # None: relay without bound
    # (sending neighbour, verified envelope, now) -> may it be delivered and relayed?  None: always.
    screen: Callable[[str, GossipEnvelope, float], bool] | None = None
    _limiter: RateLimiter | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self._limiter = RateLimiter(self.limits) if self.limits is not None else None

    def set_neighbours(self, neighbours: Iterable[str]) -> None:
        self.neighbours = frozenset(neighbours)

    def publish(
        self, topic: str, payload: bytes, now: float, *, ttl: float = DEFAULT_TTL
    ) -> tuple[GossipEnvelope, list[Effect]]:
        """Sign a new message and flood it.

        Raises:
            PayloadTooLarge: the payload exceeds ``MAX_GOSSIP_PAYLOAD`` (a ``PublishError``).
            PublishError: the ttl or topic is outside the wire limits.
        """
        if not 0 < ttl <= self.max_ttl:
            raise PublishError(f"ttl must be in (0, {self.max_ttl}]")
        if not isinstance(topic, str) or not 0 < len(topic) <= MAX_TOPIC:
            raise PublishError(f"topic must be 1..{MAX_TOPIC} characters")
        if len(payload) > MAX_GOSSIP_PAYLOAD:
            raise PayloadTooLarge(len(payload))
        now_ms = to_ms(now)
        env = sign_envelope(self.identity, self.counter.next(), now_ms + to_ms(ttl), topic, bytes(payload))
        self.seen.add((env.origin, env.seq), env.expires_ms, now_ms)
        self.stats.published += 1
        return env, self._forward(env, exclude=None)

    def receive(self, from_neighbour: str, env: GossipEnvelope, now: float) -> list[Effect]:
        """Handle an envelope from a neighbour.

        Returns ``[]`` for duplicates, expired, stale and echoed messages and
        for messages over their link's or origin's rate, otherwise
        ``[Deliver, Forward?]``.

        Raises:
            GossipError: the origin signature does not verify; the machine is
                unchanged and the sending link deserves an abuse point.
        """
        now_ms = to_ms(now)
        msg_id = (env.origin, env.seq)
        if env.origin == self.identity.public_key:
            self.stats.echoes += 1
            return []
        if env.expires_ms <= now_ms:
            self.stats.expired += 1
            return []
        if env.expires_ms > now_ms + to_ms(self.max_ttl + self.max_skew):
            self.stats.too_far_ahead += 1
            return []
        if msg_id in self.seen:
            if env.seq <= self.seen.floor(env.origin):
                self.stats.stale += 1
            else:
                self.stats.duplicates += 1
            return []
        size = len(env.payload)
        if self._limiter is not None and not self._limiter.link(from_neighbour, now, size):
            self.stats.link_limited += 1
            return []
        if not verify_envelope(env):
            self.stats.invalid += 1
            raise GossipError(from_neighbour, f"bad origin signature on seq {env.seq} from {env.origin.hex()[:16]}…")
        if self.screen is not None and not self.screen(from_neighbour, env, now):
            self.stats.screened += 1
            return []
        if self._limiter is not None and not self._limiter.origin(env.origin, now, size):
            self.stats.origin_limited += 1
            self.seen.add(msg_id, env.expires_ms, now_ms)
            return []
        self.seen.add(msg_id, env.expires_ms, now_ms)
        self.stats.delivered += 1
        return [Deliver(env, from_neighbour), *self._forward(env, exclude=from_neighbour)]

    def _forward(self, env: GossipEnvelope, *, exclude: str | None) -> list[Effect]:
        to = self.neighbours - {exclude, env.origin.hex()}
        return [Forward(frozenset(to), env)] if to else []
