"""Versioned SQL migrations for the PostgreSQL records: `broker/domain/records/sql/NNNN_name.sql`,
applied in order, each in its own transaction, and remembered in `broker_schema`.

Several processes may start at once (two brokers, a validator): the one holding the
advisory lock applies what is missing, the others find it done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from broker.common.errors import RecordsUnavailable

# Any constant shared by every process of the product: "broker" in ASCII.
_MIGRATION_LOCK = 0x62726F6B6572
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration this release ships, oldest first."""
    found = []
    for entry in files("broker.domain.records").joinpath("sql").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def latest_version() -> int:
    return migrations()[-1].version


def current_version(conn: psycopg.Connection[Any]) -> int:
    """The newest version applied to this database (0: none)."""
    cursor = conn.cursor(row_factory=tuple_row)
    exists = cursor.execute("SELECT to_regclass('broker_schema') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = cursor.execute("SELECT coalesce(max(version), 0) FROM broker_schema").fetchone()
    return int(row[0]) if row else 0


def migrate(url: str) -> list[Migration]:
    """Apply every migration the database lacks; the ones applied now."""
    applied: list[Migration] = []
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", [_MIGRATION_LOCK])
            conn.execute("CREATE TABLE IF NOT EXISTS broker_schema (version integer PRIMARY KEY,"
                         " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            have = current_version(conn)
            _refuse_newer(have)
            for migration in migrations():
                if migration.version <= have:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute("INSERT INTO broker_schema (version, name) VALUES (%s, %s)",
                                 [migration.version, migration.name])
                applied.append(migration)
    except psycopg.Error as exc:
        raise RecordsUnavailable(f"the records database could not be migrated: {exc}") from exc
    return applied


def check_current(conn: psycopg.Connection[Any]) -> None:
    """Refuse to run on a schema older or newer than this release's."""
    have, want = current_version(conn), latest_version()
    _refuse_newer(have)
    if have < want:
        raise RecordsUnavailable(f"the records database is at schema version {have}, this release "
                           f"needs {want}: run `broker migrate`")


def _refuse_newer(have: int) -> None:
    if have > latest_version():
        raise RecordsUnavailable(f"the records database is at schema version {have}, newer than "
                           f"this release knows ({latest_version()}): upgrade the broker")
