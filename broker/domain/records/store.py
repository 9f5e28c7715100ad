"""The records contract every store keeps, and the logic the stores share.

A store supplies the primitives (a conditional insert, a conditional replace, reads);
this class turns them into the operations the broker and the validator use, so the
rules about retried writes and state changes are written once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from broker.common import clock
from broker.common.errors import RecordsUnavailable
from broker.domain.quotas import Quota, Usage
from broker.domain.records import changes as record_changes
from broker.domain.records.model import Status, UploadRecord, stored_size
from broker.domain.records.outbox import REMOVALS, WebhookDelivery, events_for

PASS_PAGE = 100  # records read at once by a pass over every record in a status


class RecordStore(ABC):
    """Create, read, list and move upload records through their states, and keep the
    webhook outbox: each reported state change is written with its deliveries."""

    webhook_urls: tuple[str, ...] = ()  # the receivers; none: no outbox is written

    def create(self, record: UploadRecord, *, pending_cap: int) -> None:
        """Write a new pending record, unless its owner already has `pending_cap` pending
        uploads still open at its creation (PendingCapReached). An id already taken is an
        error, unless it is this very record (an earlier attempt's answer was lost)."""
        if not self._insert(record, pending_cap) and self.get(record.id) != record:
            raise RecordsUnavailable(f"upload id {record.id} is already taken")

    def transition(
        self,
        record: UploadRecord,
        to: Status,
        *,
        allowed_from: tuple[Status, ...],
        claimed_etag: str | None = None,
        quota: Quota | None = None,
        **changes: Any,
    ) -> UploadRecord | None:
        """Move a record to `to` if it is still in one of `allowed_from` (and, when
        `claimed_etag` is given, still claimed for that object version).
        None when it was not: someone else moved it first.

        Becoming ready counts the upload in its owner's usage, in the same write,
        refused (QuotaExceeded) beyond `quota`; a ready upload deleted or withdrawn is
        released."""
        updated = replace(record, status=to, updated_at=clock.isoformat(clock.now()), **changes)
        change: UsageChange | None = None
        if to == "ready" and record.status != "ready":
            change = UsageChange(stored_size(updated), 1, quota or Quota())
        elif to in REMOVALS and record.status == "ready":
            change = UsageChange(-stored_size(record), -1, Quota())
        deliveries = events_for(record, updated, self.webhook_urls)
        if self._replace(updated, allowed_from, claimed_etag, change, deliveries):
            record_changes.changed(record.id)
            if deliveries:
                record_changes.webhooks_due.set()
            return updated
        return self._already_written(updated)

    def follow_changes(self, woken: Callable[[str], None]) -> bool:
        """Have `woken(upload_id)` called in this process when another process changes a
        record, where the store can tell (PostgreSQL): whether it can. Where it cannot,
        waiters re-read."""
        return False

    def _already_written(self, updated: UploadRecord) -> UploadRecord | None:
        """A failed condition can mean an earlier attempt of this very write succeeded
        (its answer lost, the client retried): then it is done, not superseded."""
        current = self.get(updated.id)
        if current is not None and replace(current, updated_at=updated.updated_at) == updated:
            return current
        return None

    @abstractmethod
    def get(self, upload_id: str) -> UploadRecord | None:
        """The record, or None when there is none (deleted records included)."""

    @abstractmethod
    def list_by_owner(self, owner: str, limit: int = 20, cursor: str | None = None
                      ) -> tuple[list[UploadRecord], str | None]:
        """One page of the owner's uploads (deleted ones left out), newest first, and the
        cursor of the next page (None on the last)."""

    @abstractmethod
    def open_before(self, status: Status, cutoff: str, limit: int = 100
                    ) -> list[UploadRecord]:
        """Up to `limit` records still `status` (pending or processing) whose expiry
        (pending) or last change (processing) is before `cutoff`, oldest first."""

    @abstractmethod
    def each_in_status(self, status: Status) -> Iterator[UploadRecord]:
        """Every record in `status`, read a page at a time as it is consumed (an
        operator's or a background pass over the store, never a request's)."""

    @abstractmethod
    def usage(self, owner: str) -> Usage:
        """The bytes and files of the owner's ready uploads."""

    @abstractmethod
    def due_webhooks(self, now: str, limit: int = 50, state: str = "pending"
                     ) -> list[WebhookDelivery]:
        """Deliveries waiting in `state` whose next attempt may start by `now`, oldest
        first."""

    @abstractmethod
    def webhooks(self, state: str, limit: int = 100) -> list[WebhookDelivery]:
        """Deliveries in `state` ("pending" or "dead"), oldest due first."""

    @abstractmethod
    def get_webhook(self, delivery_id: str) -> WebhookDelivery | None: ...

    @abstractmethod
    def replace_webhook(self, new: WebhookDelivery, expected: WebhookDelivery) -> bool:
        """Write `new` if the delivery is still as `expected` (its attempts, due time and
        state): two deliverers never send one attempt twice."""

    @abstractmethod
    def ping(self) -> None:
        """Raise StorageError unless the store answers (readiness)."""

    @abstractmethod
    def _insert(self, record: UploadRecord, pending_cap: int) -> bool:
        """Insert if the id is free and the cap allows; False when the id is taken."""

    @abstractmethod
    def _replace(self, updated: UploadRecord, allowed_from: tuple[Status, ...],
                 claimed_etag: str | None, change: UsageChange | None,
                 deliveries: list[WebhookDelivery]) -> bool:
        """Replace the stored record by `updated` if its status is one of `allowed_from`
        (and its etag `claimed_etag`, when given), applying `change` to its owner's usage
        and adding `deliveries` to the outbox in the same write; False when the record
        was not in such a state, QuotaExceeded when the change would break its quota."""


@dataclass(frozen=True)
class UsageChange:
    """Bytes and files to add to (or, negative, release from) an owner's usage."""

    bytes: int
    files: int
    quota: Quota

    def fits_at_all(self) -> bool:
        """False when even an owner storing nothing could not take it."""
        return self.quota.allows(Usage(), self.bytes, self.files)


def by_id_pages(read_page: Callable[[str, int], list[UploadRecord]]
                ) -> Iterator[UploadRecord]:
    """Every record `read_page(after_id, limit)` gives, page after page in id order."""
    after = ""
    while page := read_page(after, PASS_PAGE):
        yield from page
        after = page[-1].id
