"""Sends the outbox's due deliveries: claims each with a conditional write (a lease, so
two deliverers never send one attempt twice), signs and POSTs it, then records the
answer: delivered, retried later with backoff and jitter, or dead after the last try.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from broker.common import clock
from broker.domain.records import RecordStore, UploadRecord
from broker.domain.records import changes as record_changes
from broker.domain.records.outbox import AUDIT_TARGET, WebhookDelivery, backoff, pending_state
from broker.domain.webhooks.sender import READ_TIMEOUT, Answer, send

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # longer than one attempt's timeouts
Render = Callable[[UploadRecord], dict[str, object]]
Send = Callable[[str, list[bytes], str, dict[str, object], bool, float], Answer]


@dataclass
class DeliveryReport:
    delivered: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)


@dataclass
class ReplayReport:
    delivered: int = 0
    failed: int = 0


@dataclass
class Deliverer:
    records: RecordStore
    render: Render  # the upload as its owner sees it through the API
    keys: list[bytes]
    allow_private: bool = False
    timeout: float = READ_TIMEOUT  # seconds a receiver may take to answer
    sender: Send = send
    state: str = "pending"  # the deliveries it sends: to receivers, or APP_PENDING

    def deliver_due(self, now: datetime | None = None, limit: int = 50) -> DeliveryReport:
        """Attempt every delivery due by `now` (default: the clock's now)."""
        moment = now or clock.now()
        report = DeliveryReport()
        for due in self.records.due_webhooks(clock.isoformat(moment), limit, self.state):
            leased = replace(due, due_at=clock.isoformat(moment + LEASE))
            if not self.records.replace_webhook(leased, expected=due):
                continue  # another deliverer has it
            answer = self.sender(due.url, self.keys, due.event_id, self.payload(due),
                                 self.allow_private, self.timeout)
            at = clock.isoformat(moment)
            if answer.ok:
                done = replace(leased.attempted(at, answer.detail), state="delivered",
                               last_error=None)
                self.records.replace_webhook(done, expected=leased)
                report.delivered.append(due.id)
                continue
            retry = leased.retried(at, answer.detail, clock.isoformat(
                moment + backoff(leased.attempts)))
            self.records.replace_webhook(retry, expected=leased)
            (report.dead if retry.state == "dead" else report.retried).append(due.id)
            log.warning("webhook %s to %s failed (%s): %s", due.event_id, due.url,
                        answer.detail, "given up" if retry.state == "dead" else
                        f"retrying at {retry.due_at}")
        return report

    def payload(self, delivery: WebhookDelivery) -> dict[str, object]:
        """The event body: `type`, `timestamp` and `data`, the upload plus its owner."""
        data = self.render(delivery.record()) | {"owner": delivery.owner}
        return {"type": delivery.type, "timestamp": delivery.created_at, "data": data}

    def replay_now(self, ids: list[str]) -> ReplayReport:
        """Send these deliveries again, from their first attempt, and at once."""
        report = ReplayReport()
        for delivery_id in ids:
            self.replay(delivery_id)
        if ids:
            done = self.deliver_due(limit=max(50, len(ids)))
            report.delivered = len([i for i in done.delivered if i in ids])
        report.failed = len(ids) - report.delivered
        return report

    def replay(self, delivery_id: str) -> bool:
        """Send a delivery again from its first attempt (a dead one, typically)."""
        current = self.records.get_webhook(delivery_id)
        if current is None or current.url == AUDIT_TARGET:  # the audit log is append-only
            return False
        again = replace(current, attempts=0, state=pending_state(current.url), last_error=None,
                        due_at=clock.isoformat(clock.now()))
        if self.records.replace_webhook(again, expected=current):
            record_changes.webhooks_due.set()
            return True
        return False


def run_deliverer(deliverer: Deliverer, stop: threading.Event, interval: float = 1.0) -> None:
    """Deliver as state changes write events, and whatever falls due, until stopped."""
    while not stop.is_set():
        record_changes.webhooks_due.wait(interval)
        record_changes.webhooks_due.clear()
        try:
            deliverer.deliver_due()
        except Exception:
            log.exception("delivering webhooks failed; trying again shortly")
