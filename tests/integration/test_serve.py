"""`broker serve`: the broker under gunicorn, as a self-hoster runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from broker.local import DevStack
from broker.settings import Settings
from tests.integration.conftest import free_port
from tests.samples import SECRET, auth
from tests.waiting import wait_for_http

pytestmark = pytest.mark.integration
BROKER = str(Path(sys.executable).parent / "broker")


@pytest.fixture(scope="module")
def emulator() -> Iterator[Settings]:
    stack = DevStack(emulator_port=free_port(), broker_origin="http://127.0.0.1:1",
                     overrides={"jwt_secret": SECRET})
    try:
        yield stack.start(with_worker=False)
    finally:
        stack.stop()


def start_serve(settings: Settings, port: int, *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")} | {
        "BROKER_ENDPOINT_URL": settings.endpoint_url or "", "BROKER_JWT_SECRET": SECRET,
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
    return subprocess.Popen([BROKER, "serve", "--port", str(port), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_broker_serve_answers_under_gunicorn_and_stops_gracefully(emulator: Settings) -> None:
    port = free_port()
    proc = start_serve(emulator, port, "--workers", "2", "--threads", "2")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=proc)
        created = requests.post(f"http://127.0.0.1:{port}/v1/uploads", headers=auth("serve"),
                                timeout=10, json={"profile": "avatar", "filename": "a.png",
                                                  "content_type": "image/png", "size": 10})
        assert created.status_code == 201, created.text
        listed = requests.get(f"http://127.0.0.1:{port}/v1/uploads", headers=auth("serve"),
                              timeout=10).json()["items"]
        assert [u["id"] for u in listed] == [created.json()["id"]]
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output
    assert "gthread" in output  # threads per worker, as asked
    assert output.count("Booting worker") == 2


def test_broker_serve_refuses_a_bad_setting_by_name(emulator: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")} | {
        "BROKER_JWT_SECRET": SECRET, "BROKER_PRESIGN_TTL": "forever"}
    done = subprocess.run([BROKER, "serve", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "BROKER_PRESIGN_TTL" in done.stderr
