"""Per-user rate limits on creating uploads: a moving window, in this process's memory
or in a store the processes share (BROKER_RATE_LIMIT_STORAGE, e.g. Redis, through the
`limits` library).

Called by the two views that create uploads, once the caller is known: an anonymous
flood gets 401 and a cross-site request 403 without touching the counters. (Profiled:
Flask-Limiter's hooks around every request cost a quarter of a create's CPU for the
same check.)
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from limits import parse
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from broker.common.errors import TooManyRequests
from broker.settings import Settings

log = logging.getLogger(__name__)
NAMESPACE = "uploads"


class LocalWindow:
    """A moving window per owner in this process's memory: at most `amount` counted in
    any `seconds`. An owner keeps at most `amount` timestamps, and owners idle for a
    whole window are forgotten a couple at a time as others are counted. (The `limits`
    library's memory store re-scans every owner's entries every 10 ms from a timer
    thread: a cost that grows with the number of users, 8 % of a create's CPU when
    each request came from a different one.)"""

    def __init__(self, amount: int, seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.amount, self.seconds, self._clock = amount, seconds, clock
        # Ordered by each owner's newest timestamp, oldest first (moved on each count).
        self._counted: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, owner: str) -> float | None:
        """Count one for `owner`: None if allowed, else the seconds until one would be."""
        now = self._clock()
        with self._lock:
            stamps = self._counted.get(owner) or deque()
            while stamps and stamps[0] <= now - self.seconds:
                stamps.popleft()
            if len(stamps) >= self.amount:
                return stamps[0] + self.seconds - now
            stamps.append(now)
            self._counted.pop(owner, None)
            self._counted[owner] = stamps
            self._forget_idle(now)
            return None

    def _forget_idle(self, now: float) -> None:
        for _ in range(2):
            oldest = next(iter(self._counted))
            if self._counted[oldest][-1] > now - self.seconds:
                return
            del self._counted[oldest]

    def __len__(self) -> int:
        return len(self._counted)


class UploadRateLimit:
    """At most `upload_rate_limit` new uploads per owner. Should the shared store fail,
    each process goes on limiting on its own rather than refusing every upload or
    letting every one through."""

    def __init__(self, settings: Settings) -> None:
        self.limit = parse(settings.upload_rate_limit)
        self.local = LocalWindow(self.limit.amount, self.limit.get_expiry())
        self.shared: MovingWindowRateLimiter | None = None
        if not settings.rate_limit_storage.startswith("memory://"):
            self.shared = MovingWindowRateLimiter(
                storage_from_string(settings.rate_limit_storage, wrap_exceptions=True))

    def check(self, owner: str) -> None:
        """Count one upload for `owner`, or raise TooManyRequests with when to retry."""
        wait = self._count(owner)
        if wait is not None:
            raise TooManyRequests(f"At most {self.limit} new uploads; try again later.",
                                  code="rate_limited", retry_after=max(1, math.ceil(wait)))

    def _count(self, owner: str) -> float | None:
        if self.shared is None:
            return self.local.hit(owner)
        try:
            if self.shared.hit(self.limit, NAMESPACE, owner):
                return None
        except StorageError as exc:  # only the shared store fails
            log.warning("the shared rate limit store failed (%s); limiting locally", exc)
            return self.local.hit(owner)
        try:
            reset = self.shared.get_window_stats(self.limit, NAMESPACE, owner).reset_time
        except StorageError:
            return float(self.limit.get_expiry())
        return reset - time.time()
