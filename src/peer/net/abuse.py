"""Abuse that outlives a link, and rate-limited reporting of refusals.

Theory of operation
-------------------
A link closed for abuse used to be forgotten: the neighbour redialled within a
millisecond and started again, 7,229 times in 20 s (issue 16.2).
:class:`AbuseTracker` keeps, per public key, a score that every abuse close
raises by one and that halves every ``half_life`` seconds.  After an abuse
close the key is *throttled*: its handshakes are refused, and we do not dial
it, for ``backoff_base * 2**(score - 1)`` seconds (capped at ``backoff_cap``).
When the score reaches ``ban_after`` the key is *banned* until an operator lifts
it (:meth:`AbuseTracker.unban`); the ban keeps its reason.  An honest neighbour
never earns a point (an honest peer sends no bad frame over a reliable ordered
pipe), and a stray point decays away.

:class:`ReportLimiter` turns a stream of similar reports (handshake refusals,
abuse reports) into at most one report per key per ``interval`` with a count of
the ones it suppressed, so a flood cannot fill the log (12.1 MB in 20 s before).

Pure: every call takes ``now`` (trio time); nothing here sleeps or does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ban:
    """An operator-liftable ban of one key."""

    key: bytes
    reason: str
    since: float  # trio time
    score: float  # the abuse score when it was banned


@dataclass(slots=True)
class _Record:
    score: float = 0.0
    updated: float = 0.0
    blocked_until: float = -math.inf
    closes: int = 0
    last_reason: str = ""


class AbuseTracker:
    """Per-key decaying abuse score, redial throttle and ban (see the module docstring)."""

    def __init__(
        self,
        *,
        half_life: float = 600.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        ban_after: float = 8.0,
    ) -> None:
        if half_life <= 0 or backoff_base <= 0 or backoff_cap < backoff_base or ban_after < 1:
            raise ValueError("need half_life > 0, 0 < backoff_base <= backoff_cap, ban_after >= 1")
        self.half_life, self.backoff_base, self.backoff_cap, self.ban_after = (
            half_life, backoff_base, backoff_cap, ban_after)
        self._records: dict[bytes, _Record] = {}
        self._bans: dict[bytes, Ban] = {}

    def score(self, key: bytes, now: float) -> float:
        rec = self._records.get(key)
        return 0.0 if rec is None else self._decayed(rec, now)

    def on_abuse_close(self, key: bytes, now: float, reason: str) -> Ban | None:
        """A link of ``key`` was closed for abuse: raise its score, throttle it.
        Returns the new :class:`Ban` if this close got the key banned."""
        rec = self._records.setdefault(key, _Record(updated=now))
        rec.score = self._decayed(rec, now) + 1.0
        rec.updated = now
        rec.closes += 1
        rec.last_reason = reason
        delay = min(self.backoff_cap, self.backoff_base * 2 ** min(rec.score - 1.0, 64.0))
        rec.blocked_until = max(rec.blocked_until, now + delay)
        if rec.score >= self.ban_after - 1e-6 and key not in self._bans:  # (float decay of quick closes)
            ban = Ban(key, f"{rec.closes} abuse closes (last: {reason})", now, rec.score)
            self._bans[key] = ban
            return ban
        return None

    def refusal(self, key: bytes, now: float) -> tuple[str, str] | None:
        """``(kind, reason)`` if a handshake from or a dial to ``key`` must be refused now."""
        ban = self._bans.get(key)
        if ban is not None:
            return "banned", f"banned: {ban.reason}"
        rec = self._records.get(key)
        if rec is not None and now < rec.blocked_until:
            return "throttled", f"throttled for abuse: retry in {rec.blocked_until - now:.1f} s"
        return None

    def retry_at(self, key: bytes) -> float:
        """When ``key`` may be dialled again (``inf`` while banned, ``-inf`` if never throttled)."""
        if key in self._bans:
            return math.inf
        rec = self._records.get(key)
        return rec.blocked_until if rec is not None else -math.inf

    def ban(self, key: bytes, reason: str, now: float) -> Ban:
        """An operator's ban (kept until :meth:`unban`)."""
        ban = Ban(key, reason, now, self.score(key, now))
        self._bans[key] = ban
        return ban

    def bans(self) -> dict[bytes, Ban]:
        return dict(self._bans)

    def unban(self, key: bytes) -> bool:
        """Lift a ban and forgive the score; True if the key was banned."""
        self._records.pop(key, None)
        return self._bans.pop(key, None) is not None

    def _decayed(self, rec: _Record, now: float) -> float:
        return rec.score * 0.5 ** (max(0.0, now - rec.updated) / self.half_life)


class ReportLimiter:
    """At most one report per key per ``interval``; the rest are counted.

    ``offer(key, now, payload)`` returns ``None`` to suppress the report, or the
    number of reports suppressed since the last one that went out (0 the first
    time).  ``due(now)`` returns ``(key, count, payload)`` for keys whose
    suppressed reports have waited a whole interval (``payload`` is the latest
    one offered), so a periodic task can summarise them.
    """

    def __init__(self, interval: float = 10.0, max_keys: int = 1024) -> None:
        if interval <= 0 or max_keys < 1:
            raise ValueError("need interval > 0 and max_keys >= 1")
        self.interval, self.max_keys = interval, max_keys
        self._last: dict[Hashable, float] = {}
        self._suppressed: dict[Hashable, int] = {}
        self._payload: dict[Hashable, object] = {}
        self.total_suppressed = 0

    def offer(self, key: Hashable, now: float, payload: object = None) -> int | None:
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            self._payload[key] = payload
            self.total_suppressed += 1
            return None
        if last is None and len(self._last) >= self.max_keys:
            self._forget_oldest()
        self._last[key] = now
        self._payload.pop(key, None)
        return self._suppressed.pop(key, 0)

    def due(self, now: float) -> list[tuple[Hashable, int, object]]:
        """Suppressed counts whose interval has passed (they are reported as of ``now``)."""
        out = []
        for key, count in list(self._suppressed.items()):
            if now - self._last.get(key, -math.inf) >= self.interval:
                out.append((key, count, self._payload.pop(key, None)))
                del self._suppressed[key]
                self._last[key] = now
        return out

    def _forget_oldest(self) -> None:
        # Bounded memory under a flood of distinct keys: forget the stalest key
        # (its suppressed count, if any, is lost; the total still counts it).
        oldest = min(self._last, key=self._last.__getitem__)
        del self._last[oldest]
        self._suppressed.pop(oldest, None)
        self._payload.pop(oldest, None)
