"""Upload records: one contract (`RecordStore`), three stores. DynamoDB is the AWS
default; PostgreSQL (BROKER_DATABASE_URL) is for self-hosting; SQLite keeps the
development stack's (`broker run`), where the emulator's DynamoDB scans."""

from __future__ import annotations

from typing import TYPE_CHECKING

from broker.records.dynamodb import DynamoRecords
from broker.records.lean_dynamodb import LeanDynamoDB
from broker.records.model import (
    MAX_PAGE,
    PendingCapReached,
    Quota,
    QuotaExceeded,
    Status,
    UploadRecord,
    Usage,
)
from broker.records.store import RecordStore

if TYPE_CHECKING:
    from broker.clients import AwsClients
    from broker.settings import Settings

__all__ = ["MAX_PAGE", "DynamoRecords", "PendingCapReached", "Quota", "QuotaExceeded",
           "RecordStore", "Status", "UploadRecord", "Usage", "open_records"]


def open_records(settings: Settings, clients: AwsClients) -> RecordStore:
    """The store the settings name: DynamoDB, or what BROKER_DATABASE_URL names
    (PostgreSQL, SQLite). With webhook receivers configured, it writes their outbox with
    each state change."""
    store: RecordStore
    if settings.records_store == "sqlite":
        from broker.records.sqlite import SqliteRecords

        store = SqliteRecords(settings.sqlite_path)
    elif settings.database_url is not None:
        from broker.records.postgres import PostgresRecords  # psycopg only when used

        store = PostgresRecords.connect(settings.database_url.get_secret_value(),
                                        pool_size=settings.database_pool_size)
    else:
        store = DynamoRecords(LeanDynamoDB(clients.dynamodb), settings.table)
    store.webhook_urls = settings.webhook_urls
    return store
