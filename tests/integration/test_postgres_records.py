"""Records in PostgreSQL (BROKER_DATABASE_URL), as a self-hoster runs them: through
`make run`'s stack, across restarts of the stack and of the database, and with the
schema managed by `broker migrate`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from broker.common.errors import StorageError
from broker.devstack.stack import DevStack
from broker.domain.records.migrations import latest_version, migrate
from broker.web import create_app
from tests.conftest import require_system
from tests.integration.conftest import free_port, serving
from tests.postgres_server import (
    PostgresServer,
    new_database,
    postgres_installed,
    running_postgres,
)
from tests.samples import SECRET, auth, png_bytes, send_upload, settle

pytestmark = pytest.mark.integration
BROKER = str(Path(sys.executable).parent / "broker")


@pytest.fixture(scope="module")
def database() -> Iterator[PostgresServer]:
    """A server of this module's own: its tests stop and start it."""
    require_system("PostgreSQL", postgres_installed(), "apt-get install postgresql")
    with running_postgres() as server:
        migrate(server.url)
        yield server


def test_the_local_stack_keeps_its_records_in_postgresql_across_a_restart(
        database: PostgresServer) -> None:
    seen = []
    for _ in range(2):  # the stack, then the stack started again on the same database
        port = free_port()
        stack = DevStack(emulator_port=free_port(), broker_origin=f"http://127.0.0.1:{port}",
                         overrides={"jwt_secret": SECRET, "database_url": database.url})
        try:  # the emulator's process is stopped however the start or the test ends
            settings = stack.start()
            with serving(create_app(settings.model_dump(), clients=stack.clients),
                         port) as broker:
                if not seen:
                    upload_id = send_upload(broker, "pg-restart", png_bytes())
                    ready = settle(broker, "pg-restart", upload_id)
                    assert ready["status"] == "ready"
                seen.append(requests.get(f"{broker}/v1/uploads", headers=auth("pg-restart"),
                                         timeout=30).json()["items"])
        finally:
            stack.stop()
    before, after = seen
    assert len(before) == 1

    def lasting(upload: dict[str, Any]) -> dict[str, Any]:  # the links name the store
        kept = {k: v for k, v in upload.items() if k not in ("url", "download_url")}
        served = dict(kept["served"])
        served["renditions"] = [{k: v for k, v in r.items() if k != "url"}
                                for r in served["renditions"]]
        assert served["renditions"], "a public picture's renditions are kept too"
        return {**kept, "served": served}
    # The emulator's memory is gone; the records are not.
    assert [lasting(u) for u in after] == [lasting(u) for u in before]
    with psycopg.connect(database.url) as conn:
        row = conn.execute("SELECT status, sha256 FROM uploads WHERE owner = 'pg-restart'"
                           ).fetchone()
    assert row == ("ready", before[0]["sha256"])


def test_the_broker_rides_out_a_database_restart(database: PostgresServer) -> None:
    stack = DevStack(emulator_port=free_port(), broker_origin="http://127.0.0.1:1",
                     overrides={"jwt_secret": SECRET, "database_url": database.url})
    request = {"profile": "avatar", "filename": "a.png", "content_type": "image/png",
               "size": 10}
    try:  # the emulator's process is stopped however the start or the test ends
        settings = stack.start(with_worker=False)
        client = create_app(settings.model_dump(), clients=stack.clients).test_client()
        assert client.post("/v1/uploads", json=request, headers=auth("pg-blip")
                            ).status_code == 201
        database.stop()
        down = client.post("/v1/uploads", json=request, headers=auth("pg-blip"))
        assert down.status_code == 503
        assert down.content_type == "application/problem+json"
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json["checks"]["storage"] == "ok"  # type: ignore[index]
        assert ready.json["checks"]["records"] != "ok"  # type: ignore[index]
        database.start()
        # The pool drops the connections the restart broke and opens new ones (its
        # reconnection backs off while the database is down: allow it some seconds).
        deadline = time.monotonic() + 120  # a restart on a busy machine: generous
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the broker did not recover"
            time.sleep(0.5)
        assert client.post("/v1/uploads", json=request, headers=auth("pg-blip")
                           ).status_code == 201
        listed = client.get("/v1/uploads", headers=auth("pg-blip")).json["items"]  # type: ignore[index]
        assert len(listed) == 2  # the refused request left nothing behind
    finally:
        if not database.running:
            database.start()
        stack.stop()


def test_a_create_on_a_connection_the_restart_broke_is_sent_again_on_a_fresh_one(
        database: PostgresServer) -> None:
    from broker.domain.records.postgres import PostgresRecords
    from tests.records.test_contract import make

    store = PostgresRecords.connect(database.url, pool_size=1)
    try:
        store.create(make("pg-stale", n=1), pending_cap=10)
        database.stop()
        database.start()
        # The pool's one connection died with the server: the create notices, drops
        # it, and writes on a new one, once.
        store.create(make("pg-stale", n=2), pending_cap=10)
        assert store.get(make("pg-stale", n=2).id) == make("pg-stale", n=2)
    finally:
        store.close()


def run_broker(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")} | {
        "BROKER_DATABASE_URL": url, "BROKER_JWT_SECRET": SECRET}
    return subprocess.run([BROKER, *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_broker_migrate_brings_an_empty_database_up_to_this_release(
        database: PostgresServer) -> None:
    url = new_database(database.url, "fresh")
    # A broker refuses a database whose schema is behind, saying what to run.
    with pytest.raises(StorageError, match="broker migrate"):
        create_app({"jwt_secret": SECRET, "database_url": url})

    first = run_broker("migrate", url=url)
    assert first.returncode == 0, first.stderr
    assert "applied migration 0001 uploads" in first.stdout
    again = run_broker("migrate", url=url)
    assert again.returncode == 0
    assert "applied" not in again.stdout  # nothing left to apply
    assert f"version {latest_version()}" in again.stdout
    create_app({"jwt_secret": SECRET, "database_url": url})  # now it starts


def test_a_schema_newer_than_this_release_is_refused_not_touched(
        database: PostgresServer) -> None:
    url = new_database(database.url, "ahead")
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO broker_schema (version, name) VALUES (9999, 'future')")
    done = run_broker("migrate", url=url)
    assert done.returncode == 1
    assert "newer than this release" in done.stderr
    with pytest.raises(StorageError, match="upgrade the broker"):
        create_app({"jwt_secret": SECRET, "database_url": url})


def test_broker_migrate_without_a_database_says_why(database: PostgresServer) -> None:
    unreachable = f"postgresql://broker@127.0.0.1:{free_port()}/broker"
    done = run_broker("migrate", url=unreachable)
    assert done.returncode == 1
    assert "could not be migrated" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_usage_migration_counts_uploads_already_ready(database: PostgresServer) -> None:
    from broker.domain.records.migrations import migrations

    url = new_database(database.url, "before_usage")
    first = migrations()[0]
    with psycopg.connect(url, autocommit=True) as conn:  # a database of release 0001
        conn.execute("CREATE TABLE broker_schema (version integer PRIMARY KEY, name text "
                     "NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        conn.execute(first.sql.encode())
        conn.execute("INSERT INTO broker_schema (version, name) VALUES (1, 'uploads')")
        for n, (status, size) in enumerate([("ready", 100), ("ready", 50), ("rejected", 7)]):
            conn.execute(
                "INSERT INTO uploads (id, owner, profile, visibility, status, filename, "
                "declared_type, incoming_key, created_at, updated_at, expires_at, size, "
                "served_size) VALUES (%s, 'old-user', 'avatar', 'public', %s, 'a.png', "
                "'image/png', 'k', now(), now(), now(), %s, %s)",
                [f"up_{n:032x}", status, size + 1, size])
    applied = [m.version for m in migrate(url)]
    assert applied[:1] == [2]  # then any later ones
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT stored_bytes, stored_files FROM owner_usage").fetchall(
            ) == [(150, 2)]
