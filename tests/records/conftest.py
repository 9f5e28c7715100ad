"""Every records test runs on each store the product supports: DynamoDB (the
emulator in-process, through the broker's own DynamoDB client), PostgreSQL (a real
server from Debian's package) and SQLite (the development stack's)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from broker.aws.clients import AwsClients
from broker.aws.lean_json import LeanDynamoDB
from broker.domain.records import DynamoRecords, RecordStore
from broker.domain.records.sqlite import SqliteRecords
from broker.settings import Settings


@pytest.fixture(params=["dynamodb", "postgresql", "sqlite"])
def store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[RecordStore]:
    if request.param == "dynamodb":
        aws: AwsClients = request.getfixturevalue("aws")
        yield DynamoRecords(LeanDynamoDB(aws.dynamodb), settings.table)
        return
    if request.param == "sqlite":
        sqlite = SqliteRecords()
        yield sqlite
        sqlite.close()
        return
    from broker.domain.records.postgres import PostgresRecords

    url: str = request.getfixturevalue("postgres_url")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE uploads")
    records = PostgresRecords.connect(url, pool_size=8)
    yield records
    records.close()
