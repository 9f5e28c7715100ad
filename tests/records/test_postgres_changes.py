"""With the records in PostgreSQL, a broker's long polls hear a state change that
another process wrote as it commits, whichever kind of write made it."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import psycopg
import pytest

from broker.domain.quotas import Quota
from broker.domain.records.postgres import PostgresRecords
from tests.records.test_contract import make


@pytest.fixture
def stores(postgres_url: str) -> Iterator[tuple[PostgresRecords, PostgresRecords]]:
    """Two stores with pools of their own: a broker's, and a validator's elsewhere."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("TRUNCATE uploads")
    broker, validator = (PostgresRecords.connect(postgres_url) for _ in range(2))
    yield broker, validator
    broker.close()
    validator.close()


def test_every_kind_of_state_change_is_heard_by_another_process(
        stores: tuple[PostgresRecords, PostgresRecords]) -> None:
    broker, validator = stores
    heard: queue.Queue[str] = queue.Queue()
    broker.follow_changes(heard.put)
    broker.follow_changes(heard.put)  # again, as each long poll does: still one listener
    record = make(owner="listener")
    validator.create(record, pending_cap=10)
    claimed = validator.transition(record, "processing", allowed_from=("pending",))
    assert claimed is not None
    validator.webhook_urls = ("audit:",)  # a change that writes deliveries too
    ready = validator.transition(claimed, "ready", allowed_from=("processing",),
                                 content_type="image/png", size=10, quota=Quota())  # usage
    assert ready is not None
    validator.webhook_urls = ()
    assert validator.transition(ready, "deleted", allowed_from=("ready",)) is not None
    assert [heard.get(timeout=30) for _ in range(3)] == [record.id] * 3
    assert validator.transition(claimed, "rejected", allowed_from=("processing",)) is None
    with pytest.raises(queue.Empty):  # a write that moved nothing announces nothing
        heard.get(timeout=2)
