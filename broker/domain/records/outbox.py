"""The outbox: deliveries owed to the receivers, written with the state change."""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta

from broker.domain.records.model import Status, UploadRecord

EVENT_TYPES: dict[Status, str] = {"ready": "upload.ready", "rejected": "upload.rejected",
                                  "expired": "upload.expired", "withdrawn": "upload.withdrawn",
                                  "deleted": "upload.deleted"}
# Seconds before each retry (±20 % jitter): the first within seconds, so a receiver
# that blips is caught up within a minute; the whole schedule spans more than a day.
BACKOFF = (2, 5, 10, 30, 60, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(BACKOFF) + 1


def backoff(attempts: int) -> timedelta:
    """How long a delivery waits after its `attempts`-th failure, jittered."""
    base = BACKOFF[min(attempts, len(BACKOFF) - 1)]
    return timedelta(seconds=base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter only

DeliveryState = str  # "pending" (or "app-pending"), "delivered" or "dead"
# The app's own process as a receiver: the Flask extension's `upload_settled` signal.
APP_TARGET = "app:"
APP_PENDING = "app-pending"
# The CDN in front of the public bucket: told when a public file is removed.
CDN_TARGET = "cdn:"
CDN_PENDING = "cdn-pending"
# The audit log: every verdict and every operator action, kept in the outbox's table with
# the change it records (written in the same write), never sent anywhere.
AUDIT_TARGET = "audit:"
AUDIT = "audit"
_PENDING = {APP_TARGET: APP_PENDING, CDN_TARGET: CDN_PENDING, AUDIT_TARGET: AUDIT}
# What the audit log records: verdicts and what changes a settled upload.
_AUDITED = frozenset({"ready", "rejected", "expired", "withdrawn", "deleted"})
# Events the CDN is told of: the public file stops being served.
REMOVALS: frozenset[Status] = frozenset({"deleted", "withdrawn"})


def pending_state(url: str) -> DeliveryState:
    """Deliveries to the app and to the CDN wait apart from those to webhook receivers:
    each kind of deliverer reads only its own, so none can starve or exhaust another's."""
    return _PENDING.get(url, "pending")


def _owed(url: str, after: UploadRecord) -> bool:
    """Whether this receiver is told of this change (the CDN only of public removals)."""
    if url != CDN_TARGET:
        return True
    return after.status in REMOVALS and after.visibility == "public" and bool(after.stored_key)


@dataclass(frozen=True)
class WebhookDelivery:
    """One event for one receiver, and how its delivery goes."""

    id: str  # <event id>:<receiver number>
    event_id: str  # the webhook-id header: the same on every attempt
    url: str
    type: str
    upload_id: str
    owner: str
    snapshot: str  # the upload record as it was, JSON
    created_at: str  # when the event happened
    due_at: str  # when the next attempt may start
    attempts: int = 0
    state: DeliveryState = "pending"
    last_error: str | None = None
    history: str = "[]"  # every attempt: {"at", "result"}, JSON

    def attempted(self, at: str, result: str) -> WebhookDelivery:
        """This delivery with one more attempt in its history."""
        entries = [*json.loads(self.history), {"at": at, "result": result[:200]}]
        return replace(self, attempts=self.attempts + 1,
                       history=json.dumps(entries[-2 * MAX_ATTEMPTS:]))

    def record(self) -> UploadRecord:
        return UploadRecord(**json.loads(self.snapshot))

    def retried(self, at: str, error: str, next_due: str) -> WebhookDelivery:
        """After a failed attempt: due again later, or dead after the last one."""
        tried = self.attempted(at, error)
        return replace(tried, due_at=next_due, last_error=error[:500],
                       state="dead" if tried.attempts >= MAX_ATTEMPTS
                       else pending_state(self.url))


def events_for(before: UploadRecord, after: UploadRecord, urls: tuple[str, ...]
               ) -> list[WebhookDelivery]:
    """The deliveries a state change owes the receivers (none if it reports nothing), and
    its entry in the audit log when one is kept (AUDIT_TARGET among `urls`)."""
    event_type = EVENT_TYPES.get(after.status)
    changed = before.status != after.status
    reviewed = after.reviewed_by is not None and (
        before.reviewed_by, before.review_note) != (after.reviewed_by, after.review_note)
    owed = [url for url in urls if url != AUDIT_TARGET and _owed(url, after)] \
        if event_type is not None and changed else []
    if AUDIT_TARGET in urls and after.status in _AUDITED and (changed or reviewed):
        owed.append(AUDIT_TARGET)
    if not owed:
        return []
    event_id = "msg_" + secrets.token_hex(12)
    snapshot = json.dumps(asdict(after), separators=(",", ":"))
    # The audit log is read in the order of its entries' `due_at`, which no sender uses:
    # the wall clock to the microsecond, so two changes within one second keep their order.
    logged = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"
    return [WebhookDelivery(id=f"{event_id}:{n}", event_id=event_id, url=url,
                            type=(event_type if changed else "upload.reviewed") or "",
                            upload_id=after.id, owner=after.owner, snapshot=snapshot,
                            created_at=after.updated_at,
                            due_at=logged if url == AUDIT_TARGET else after.updated_at,
                            state=pending_state(url))
            for n, url in enumerate(owed)]
