"""Which refusals of a neighbour's input get a log line (issue #16.2: a flood of refusals must
not flood the log), and the periodic line that counts the rest."""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping

DISTINCT_REASONS = 4  # refusal lines per neighbour and interval beyond the link manager's one
REASON_PREFIX = 48  # characters of a refusal reason that make it "new"


class RefusalLog:
    """The link manager rate-limits abuse reports per neighbour; on top of that a refusal with a
    reason new for that neighbour in this interval is still logged, at most
    ``DISTINCT_REASONS`` of them, and once per interval the refusals left out are counted."""

    def __init__(self, interval: float, suppressed_reports: Callable[[], Mapping[str, int]]) -> None:
        self.interval = interval
        self._suppressed_reports = suppressed_reports
        self._summary_at = 0.0  # trio time of the next summary
        self._reasons: dict[str, set[str]] = {}  # per neighbour, this interval
        self._logged_anyway: collections.Counter[str] = collections.Counter()

    def should_log(self, peer: str, reason: str, manager_says_log: bool) -> bool:
        key = reason[:REASON_PREFIX]
        seen = self._reasons.setdefault(peer, set())
        if manager_says_log:
            seen.add(key)
            return True
        if key in seen or len(seen) >= DISTINCT_REASONS:
            return False
        seen.add(key)
        self._logged_anyway[peer] += 1  # the manager counted it as suppressed
        return True

    def summary(self, now: float) -> dict[str, int] | None:
        """At most once per interval: per neighbour key, the refusals not logged (None if none)."""
        if now < self._summary_at:
            return None
        self._summary_at = now + self.interval
        self._reasons.clear()
        counts = {k: n - self._logged_anyway.pop(k, 0) for k, n in self._suppressed_reports().items()}
        return {k: n for k, n in counts.items() if n > 0} or None
