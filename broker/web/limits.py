"""Per-user rate limits on creating uploads: the `limits` library's moving window, in
memory or in a store the processes share (BROKER_RATE_LIMIT_STORAGE, e.g. Redis).

Called by the two views that create uploads, once the caller is known: an anonymous
flood gets 401 and a cross-site request 403 without touching the counters. (Profiled:
Flask-Limiter's hooks around every request cost a quarter of a create's CPU for the
same check.)
"""

from __future__ import annotations

import logging
import math
import time

from limits import parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from broker.errors import TooManyRequests
from broker.settings import Settings

log = logging.getLogger(__name__)
NAMESPACE = "uploads"


class UploadRateLimit:
    """At most `upload_rate_limit` new uploads per owner. Should the shared store fail,
    each process goes on limiting on its own rather than refusing every upload or
    letting every one through."""

    def __init__(self, settings: Settings) -> None:
        self.limit = parse(settings.upload_rate_limit)
        self.local = MovingWindowRateLimiter(MemoryStorage())
        self.shared: MovingWindowRateLimiter | None = None
        if not settings.rate_limit_storage.startswith("memory://"):
            self.shared = MovingWindowRateLimiter(
                storage_from_string(settings.rate_limit_storage, wrap_exceptions=True))

    def check(self, owner: str) -> None:
        """Count one upload for `owner`, or raise TooManyRequests with when to retry."""
        limiter = self.shared or self.local
        try:
            allowed = limiter.hit(self.limit, NAMESPACE, owner)
        except StorageError as exc:  # only the shared store fails
            log.warning("the shared rate limit store failed (%s); limiting locally", exc)
            limiter = self.local
            allowed = limiter.hit(self.limit, NAMESPACE, owner)
        if allowed:
            return
        try:
            reset = limiter.get_window_stats(self.limit, NAMESPACE, owner).reset_time
        except StorageError:
            reset = time.time() + self.limit.get_expiry()
        raise TooManyRequests(f"At most {self.limit} new uploads; try again later.",
                              code="rate_limited",
                              retry_after=math.ceil(reset - time.time()))
