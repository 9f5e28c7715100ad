"""Telling the CDN what stops being served: a public file removed (deleted now; withdrawn
or erased by the same road) is invalidated at the CDN, so it is not served from its
cache for the year `Cache-Control: immutable` allows.

Removals wait in the outbox (state `cdn-pending`, written with the state change, so
none is lost to a crash) and go out in batches: one invalidation names the folder of
every upload removed since the last (`/<upload id>/*`: the served file and any
other copy of it), as CloudFront charges by path, a folder counting as one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlparse

from broker.common import clock
from broker.domain.records import RecordStore, UploadRecord, served_keys
from broker.domain.records.outbox import CDN_PENDING, REMOVALS, WebhookDelivery, backoff

log = logging.getLogger(__name__)

BATCH = 1000  # paths in one invalidation: CloudFront takes up to 3,000 (15 with wildcards
#              in flight at once is its other limit; one batch at a time stays under it)
LEASE = timedelta(seconds=60)
# Invalidate these paths; raises when the CDN did not take them (they are retried).
Invalidate = Callable[[list[str], str], None]


def removed_urls(record: UploadRecord, public_url_for: Callable[[str], str]) -> list[str]:
    """Every public URL that served this upload, once it is removed (deleted, withdrawn)."""
    if record.status not in REMOVALS or record.visibility != "public":
        return []
    return [public_url_for(key) for key in served_keys(record)]


def folder_path(url: str) -> str:
    """The CDN path of everything stored for one upload: its folder, as a wildcard."""
    path = urlparse(url).path
    return path.rsplit("/", 1)[0] + "/*"


@dataclass
class CdnPurger:
    records: RecordStore
    invalidate: Invalidate
    public_url_for: Callable[[str], str]

    def purge_due(self, now: datetime | None = None) -> list[str]:
        """Invalidate every removal due by `now`, in one request; the paths sent."""
        moment = now or clock.now()
        leased: list[WebhookDelivery] = []
        for due in self.records.due_webhooks(clock.isoformat(moment), BATCH, CDN_PENDING):
            claim = replace(due, due_at=clock.isoformat(moment + LEASE))
            if self.records.replace_webhook(claim, expected=due):
                leased.append(claim)
        if not leased:
            return []
        paths = sorted({folder_path(url) for d in leased
                        for url in removed_urls(d.record(), self.public_url_for)})
        at = clock.isoformat(moment)
        try:
            if paths:
                self.invalidate(paths, f"broker-{leased[0].event_id}-{len(paths)}")
        except Exception as exc:  # the CDN's API failing: every one is retried later
            log.warning("invalidating %d paths at the CDN failed: %s", len(paths), exc)
            for claim in leased:
                retry = claim.retried(at, str(exc)[:200],
                                      clock.isoformat(moment + backoff(claim.attempts)))
                self.records.replace_webhook(retry, expected=claim)
            return []
        for claim in leased:
            done = replace(claim.attempted(at, "invalidated"), state="delivered",
                           last_error=None)
            self.records.replace_webhook(done, expected=claim)
        log.info("told the CDN to forget %d paths: %s", len(paths), " ".join(paths[:10]))
        return paths


def run_purger(purger: CdnPurger, stop: threading.Event, interval: float = 5.0) -> None:
    """Purge every few seconds (removals in a burst share one invalidation), until
    stopped."""
    while not stop.wait(interval):
        try:
            purger.purge_due()
        except Exception:
            log.exception("telling the CDN of removals failed; trying again shortly")
