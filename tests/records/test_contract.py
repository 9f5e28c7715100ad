"""The records contract, as the broker and the validator rely on it, on every store."""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import tuple_row

from broker.common import clock
from broker.common.errors import InvalidRequest, StorageError
from broker.domain.quotas import Quota, QuotaExceeded, Usage
from broker.domain.records import DynamoRecords, PendingCapReached, RecordStore, UploadRecord
from broker.domain.records.model import as_dict

BASE = clock.parse_iso("2026-06-01T12:00:00Z")


def make(owner: str = "alice", n: int = 0, status: str = "pending", **changes: object
         ) -> UploadRecord:
    """The n-th upload of an owner, created n seconds after BASE."""
    created = BASE + timedelta(seconds=n)
    record = UploadRecord(
        id=f"up_{owner[:8]}{n:024x}"[:35], owner=owner, profile="avatar", visibility="public",
        status=status, filename=f"photo {n}.png",  # type: ignore[arg-type]
        declared_type="image/png", declared_size=1000 + n, incoming_key=f"incoming/{n}",
        created_at=clock.isoformat(created), updated_at=clock.isoformat(created),
        expires_at=clock.isoformat(created + timedelta(minutes=5)))
    return replace(record, **changes)  # type: ignore[arg-type]


def test_a_record_reads_back_exactly_as_written(store: RecordStore) -> None:
    bare = make(declared_size=None)
    full = make(n=1, status="ready", content_type="image/png", size=2 ** 40, etag='"abc"',
                stored_key="public/x.png", reason_code="malformed", reason_message="Bad.",
                reason_detail="IDAT", sha256="ab" * 32, served_size=187,
                served_sha256="cd" * 32, served_type="image/webp", renditions="[]",
                transport="multipart", multipart_id="2~abc", part_size=8 * 2 ** 20,
                judged_by="rules 1", reviewed_by="op", review_note="ok",
                filename="résumé 日本.png")
    assert None not in as_dict(full).values()  # every field, each of its own type
    for record in (bare, full):
        store.create(record, pending_cap=10)
        got = store.get(record.id)
        assert got == record
        # The same types too: a decimal equals its int, but a webhook cannot send it.
        assert {k: type(v) for k, v in as_dict(got).items()} == {  # type: ignore[arg-type]
            k: type(v) for k, v in as_dict(record).items()}
        json.dumps(as_dict(got))
    assert store.get("up_" + "0" * 32) is None


def test_a_repeated_create_of_the_same_record_is_done_but_a_taken_id_is_refused(
        store: RecordStore) -> None:
    record = make()
    store.create(record, pending_cap=10)
    store.create(record, pending_cap=10)  # the first answer was lost; the retry is fine
    with pytest.raises(StorageError, match="already taken"):
        store.create(replace(record, owner="mallory"), pending_cap=10)
    assert store.get(record.id) == record


def test_the_pending_cap_counts_only_this_owners_uploads_still_open(
        store: RecordStore) -> None:
    for n in range(3):
        store.create(make(n=n), pending_cap=3)
    store.create(make("bob", n=0), pending_cap=3)  # another owner's count is its own
    with pytest.raises(PendingCapReached) as full:
        store.create(make(n=3), pending_cap=3)
    assert full.value.soonest_expiry == make(n=0).expires_at
    assert store.get(make(n=3).id) is None

    # One leaves pending: there is room again.
    first = make(n=0)
    assert store.transition(first, "processing", allowed_from=("pending",)) is not None
    store.create(make(n=3), pending_cap=3)
    # Pending uploads whose permission lapsed before this one's creation do not count.
    late = make(n=3 + 6 * 60)
    store.create(late, pending_cap=1)
    assert store.get(late.id) == late


class OneRequestAtATime:
    """The in-process emulator is not thread-safe; a real store is linearizable, which
    this models: requests from many threads interleave, each one applied whole."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)
        return call


def test_concurrent_creates_cannot_overshoot_the_pending_cap(store: RecordStore) -> None:
    if isinstance(store, DynamoRecords):
        store = DynamoRecords(OneRequestAtATime(store.client), store.table)  # type: ignore[arg-type]
    cap, tries = 5, 24
    created: list[str] = []
    refused: list[str] = []
    failed: list[Exception] = []
    start = threading.Barrier(8)

    def create(batch: range) -> None:
        start.wait()
        for n in batch:
            try:
                store.create(make("carol", n=n), pending_cap=cap)
                created.append(str(n))
            except PendingCapReached:
                refused.append(str(n))
            except Exception as exc:
                failed.append(exc)

    threads = [threading.Thread(target=create, args=(range(i, tries, 8),)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == []
    assert len(created) == cap
    assert len(refused) == tries - cap


def test_a_transition_happens_only_from_the_states_it_names(store: RecordStore) -> None:
    record = make()
    store.create(record, pending_cap=10)
    assert store.transition(record, "ready", allowed_from=("processing",)) is None
    assert store.get(record.id) == record

    claimed = store.transition(record, "processing", allowed_from=("pending",), etag='"v1"')
    assert claimed is not None
    assert claimed.status == "processing"
    assert claimed.etag == '"v1"'
    assert store.get(record.id) == claimed
    # Another version's claim cannot settle it; this version's can.
    assert store.transition(claimed, "ready", allowed_from=("processing",),
                            claimed_etag='"v2"') is None
    settled = store.transition(claimed, "ready", allowed_from=("processing",),
                               claimed_etag='"v1"', size=42, stored_key="public/k")
    assert settled is not None
    assert store.get(record.id) == settled
    assert (settled.size, settled.stored_key) == (42, "public/k")


def test_a_transition_whose_answer_was_lost_is_recognised_as_done(
        store: RecordStore) -> None:
    record = make()
    store.create(record, pending_cap=10)
    first = store.transition(record, "processing", allowed_from=("pending",), etag='"v1"')
    # The retry of the very same write finds the record already moved, by itself.
    again = store.transition(record, "processing", allowed_from=("pending",), etag='"v1"')
    assert again == first
    # A different write from the same starting point has been superseded.
    assert store.transition(record, "expired", allowed_from=("pending",)) is None


def test_listing_is_newest_first_paginated_and_leaves_out_deleted_and_others(
        store: RecordStore) -> None:
    mine = [make(n=n) for n in range(7)]
    for record in mine:
        store.create(record, pending_cap=100)
    store.create(make("bob", n=100), pending_cap=100)
    gone = mine.pop(3)
    assert store.transition(gone, "deleted", allowed_from=("pending",)) is not None

    seen: list[UploadRecord] = []
    cursor: str | None = None
    for _ in range(10):
        page, cursor = store.list_by_owner("alice", limit=2, cursor=cursor)
        assert len(page) <= 2
        seen += page
        if cursor is None:
            break
    assert [r.id for r in seen] == [r.id for r in reversed(mine)]


def test_a_pass_over_a_status_meets_every_record_in_it_once(
        store: RecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from broker.domain.records import store as store_module

    monkeypatch.setattr(store_module, "PASS_PAGE", 2)  # several pages
    records = [make(owner, n=n) for owner in ("alice", "bob") for n in range(4)]
    for record in records:
        store.create(record, pending_cap=100)
    ready = [store.transition(r, "ready", allowed_from=("pending",)) for r in records[:5]]
    assert all(ready)
    passed = [r.id for r in store.each_in_status("ready")]
    assert sorted(passed) == sorted(r.id for r in records[:5])
    assert len(passed) == len(set(passed))
    assert sorted(r.id for r in store.each_in_status("pending")) == sorted(
        r.id for r in records[5:])


def test_the_audit_log_keeps_every_verdict_and_review_in_order(store: RecordStore) -> None:
    store.webhook_urls = ("audit:",)
    record = make()
    store.create(record, pending_cap=100)
    claimed = store.transition(record, "processing", allowed_from=("pending",))
    assert claimed is not None  # a claim is no verdict: not logged
    ready = store.transition(claimed, "ready", allowed_from=("processing",))
    assert ready is not None
    reviewed = store.transition(ready, "ready", allowed_from=("ready",),
                                reviewed_by="ops:carol", review_note="checked")
    assert reviewed is not None
    assert store.transition(reviewed, "deleted", allowed_from=("ready",)) is not None
    log = store.webhooks("audit", 100)
    assert [(e.type, e.record().reviewed_by) for e in log] == [
        ("upload.ready", None), ("upload.reviewed", "ops:carol"),
        ("upload.deleted", "ops:carol")]
    assert store.due_webhooks("9999-01-01T00:00:00Z", 100) == []  # never sent anywhere


def test_uploads_created_in_the_same_second_are_all_listed_once(store: RecordStore) -> None:
    same_second = [make(n=0, id=f"up_{i:032x}") for i in range(5)]
    for record in same_second:
        store.create(record, pending_cap=100)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page, cursor = store.list_by_owner("alice", limit=2, cursor=cursor)
        seen += [r.id for r in page]
        if cursor is None:
            break
    assert seen == sorted((r.id for r in same_second), reverse=True)


@pytest.mark.parametrize("cursor", ["", "garbage", "eyJ9", "eyJpZCI6MX0="])
def test_a_cursor_this_api_did_not_return_is_refused(store: RecordStore, cursor: str) -> None:
    if not cursor:
        assert store.list_by_owner("alice", cursor=cursor) == ([], None)
        return
    with pytest.raises(InvalidRequest) as refused:
        store.list_by_owner("alice", cursor=cursor)
    assert refused.value.code == "invalid_cursor"


def test_another_owners_cursor_is_refused(store: RecordStore) -> None:
    for n in range(3):
        store.create(make("bob", n=n), pending_cap=100)
    _, cursor = store.list_by_owner("bob", limit=1)
    assert cursor is not None
    with pytest.raises(InvalidRequest):
        store.list_by_owner("alice", cursor=cursor)


def test_open_records_are_found_oldest_first_by_expiry_or_last_change(
        store: RecordStore) -> None:
    for n in range(4):
        store.create(make(n=n * 60), pending_cap=100)
    moved = store.transition(make(n=0), "processing", allowed_from=("pending",))
    assert moved is not None
    store.create(make(n=1000, status="ready"), pending_cap=100)

    cutoff = clock.isoformat(BASE + timedelta(minutes=5, seconds=150))  # past two expiries
    lapsed = store.open_before("pending", cutoff)
    assert [r.id for r in lapsed] == [make(n=60).id, make(n=120).id]
    assert store.open_before("pending", cutoff, limit=1) == lapsed[:1]
    far = clock.isoformat(clock.parse_iso(moved.updated_at) + timedelta(seconds=1))
    assert [r.id for r in store.open_before("processing", far)] == [moved.id]
    assert store.open_before("processing", moved.updated_at) == []


def test_a_store_that_answers_is_ready(store: RecordStore) -> None:
    store.ping()


# Text of every kind, control characters, NUL and unpaired surrogates included.
_ANY_TEXT = st.text(st.characters(codec=None), max_size=40)
# Each example's upload its own id, in a store the examples share (a hash of the
# example's values could repeat: the process's string hashes are seeded at random).
_EXAMPLES = itertools.count(1)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filename=_ANY_TEXT, reason=_ANY_TEXT)
def test_any_value_is_stored_exactly_or_refused_as_the_requests_fault(
        store: RecordStore, filename: str, reason: str) -> None:
    record = make(n=next(_EXAMPLES), filename=filename)
    try:
        store.create(record, pending_cap=10 ** 6)
    except InvalidRequest as refused:
        assert refused.code == "invalid_request"  # noqa: PT017 - either outcome is allowed
        return
    assert store.get(record.id) == record
    try:
        settled = store.transition(record, "rejected", allowed_from=("pending",),
                                   reason_code="malformed", reason_message=reason)
    except InvalidRequest:
        return
    assert store.get(record.id) == settled


def ready(store: RecordStore, record: UploadRecord, size: int, quota: Quota | None = None
          ) -> UploadRecord | None:
    """Create, claim and settle an upload as the validator does."""
    store.create(record, pending_cap=1000)
    claimed = store.transition(record, "processing", allowed_from=("pending",), etag='"e"')
    assert claimed is not None
    return store.transition(claimed, "ready", allowed_from=("processing",),
                            claimed_etag='"e"', quota=quota, size=size + 50,
                            served_size=size)


def test_usage_counts_ready_uploads_and_releases_deleted_ones(store: RecordStore) -> None:
    assert store.usage("dana") == Usage(0, 0)
    first = ready(store, make("dana", n=1), 1000)
    ready(store, make("dana", n=2), 500)
    ready(store, make("erin", n=3), 7)  # someone else's
    assert store.usage("dana") == Usage(1500, 2)  # the files served count
    assert first is not None
    assert store.transition(first, "deleted", allowed_from=("ready",)) is not None
    assert store.usage("dana") == Usage(500, 1)
    # A pending or rejected upload never counted, so deleting it releases nothing.
    pending = make("dana", n=4)
    store.create(pending, pending_cap=1000)
    assert store.transition(pending, "deleted", allowed_from=("pending",)) is not None
    assert store.usage("dana") == Usage(500, 1)


def test_an_upload_that_would_break_the_quota_stays_unsettled(store: RecordStore) -> None:
    quota = Quota(bytes=1000, files=2)
    assert ready(store, make("fay", n=1), 600, quota) is not None
    with pytest.raises(QuotaExceeded):
        ready(store, make("fay", n=2), 500, quota)  # 1100 bytes > 1000
    assert store.get(make("fay", n=2).id).status == "processing"  # type: ignore[union-attr]
    assert ready(store, make("fay", n=3), 400, quota) is not None  # exactly 1000
    with pytest.raises(QuotaExceeded):
        ready(store, make("fay", n=4), 0, Quota(files=2))  # a third file
    with pytest.raises(QuotaExceeded):
        ready(store, make("gus", n=5), 2000, quota)  # larger than the whole quota
    assert store.usage("fay") == Usage(1000, 2)


def test_concurrent_verdicts_cannot_overshoot_the_quota(store: RecordStore) -> None:
    if isinstance(store, DynamoRecords):
        store = DynamoRecords(OneRequestAtATime(store.client), store.table)  # type: ignore[arg-type]
    quota = Quota(files=3)
    claimed = []
    for n in range(12):
        record = make("hal", n=n)
        store.create(record, pending_cap=1000)
        moved = store.transition(record, "processing", allowed_from=("pending",), etag='"e"')
        assert moved is not None
        claimed.append(moved)
    outcomes: list[str] = []
    start = threading.Barrier(6)

    def settle(batch: list[UploadRecord]) -> None:
        start.wait()
        for record in batch:
            try:
                store.transition(record, "ready", allowed_from=("processing",),
                                 claimed_etag='"e"', quota=quota, size=10, served_size=10)
                outcomes.append("ready")
            except QuotaExceeded:
                outcomes.append("over")

    threads = [threading.Thread(target=settle, args=(claimed[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["over"] * 9 + ["ready"] * 3
    assert store.usage("hal") == Usage(30, 3)


def test_a_reported_change_writes_its_webhook_deliveries_with_it(store: RecordStore) -> None:
    from dataclasses import replace as changed

    store.webhook_urls = ("https://one.example/hook", "https://two.example/hook")
    record = make("ivy", n=1)
    store.create(record, pending_cap=10)
    claimed = store.transition(record, "processing", allowed_from=("pending",), etag='"e"')
    assert claimed is not None
    assert store.webhooks("pending") == []  # processing is not reported
    assert store.transition(claimed, "ready", allowed_from=("pending",)) is None
    assert store.webhooks("pending") == []  # a change that did not happen reports nothing
    settled = store.transition(claimed, "ready", allowed_from=("processing",),
                               claimed_etag='"e"', quota=Quota(files=5), size=3,
                               served_size=3)
    assert settled is not None
    due = store.due_webhooks(settled.updated_at)
    assert sorted(d.url for d in due) == list(store.webhook_urls)
    assert {d.event_id for d in due} == {due[0].event_id}  # one event, one id
    assert all(d.type == "upload.ready" and d.record() == settled for d in due)
    assert store.due_webhooks("2000-01-01T00:00:00Z") == []  # not due before it happened

    first = due[0]
    leased = changed(first, due_at="2999-01-01T00:00:00Z")
    assert store.replace_webhook(leased, expected=first)
    assert not store.replace_webhook(leased, expected=first)  # someone else's lease now
    dead = changed(leased, state="dead", attempts=12)
    assert store.replace_webhook(dead, expected=leased)
    assert store.webhooks("dead") == [dead]
    assert store.get_webhook(first.id) == dead


def test_deliveries_to_the_app_wait_apart_from_those_to_receivers(store: RecordStore) -> None:
    from broker.domain.records.outbox import APP_PENDING, APP_TARGET, WebhookDelivery

    store.webhook_urls = ("https://one.example/hook", APP_TARGET)
    record = make("jay", n=1)
    store.create(record, pending_cap=10)
    claimed = store.transition(record, "processing", allowed_from=("pending",), etag='"e"')
    assert claimed is not None
    settled = store.transition(claimed, "rejected", allowed_from=("processing",),
                               claimed_etag='"e"', reason_code="malformed",
                               reason_message="bad")
    assert settled is not None
    def due(**state: str) -> list[WebhookDelivery]:  # this record's: the store is shared
        return [d for d in store.due_webhooks(settled.updated_at, 500, **state)
                if d.upload_id == record.id]

    for_receivers = due()
    for_the_app = due(state=APP_PENDING)
    assert [d.url for d in for_receivers] == ["https://one.example/hook"]
    assert [(d.url, d.type) for d in for_the_app] == [(APP_TARGET, "upload.rejected")]
    # A failed attempt keeps it the app's: it is never handed to a receiver's deliverer.
    retried = for_the_app[0].retried(settled.updated_at, "a receiver failed",
                                     settled.updated_at)
    assert store.replace_webhook(retried, expected=for_the_app[0])
    assert [d.id for d in due(state=APP_PENDING)] == [retried.id]
    assert [d.url for d in due()] == ["https://one.example/hook"]


def test_creates_go_on_where_the_database_keeps_no_prepared_statement(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a pooler in transaction mode (PgBouncer's), a statement prepared on one
    server connection is gone on the next: creates are then planned each time, none
    is lost, and the pending cap still holds. A statement dropped once (DEALLOCATE,
    DISCARD ALL) is prepared again."""
    from broker.domain.records import postgres

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("TRUNCATE uploads")
    store = postgres.PostgresRecords.connect(postgres_url, pool_size=1)
    try:
        store.create(make(n=0), pending_cap=4)
        with store.pool.connection() as conn:  # as if the next create met another backend
            conn.execute("DEALLOCATE broker_create_upload")
            conn.execute("DEALLOCATE broker_owner_lock")
        store.create(make(n=1), pending_cap=4)
        assert store._prepare  # prepared again, and still used

        exec_ = postgres._exec

        def pooled(conn: Any, statement: str, *rest: Any) -> Any:
            done = exec_(conn, statement, *rest)
            if statement.startswith("PREPARE"):  # the next statement goes elsewhere
                exec_(conn, "DEALLOCATE broker_create_upload", *rest)
            return done

        monkeypatch.setattr(postgres, "_exec", pooled)
        with store.pool.connection() as conn:
            conn.execute("DEALLOCATE broker_create_upload")
        for n in (2, 3):
            store.create(make(n=n), pending_cap=4)
        assert not store._prepare
        with pytest.raises(PendingCapReached):
            store.create(make(n=4), pending_cap=4)
        assert [store.get(make(n=n).id) is not None for n in range(5)] == [True] * 4 + [False]
    finally:
        store.close()


def test_a_create_reads_only_its_owners_waiting_uploads(postgres_url: str) -> None:
    """The pending cap counts the owner's own waiting uploads, so a create's database
    work stays small however many other owners have uploads waiting. Also on a fresh
    database, whose create statement is planned before there are any statistics."""
    from broker.domain.records import postgres
    from broker.domain.records.migrations import migrate
    from tests.postgres_server import new_database

    url = new_database(postgres_url, "fresh_records")
    migrate(url)
    store = postgres.PostgresRecords.connect(url, pool_size=1)  # one plan, made early
    try:
        for n in range(1500):
            store.create(make(owner=f"other-{n}", n=n), pending_cap=20)
        mine = make(owner="alice")  # while all of theirs still wait
        with store.pool.connection() as conn:
            explained = psycopg.ClientCursor(conn, row_factory=tuple_row)
            explained.execute(
                f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {postgres._CREATE}"
                "(%s, %s, 20, %s)", [mine.owner, mine.created_at, json.dumps(as_dict(mine))])
            row = explained.fetchone()
        assert row is not None
        plan = row[0][0]["Plan"]
        assert plan["Actual Rows"] == 1  # written
        assert _rows_passed_over(plan) == 0, plan  # none of the others' read to be skipped
    finally:
        store.close()


def _rows_passed_over(plan: dict[str, Any]) -> int:
    """Rows a query plan read and then dropped for not matching, over all its nodes."""
    return int(plan.get("Rows Removed by Filter", 0)) + sum(
        _rows_passed_over(child) for child in plan.get("Plans", []))
