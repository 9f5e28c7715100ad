"""Upload records in PostgreSQL (psycopg 3 and a connection pool), for self-hosting.

The same contract as the DynamoDB store: every state change is a conditional UPDATE,
listings are newest first with the same opaque cursors, and the pending cap is
checked and the record written in one transaction, serialized per owner by an
advisory lock so concurrent creates cannot overshoot it, all sent as one message
(one round trip). Timestamps are `timestamptz` in the database and RFC 3339
strings in the records. Every state change is announced on a channel (NOTIFY, sent as
it commits), so a broker's long polls learn a verdict written by a validator in another
process at once, rather than at their next re-read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import asdict, fields
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg import pq, sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from broker.common import clock
from broker.common.errors import InvalidRequest, RecordsUnavailable
from broker.domain.quotas import QuotaExceeded, Usage
from broker.domain.records import migrations
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
log = logging.getLogger(__name__)
Connection = psycopg.Connection[dict[str, Any]]

_COLUMNS = [f.name for f in fields(UploadRecord)]
_TIMES = ("created_at", "updated_at", "expires_at")
# Column lists composed from the record's own fields, never from input.
_NAMES = sql.SQL(", ").join(map(sql.Identifier, _COLUMNS))
_ASSIGNMENTS = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c))
                                  for c in _COLUMNS if c != "id")

# Serializes an owner's creates and usage moves: held until the transaction commits.
_OWNER_LOCK_ON = sql.SQL("SELECT pg_advisory_xact_lock(hashtextextended({owner}, 0));")
_OWNER_LOCK = _OWNER_LOCK_ON.format(owner=sql.Placeholder("owner"))
# The create: the record written if the owner's open pending uploads are under the
# cap; the record rides in as one JSON document. Prepared once a connection, so the
# database plans it once, not at every create (planning was most of its work), unless
# a pooler that keeps no prepared statements (PgBouncer's transaction mode) is between.
_CREATE = "broker_create_upload"
_CREATE_BODY = sql.SQL("""INSERT INTO uploads ({names})
SELECT {names} FROM jsonb_populate_record(NULL::uploads, {{record}}::jsonb)
WHERE (SELECT count(*) FROM (
    SELECT FROM uploads
    WHERE owner = {{owner}} AND status = 'pending' AND expires_at > {{created_at}}::timestamptz
    LIMIT {{cap}}) AS open) < {{cap}}
ON CONFLICT (id) DO NOTHING
RETURNING 1""").format(names=_NAMES).as_string()
_PREPARE_CREATE = f"PREPARE {_CREATE} (text, timestamptz, integer, jsonb) AS " + \
    _CREATE_BODY.format(owner="$1", created_at="$2", cap="$3", record="$4")
# The per-owner lock, prepared too (planning it was a tenth of a create's database work).
_LOCK = "broker_owner_lock"
_PREPARE_LOCK = f"PREPARE {_LOCK} (text) AS " + \
    _OWNER_LOCK_ON.format(owner=sql.SQL("$1")).as_string()
# Either is sent as one message, one transaction: the per-owner lock, then the create.
_CREATE_UNDER_LOCK = f"EXECUTE {_LOCK}({{owner}}); " \
    f"EXECUTE {_CREATE}({{owner}}, {{created_at}}, {{cap}}, {{record}});"
_INSERT_UNDER_LOCK = _OWNER_LOCK_ON.format(owner=sql.SQL("{owner}")).as_string() + \
    _CREATE_BODY + ";"
# Why a create was not written: the owner's open pending uploads, and the soonest to lapse.
_OPEN_PENDING = """
SELECT count(*) AS pending, min(expires_at) AS soonest FROM (
    SELECT expires_at FROM uploads
    WHERE owner = %s AND status = 'pending' AND expires_at > %s
    ORDER BY expires_at LIMIT %s) AS open
"""
_REPLACE = sql.SQL("UPDATE uploads SET {} WHERE id = %(id)s AND status = ANY(%(allowed)s)"
                   ).format(_ASSIGNMENTS)
# Where state changes are announced: each moved record's id, sent when its write commits.
CHANGES_CHANNEL = "broker_upload_changed"
_ANNOUNCED = sql.SQL(f"pg_notify('{CHANGES_CHANNEL}', id)")
_ETAG_CLAIMED = sql.SQL(" AND etag = %(claimed)s")
# A transition that moves its owner's usage: serialized per owner like a create, the
# record moved only if the usage stays within the quota, both in one statement.
_USAGE_NOW = sql.SQL("""
WITH now_stored AS (
    SELECT coalesce((SELECT stored_bytes FROM owner_usage WHERE owner = %(owner)s), 0) AS b,
           coalesce((SELECT stored_files FROM owner_usage WHERE owner = %(owner)s), 0) AS f
), fits AS (
    SELECT (%(max_bytes)s::bigint IS NULL OR b + %(more_bytes)s <= %(max_bytes)s::bigint)
       AND (%(max_files)s::bigint IS NULL OR f + %(more_files)s <= %(max_files)s::bigint) AS ok
    FROM now_stored
), moved AS (
    {replace} AND (SELECT ok FROM fits) RETURNING owner, {announced}
), counted AS (
    INSERT INTO owner_usage (owner, stored_bytes, stored_files)
    SELECT owner, %(more_bytes)s, %(more_files)s FROM moved
    ON CONFLICT (owner) DO UPDATE SET
        stored_bytes = owner_usage.stored_bytes + EXCLUDED.stored_bytes,
        stored_files = owner_usage.stored_files + EXCLUDED.stored_files
    RETURNING 1
){outbox}
SELECT (SELECT count(*) FROM moved) AS moved, (SELECT ok FROM fits) AS fits
""")
_LISTING = sql.SQL("SELECT * FROM uploads WHERE owner = %(owner)s AND status <> 'deleted' "
                   "{} ORDER BY created_at DESC, id DESC LIMIT %(limit)s")
_AFTER = sql.SQL("AND (created_at, id) < (%(after_time)s, %(after_id)s)")
# Deliveries ride in as one JSON array and are inserted only if the record moved.
_OUTBOX = sql.SQL(""", outbox AS (
    INSERT INTO webhook_outbox (id, event_id, url, type, upload_id, owner, snapshot,
                                created_at, due_at, attempts, state, history)
    SELECT d.id, d.event_id, d.url, d.type, d.upload_id, d.owner, d.snapshot,
           d.created_at::timestamptz, d.due_at::timestamptz, d.attempts, d.state, d.history
    FROM moved, jsonb_to_recordset(%(deliveries)s::jsonb) AS d(
        id text, event_id text, url text, type text, upload_id text, owner text,
        snapshot text, created_at text, due_at text, attempts integer, state text,
        history text)
    RETURNING 1
)""")
_MOVE_WITH_OUTBOX = sql.SQL("WITH moved AS ({replace} RETURNING owner, {announced}){outbox} "
                            "SELECT count(*) AS moved FROM moved")
_WEBHOOK_COLUMNS = [f.name for f in fields(WebhookDelivery)]
_WEBHOOK_TIMES = ("created_at", "due_at")
_REPLACE_WEBHOOK = sql.SQL(
    "UPDATE webhook_outbox SET {} WHERE id = %(id)s AND attempts = %(was_attempts)s "
    "AND due_at = %(was_due)s AND state = %(was_state)s").format(
    sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c))
                       for c in _WEBHOOK_COLUMNS if c != "id"))
_OPEN: dict[str, LiteralString] = {
    "pending": "SELECT * FROM uploads WHERE status = 'pending' AND expires_at < %s"
               " ORDER BY expires_at LIMIT %s",
    "processing": "SELECT * FROM uploads WHERE status = 'processing' AND updated_at < %s"
                  " ORDER BY updated_at LIMIT %s",
}


def _webhook_from_row(row: dict[str, Any]) -> WebhookDelivery:
    values = {name: row[name] for name in _WEBHOOK_COLUMNS}
    for name in _WEBHOOK_TIMES:
        values[name] = clock.isoformat(values[name])
    return WebhookDelivery(**values)


def _webhook_params(delivery: WebhookDelivery) -> dict[str, Any]:
    row = asdict(delivery)
    for name in _WEBHOOK_TIMES:
        row[name] = clock.parse_iso(row[name])
    return row


def _to_row(record: UploadRecord) -> dict[str, Any]:
    row = as_dict(record)
    for name in _TIMES:
        row[name] = clock.parse_iso(row[name])
    return row


def _from_row(row: dict[str, Any]) -> UploadRecord:
    values = {name: row[name] for name in _COLUMNS}
    for name in _TIMES:
        values[name] = clock.isoformat(values[name])
    return UploadRecord(**values)


class _Literals:
    """Text quoted as a SQL literal by libpq, for the connection's encoding."""

    def __init__(self, conn: Connection) -> None:
        self._escape = pq.Escaping(conn.pgconn).escape_literal
        self._encoding = conn.info.encoding

    def __call__(self, text: str) -> str:
        if "\x00" in text:  # libpq's quoting would end the text there
            raise psycopg.DataError("PostgreSQL text cannot contain NUL (0x00) characters")
        return self._escape(text.encode(self._encoding)).decode(self._encoding)


def _exec(conn: Connection, statement: str,
          expected: pq.ExecStatus = pq.ExecStatus.TUPLES_OK) -> tuple[bytes | None, ...] | None:
    """The first row (None: none) of the last result of `statement`'s statements, sent
    in one message and awaited inside libpq: psycopg's cursor awaits an answer in
    Python steps, each taking the interpreter lock back, and that was half of a
    create's CPU when requests ran at once."""
    encoding = conn.info.encoding
    result = conn.pgconn.exec_(statement.encode(encoding))
    if result.status != expected:
        if conn.pgconn.status == pq.ConnStatus.BAD:
            raise psycopg.OperationalError(conn.pgconn.get_error_message())
        raise psycopg.errors.error_from_result(result, encoding=encoding)
    if result.ntuples == 0:
        return None
    return tuple(result.get_value(0, column) for column in range(result.nfields))


UNAVAILABLE = "the upload records (PostgreSQL) are unavailable"


class PostgresRecords(RecordStore):
    """The records contract on the `uploads` table (see sql/ for its schema)."""

    def __init__(self, pool: ConnectionPool[Connection], url: str) -> None:
        self.pool = pool
        self.url = url
        self._prepared: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._prepare = True  # until a statement prepared is gone at once (a pooler)
        self._listener: _ChangeListener | None = None
        self._listening = threading.Lock()

    @classmethod
    def connect(cls, url: str, *, pool_size: int = 10, timeout: float = 3.0) -> PostgresRecords:
        """A pool on the database at `url`, whose schema must be this release's."""
        pool: ConnectionPool[Connection] = ConnectionPool(
            url, min_size=1, max_size=pool_size, timeout=timeout, open=False,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 5},
            name="broker-records")
        try:
            pool.open(wait=True, timeout=timeout)
        except PoolTimeout as exc:
            pool.close()
            raise RecordsUnavailable(f"the records database does not answer: {exc}") from exc
        store = cls(pool, url)
        try:
            store._run(lambda conn: migrations.check_current(conn))
        except RecordsUnavailable:
            pool.close()
            raise
        return store

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        self.pool.close()

    def follow_changes(self, woken: Callable[[str], None]) -> bool:
        with self._listening:
            listener = self._listener
            if listener is None or not listener.running_here():
                self._listener = _ChangeListener(self.url, woken)
        return True

    def get(self, upload_id: str) -> UploadRecord | None:
        def read(conn: Connection) -> UploadRecord | None:
            row = conn.execute("SELECT * FROM uploads WHERE id = %s", [upload_id]).fetchone()
            return _from_row(row) if row else None
        return self._run(read)

    def list_by_owner(self, owner: str, limit: int = 20, cursor: str | None = None
                      ) -> tuple[list[UploadRecord], str | None]:
        limit = max(1, min(limit, MAX_PAGE))
        params: dict[str, Any] = {"owner": owner, "limit": limit + 1}
        after = sql.SQL("")
        if cursor:
            position = decode_cursor(cursor, owner)
            try:
                params["after_time"] = clock.parse_iso(position["created_key"].split("#")[0])
            except ValueError:
                raise InvalidRequest("invalid_cursor",
                                     "The cursor is not one this API returned.") from None
            params["after_id"] = position["id"]
            after = _AFTER

        def read(conn: Connection) -> list[UploadRecord]:
            rows = conn.execute(_LISTING.format(after), params).fetchall()
            return [_from_row(row) for row in rows]
        records = self._run(read)
        if len(records) <= limit:
            return records, None
        last = records[limit - 1]
        return records[:limit], encode_cursor(last.id, owner, last.listing_key)

    def each_in_status(self, status: Status) -> Iterator[UploadRecord]:
        def page(after: str, limit: int) -> list[UploadRecord]:
            def read(conn: Connection) -> list[UploadRecord]:
                rows = conn.execute("SELECT * FROM uploads WHERE status = %s AND id > %s"
                                    " ORDER BY id LIMIT %s", [status, after, limit]).fetchall()
                return [_from_row(row) for row in rows]
            return self._run(read)
        return by_id_pages(page)

    def open_before(self, status: Status, cutoff: str, limit: int = 100
                    ) -> list[UploadRecord]:
        query = _OPEN[status]

        def read(conn: Connection) -> list[UploadRecord]:
            rows = conn.execute(query, [clock.parse_iso(cutoff), limit]).fetchall()
            return [_from_row(row) for row in rows]
        return self._run(read)

    def ping(self) -> None:
        self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    def _insert(self, record: UploadRecord, pending_cap: int) -> bool:
        def write(conn: Connection) -> tuple[bytes | None, ...] | None:
            literal = _Literals(conn)
            values = {"owner": literal(record.owner), "created_at": literal(record.created_at),
                      "cap": int(pending_cap), "record": literal(json.dumps(as_dict(record)))}
            if self._prepare:
                for _ in range(2):  # once more if it was gone (DEALLOCATE, DISCARD ALL)
                    if conn not in self._prepared:
                        for statement in (_PREPARE_LOCK, _PREPARE_CREATE):
                            with contextlib.suppress(
                                    psycopg.errors.DuplicatePreparedStatement):
                                _exec(conn, statement, pq.ExecStatus.COMMAND_OK)
                        self._prepared.add(conn)
                    try:
                        return _exec(conn, _CREATE_UNDER_LOCK.format(**values))
                    except psycopg.errors.InvalidSqlStatementName:
                        self._prepared.discard(conn)  # the transaction was rolled back
                # Gone as soon as prepared: a pooler hands each statement to another
                # server connection. Plan every create from now on.
                self._prepare = False
                log.warning("the records database keeps no prepared statements (a pooler "
                            "in transaction mode?): each create is planned anew")
            return _exec(conn, _INSERT_UNDER_LOCK.format(**values))
        if self._run(write) is not None:
            return True

        def read(conn: Connection) -> dict[str, Any] | None:
            return conn.execute(_OPEN_PENDING, [record.owner, clock.parse_iso(
                record.created_at), pending_cap]).fetchone()
        row = self._run(read)
        if row and row["pending"] >= pending_cap:
            raise PendingCapReached(pending_cap, clock.isoformat(row["soonest"]))
        return False  # the id is taken: by this very record, or another

    def usage(self, owner: str) -> Usage:
        def read(conn: Connection) -> dict[str, Any] | None:
            return conn.execute("SELECT stored_bytes, stored_files FROM owner_usage"
                                " WHERE owner = %s", [owner]).fetchone()
        row = self._run(read)
        return Usage(row["stored_bytes"], row["stored_files"]) if row else Usage()

    def _replace(self, updated: UploadRecord, allowed_from: tuple[Status, ...],
                 claimed_etag: str | None, change: UsageChange | None,
                 deliveries: list[WebhookDelivery]) -> bool:
        query, params = _REPLACE, {**_to_row(updated), "allowed": list(allowed_from)}
        if claimed_etag is not None:
            query += _ETAG_CLAIMED
            params["claimed"] = claimed_etag
        outbox: sql.Composable = sql.SQL("")
        if deliveries:
            outbox = _OUTBOX
            params["deliveries"] = json.dumps([asdict(d) for d in deliveries])
        if change is None:
            if not deliveries:
                announcing = query + sql.SQL(" RETURNING ") + _ANNOUNCED

                def write(conn: Connection) -> int:
                    return conn.execute(announcing, params).rowcount
                return self._run(write) == 1
            statement = _MOVE_WITH_OUTBOX.format(replace=query, outbox=outbox,
                                                 announced=_ANNOUNCED)

            def write_with_outbox(conn: Connection) -> dict[str, Any] | None:
                return conn.execute(statement, params).fetchone()
            row = self._run(write_with_outbox)
            return bool(row and row["moved"])
        if not change.fits_at_all():
            raise QuotaExceeded
        params |= {"more_bytes": change.bytes, "more_files": change.files,
                   "max_bytes": change.quota.bytes, "max_files": change.quota.files}
        row = self._under_owner_lock(_OWNER_LOCK + _USAGE_NOW.format(
            replace=query, outbox=outbox, announced=_ANNOUNCED), params)
        if row["moved"]:
            return True
        if not row["fits"]:
            raise QuotaExceeded
        return False

    def due_webhooks(self, now: str, limit: int = 50, state: str = "pending"
                     ) -> list[WebhookDelivery]:
        return self._outbox(state, clock.parse_iso(now), limit)

    def webhooks(self, state: str, limit: int = 100) -> list[WebhookDelivery]:
        return self._outbox(state, None, limit)

    def _outbox(self, state: str, due_by: Any, limit: int) -> list[WebhookDelivery]:
        def read(conn: Connection) -> list[WebhookDelivery]:
            rows = conn.execute(
                "SELECT * FROM webhook_outbox WHERE state = %s AND (%s::timestamptz IS NULL"
                " OR due_at <= %s) ORDER BY due_at LIMIT %s",
                [state, due_by, due_by, limit]).fetchall()
            return [_webhook_from_row(row) for row in rows]
        return self._run(read)

    def get_webhook(self, delivery_id: str) -> WebhookDelivery | None:
        def read(conn: Connection) -> WebhookDelivery | None:
            row = conn.execute("SELECT * FROM webhook_outbox WHERE id = %s",
                               [delivery_id]).fetchone()
            return _webhook_from_row(row) if row else None
        return self._run(read)

    def replace_webhook(self, new: WebhookDelivery, expected: WebhookDelivery) -> bool:
        params = {**_webhook_params(new), "was_attempts": expected.attempts,
                  "was_due": clock.parse_iso(expected.due_at), "was_state": expected.state}

        def write(conn: Connection) -> int:
            return conn.execute(_REPLACE_WEBHOOK, params).rowcount
        return self._run(write) == 1

    def _under_owner_lock(self, statement: str | sql.Composed, params: dict[str, Any]
                          ) -> dict[str, Any]:
        """The one row of `statement`, which starts by taking the per-owner lock
        (`_OWNER_LOCK`, on `params["owner"]`): both go as one message, one round trip
        and one implicit transaction, so the lock is held until the statement commits
        and the statement reads after it is held."""
        def run(conn: Connection) -> dict[str, Any] | None:
            cursor = psycopg.ClientCursor(conn, row_factory=dict_row)
            cursor.execute(statement, params)
            cursor.nextset()  # past the lock's own result
            return cursor.fetchone()
        row = self._run(run)
        assert row is not None
        return row

    def _run(self, work: Callable[[Connection], T]) -> T:
        """Run `work` on a pooled connection. A connection found broken (the server
        restarted) is dropped and the work tried once more on a fresh one: every
        operation here is safe to repeat, as lost answers are recognised."""
        for attempt in (1, 2):
            try:
                with self.pool.connection() as conn:
                    return work(conn)
            except (psycopg.DataError, UnicodeEncodeError) as exc:
                # A value the database cannot hold (a NUL character, an unpaired
                # surrogate): the request's fault, and no retry will change it.
                raise InvalidRequest("invalid_request", "The request holds a value the "
                                     "upload records cannot store.") from exc
            except psycopg.OperationalError as exc:
                if attempt == 2:
                    raise RecordsUnavailable(UNAVAILABLE) from exc
            except (psycopg.Error, PoolTimeout) as exc:
                raise RecordsUnavailable(UNAVAILABLE) from exc
        raise AssertionError("unreachable")


class _ChangeListener:
    """A connection of this process's own that LISTENs for state changes and wakes the
    waiters on each. While it cannot connect, waiters re-read as without it; it tries
    again, waiting longer each time."""

    def __init__(self, conninfo: str, woken: Callable[[str], None]) -> None:
        self._conninfo, self._woken = conninfo, woken
        self._pid = os.getpid()  # a forked worker starts its own
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="records-changes",
                                        daemon=True)
        self._thread.start()

    def running_here(self) -> bool:
        return self._pid == os.getpid() and self._thread.is_alive()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)  # it looks up at least once a second

    def _listen(self) -> None:
        pause = 1.0
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True,
                                     connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANGES_CHANNEL}")
                    pause = 1.0
                    while not self._stopped.is_set():
                        for notice in conn.notifies(timeout=1.0):
                            self._woken(notice.payload)
            except psycopg.Error as exc:
                log.warning("not hearing record changes (%s); long polls re-read meanwhile",
                            exc)
                self._stopped.wait(pause)
                pause = min(pause * 2, 30.0)
