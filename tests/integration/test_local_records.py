"""`broker run` keeps its records in a SQLite file of its own: the broker, the
validator and other `broker` commands share it, and it is gone when the stack stops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from broker.devstack.stack import DevStack
from broker.domain.records.sqlite import SqliteRecords
from broker.web import create_app
from tests.integration.conftest import free_port, serving
from tests.samples import SECRET, png_bytes, send_upload, settle

pytestmark = pytest.mark.integration
BROKER = str(Path(sys.executable).parent / "broker")


def test_the_local_stack_shares_one_sqlite_file_and_removes_it() -> None:
    port = free_port()
    stack = DevStack(emulator_port=free_port(), broker_origin=f"http://127.0.0.1:{port}",
                     overrides={"jwt_secret": SECRET})
    try:  # the emulator's process is stopped however the start or the test ends
        settings = stack.start()
        assert settings.records_store == "sqlite"
        path = Path(settings.sqlite_path)
        app = create_app(settings.model_dump(), clients=stack.clients)
        with serving(app, port) as base:
            upload_id = send_upload(base, "local-records", png_bytes())
            assert settle(base, "local-records", upload_id)["status"] == "ready"
        assert SqliteRecords(str(path)).get(upload_id) is not None  # another connection
        env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")} | {
            "BROKER_DATABASE_URL": f"sqlite://{path}", "BROKER_JWT_SECRET": SECRET}
        listed = subprocess.run([BROKER, "webhooks", "list"], env=env, capture_output=True,
                                text=True, timeout=120)
        assert listed.returncode == 0, listed.stderr  # another process reads the same file
    finally:
        stack.stop()
    assert not path.exists()


def test_broker_runs_validator_in_its_own_process_wakes_the_brokers_long_polls(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`broker run` judges in a child process; its verdicts still wake long polls here."""
    import time

    import requests

    from broker.domain.records import changes
    from tests.samples import auth

    monkeypatch.setattr(changes, "RECHECK", 600.0)  # only the child's word wakes us in time
    port = free_port()
    stack = DevStack(emulator_port=free_port(), broker_origin=f"http://127.0.0.1:{port}",
                     overrides={"jwt_secret": SECRET})
    try:  # the emulator's and the worker's processes are stopped however the test ends
        settings = stack.start(with_worker=False)
        stack.start_worker(own_process=True)
        app = create_app(settings.model_dump(), clients=stack.clients)
        with serving(app, port) as base:
            started = time.monotonic()
            upload_id = send_upload(base, "own-process", png_bytes())
            seen: list[str] = []
            while not seen or seen[-1] not in ("ready", "rejected"):
                answer = requests.get(f"{base}/v1/uploads/{upload_id}", params={"wait": 20},
                                      headers=auth("own-process"), timeout=60)
                seen.append(answer.json()["status"])
            assert seen[-1] == "ready"
            assert time.monotonic() - started < 20  # woken, not left to the re-check
    finally:
        stack.stop()
    assert not Path(settings.sqlite_path).exists()
