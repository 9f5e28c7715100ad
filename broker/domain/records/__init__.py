"""Upload records: one contract (`RecordStore`), three stores. DynamoDB is the AWS
default; PostgreSQL (BROKER_DATABASE_URL) is for self-hosting; SQLite keeps the
development stack's (`broker run`), where the emulator's DynamoDB scans. The
composition root (`broker.compose.open_records`) picks one from the settings."""

from __future__ import annotations

from broker.domain.records.dynamodb import DynamoRecords
from broker.domain.records.model import (
    MAX_PAGE,
    PendingCapReached,
    Status,
    UploadRecord,
    renditions_of,
    served_keys,
)
from broker.domain.records.store import RecordStore

__all__ = ["MAX_PAGE", "DynamoRecords", "PendingCapReached", "RecordStore", "Status",
           "UploadRecord", "renditions_of", "served_keys"]
