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


def start_serve(settings: Settings, port: int, *extra: str, **settings_env: str
                ) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")} | {
        "BROKER_ENDPOINT_URL": settings.endpoint_url or "", "BROKER_JWT_SECRET": SECRET,
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"} | settings_env
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


def create(port: int, user: str) -> requests.Response:
    return requests.post(f"http://127.0.0.1:{port}/v1/uploads", headers=auth(user), timeout=10,
                         json={"profile": "avatar", "filename": "a.png",
                               "content_type": "image/png", "size": 10})


def test_two_brokers_sharing_redis_enforce_one_users_limit_together(
        emulator: Settings) -> None:
    from tests.conftest import require_system
    from tests.redis_server import redis_installed, running_redis

    require_system("Redis", redis_installed(), "apt-get install redis-server")
    with running_redis(free_port()) as redis:
        limits = {"BROKER_RATE_LIMIT_STORAGE": redis.url, "BROKER_UPLOAD_RATE_LIMIT": "6/minute"}
        ports = [free_port(), free_port()]
        brokers = [start_serve(emulator, port, "--workers", "2", **limits) for port in ports]
        try:
            for port, proc in zip(ports, brokers, strict=True):
                wait_for_http(f"http://127.0.0.1:{port}/healthz", process=proc)
            # Alternating between the two brokers (and their workers): one count.
            answers = [create(ports[n % 2], "shared-limit").status_code for n in range(10)]
            assert answers == [201] * 6 + [429] * 4
            assert create(ports[0], "someone-else").status_code == 201  # per user

            # Redis goes away: each process goes on limiting on its own, nothing breaks.
            redis.stop()
            fallback = [create(ports[0], "redis-down").status_code for _ in range(20)]
            assert fallback.count(201) >= 6
            assert 429 in fallback
        finally:
            for proc in brokers:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=30)


def test_broker_serve_warns_that_memory_limits_are_per_worker(emulator: Settings) -> None:
    port = free_port()
    proc = start_serve(emulator, port, "--workers", "2")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert "BROKER_RATE_LIMIT_STORAGE" in output
