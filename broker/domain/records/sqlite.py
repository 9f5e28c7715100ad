"""Upload records in SQLite: the development stack's store (`broker run`).

The emulator's DynamoDB answers every index query by reading the whole table and
copies the whole table for every transaction, so on it a create, a listing and a
verdict cost more with every record kept. SQLite answers them from B-tree indexes,
in the same process, with the same contract as the other stores: each operation one
transaction, the pending cap checked as the record is written, the same cursors.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, TypeVar

from broker.common.errors import InvalidRequest, RecordsUnavailable
from broker.domain.quotas import QuotaExceeded, Usage
from broker.domain.records.model import (
    MAX_PAGE,
    PendingCapReached,
    Status,
    UploadRecord,
    as_dict,
    decode_cursor,
    encode_cursor,
)
from broker.domain.records.outbox import WebhookDelivery
from broker.domain.records.store import RecordStore, UsageChange, by_id_pages

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, status TEXT NOT NULL, etag TEXT,
    listing_key TEXT NOT NULL, expires_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS uploads_listing ON uploads (owner, listing_key)
    WHERE status <> 'deleted';
CREATE INDEX IF NOT EXISTS uploads_pending ON uploads (status, expires_at)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS uploads_pending_by_owner ON uploads (owner, expires_at)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS uploads_processing ON uploads (status, updated_at)
    WHERE status = 'processing';
CREATE TABLE IF NOT EXISTS owner_usage (
    owner TEXT PRIMARY KEY, stored_bytes INTEGER NOT NULL, stored_files INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, due_at TEXT NOT NULL, delivery TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (state, due_at);
"""
_OPEN = {
    "pending": "SELECT record FROM uploads WHERE status = 'pending' AND expires_at < ?"
               " ORDER BY expires_at LIMIT ?",
    "processing": "SELECT record FROM uploads WHERE status = 'processing'"
                  " AND updated_at < ? ORDER BY updated_at LIMIT ?",
}


def _row(record: UploadRecord) -> tuple[Any, ...]:
    return (record.id, record.owner, record.status, record.etag, record.listing_key,
            record.expires_at, record.updated_at, json.dumps(as_dict(record)))


def _record(text: str) -> UploadRecord:
    return UploadRecord(**json.loads(text))


def _delivery(text: str) -> WebhookDelivery:
    return WebhookDelivery(**json.loads(text))


class SqliteRecords(RecordStore):
    """The records contract on one SQLite database (a file, or `:memory:` for a
    process's lifetime), shared by the process's threads one operation at a time."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        # Threads share the connection (one lock); processes share the file, writers
        # waiting up to `timeout` for one another.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                   timeout=10)
        self._lock = threading.Lock()
        with self._lock:
            if path != ":memory:":
                # Readers never wait for the writer; commits skip the disk flush.
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def get(self, upload_id: str) -> UploadRecord | None:
        row = self._read("SELECT record FROM uploads WHERE id = ?", (upload_id,))
        return _record(row[0][0]) if row else None

    def list_by_owner(self, owner: str, limit: int = 20, cursor: str | None = None
                      ) -> tuple[list[UploadRecord], str | None]:
        limit = max(1, min(limit, MAX_PAGE))
        after = decode_cursor(cursor, owner)["created_key"] if cursor else "\U0010ffff"
        rows = self._read("SELECT record FROM uploads WHERE owner = ? AND status <> 'deleted'"
                          " AND listing_key < ? ORDER BY listing_key DESC LIMIT ?",
                          (owner, after, limit + 1))
        records = [_record(text) for (text,) in rows]
        if len(records) <= limit:
            return records, None
        last = records[limit - 1]
        return records[:limit], encode_cursor(last.id, owner, last.listing_key)

    def open_before(self, status: Status, cutoff: str, limit: int = 100
                    ) -> list[UploadRecord]:
        return [_record(text) for (text,) in self._read(_OPEN[status], (cutoff, limit))]

    def each_in_status(self, status: Status) -> Iterator[UploadRecord]:
        def page(after: str, limit: int) -> list[UploadRecord]:
            rows = self._read("SELECT record FROM uploads WHERE status = ? AND id > ?"
                              " ORDER BY id LIMIT ?", (status, after, limit))
            return [_record(text) for (text,) in rows]
        return by_id_pages(page)

    def usage(self, owner: str) -> Usage:
        rows = self._read("SELECT stored_bytes, stored_files FROM owner_usage WHERE owner = ?",
                          (owner,))
        return Usage(rows[0][0], rows[0][1]) if rows else Usage()

    def ping(self) -> None:
        self._read("SELECT 1", ())

    def _insert(self, record: UploadRecord, pending_cap: int) -> bool:
        def insert(db: sqlite3.Connection) -> bool:
            if db.execute("SELECT 1 FROM uploads WHERE id = ?", (record.id,)).fetchone():
                return False
            open_now = [expiry for (expiry,) in db.execute(
                "SELECT expires_at FROM uploads WHERE owner = ? AND status = 'pending'"
                " AND expires_at > ? ORDER BY expires_at LIMIT ?",
                (record.owner, record.created_at, pending_cap))]
            if len(open_now) >= pending_cap:
                raise PendingCapReached(pending_cap, open_now[0])
            db.execute("INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?, ?)", _row(record))
            return True
        return self._transaction(insert)

    def _replace(self, updated: UploadRecord, allowed_from: tuple[Status, ...],
                 claimed_etag: str | None, change: UsageChange | None,
                 deliveries: list[WebhookDelivery]) -> bool:
        if change is not None and not change.fits_at_all():
            raise QuotaExceeded

        def replace(db: sqlite3.Connection) -> bool:
            current = db.execute("SELECT status, etag FROM uploads WHERE id = ?",
                                 (updated.id,)).fetchone()
            if current is None or current[0] not in allowed_from or \
                    (claimed_etag is not None and current[1] != claimed_etag):
                return False
            if change is not None:
                self._move_usage(db, updated.owner, change)
            db.execute("UPDATE uploads SET owner = ?, status = ?, etag = ?, listing_key = ?,"
                       " expires_at = ?, updated_at = ?, record = ? WHERE id = ?",
                       (*_row(updated)[1:], updated.id))
            db.executemany("INSERT INTO webhook_outbox VALUES (?, ?, ?, ?)",
                           [(d.id, d.state, d.due_at, json.dumps(asdict(d)))
                            for d in deliveries])
            return True
        return self._transaction(replace)

    @staticmethod
    def _move_usage(db: sqlite3.Connection, owner: str, change: UsageChange) -> None:
        row = db.execute("SELECT stored_bytes, stored_files FROM owner_usage WHERE owner = ?",
                         (owner,)).fetchone()
        if not change.quota.allows(Usage(*row) if row else Usage(), change.bytes,
                                   change.files):
            raise QuotaExceeded
        db.execute("INSERT INTO owner_usage VALUES (?, ?, ?) ON CONFLICT (owner) DO UPDATE"
                   " SET stored_bytes = stored_bytes + excluded.stored_bytes,"
                   " stored_files = stored_files + excluded.stored_files",
                   (owner, change.bytes, change.files))

    def due_webhooks(self, now: str, limit: int = 50, state: str = "pending"
                     ) -> list[WebhookDelivery]:
        rows = self._read("SELECT delivery FROM webhook_outbox WHERE state = ?"
                          " AND due_at <= ? ORDER BY due_at LIMIT ?", (state, now, limit))
        return [_delivery(text) for (text,) in rows]

    def webhooks(self, state: str, limit: int = 100) -> list[WebhookDelivery]:
        rows = self._read("SELECT delivery FROM webhook_outbox WHERE state = ?"
                          " ORDER BY due_at LIMIT ?", (state, limit))
        return [_delivery(text) for (text,) in rows]

    def get_webhook(self, delivery_id: str) -> WebhookDelivery | None:
        rows = self._read("SELECT delivery FROM webhook_outbox WHERE id = ?", (delivery_id,))
        return _delivery(rows[0][0]) if rows else None

    def replace_webhook(self, new: WebhookDelivery, expected: WebhookDelivery) -> bool:
        def replace(db: sqlite3.Connection) -> bool:
            current = db.execute("SELECT delivery FROM webhook_outbox WHERE id = ?",
                                 (new.id,)).fetchone()
            was = _delivery(current[0]) if current else None
            if was is None or (was.attempts, was.due_at, was.state) != \
                    (expected.attempts, expected.due_at, expected.state):
                return False
            db.execute("UPDATE webhook_outbox SET state = ?, due_at = ?, delivery = ?"
                       " WHERE id = ?", (new.state, new.due_at, json.dumps(asdict(new)), new.id))
            return True
        return self._transaction(replace)

    def _read(self, query: str, params: tuple[Any, ...]) -> list[Any]:
        with self._using() as db:
            return db.execute(query, params).fetchall()

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` in one transaction: committed when it returns, undone when it raises."""
        with self._using() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

    @contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except UnicodeEncodeError as exc:
                # A value no database text can hold (an unpaired surrogate).
                raise InvalidRequest("invalid_request", "The request holds a value the "
                                     "upload records cannot store.") from exc
            except sqlite3.Error as exc:
                raise RecordsUnavailable(f"the upload records are unavailable: {exc}") from exc
