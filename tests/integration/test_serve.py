"""`broker serve`: the broker under gunicorn, as a self-hoster runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from broker.devstack.stack import DevStack
from broker.settings import Settings
from tests.integration.conftest import free_port
from tests.samples import SECRET, auth, settle
from tests.waiting import wait_for_http

pytestmark = pytest.mark.integration
BROKER = str(Path(sys.executable).parent / "broker")


@pytest.fixture(scope="module")
def emulator() -> Iterator[Settings]:
    # The records in the emulator's DynamoDB: the processes started here share them.
    stack = DevStack(emulator_port=free_port(), broker_origin="http://127.0.0.1:1",
                     overrides={"jwt_secret": SECRET}, records="dynamodb")
    try:
        # The emulator's queue is provisioned; no worker runs unless a test starts one.
        yield stack.start(with_worker=False)
    finally:
        stack.stop()


def start_serve(settings: Settings, port: int, *extra: str, **settings_env: str
                ) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")} | {
        "BROKER_ENDPOINT_URL": settings.endpoint_url or "", "BROKER_JWT_SECRET": SECRET,
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"} | settings_env
    # A session of its own: its gunicorn workers can be stopped with it, whatever happens.
    return subprocess.Popen([BROKER, "serve", "--port", str(port), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> str:
    """SIGTERM (gunicorn's graceful stop), SIGKILL to its whole group if it does not
    end in time; reaped either way. What it printed."""
    from tests.waiting import stop_process

    return stop_process(proc, sig=signal.SIGTERM, grace=60, group=True)


def test_broker_serve_answers_under_gunicorn_and_stops_gracefully(emulator: Settings) -> None:
    port = free_port()
    proc = start_serve(emulator, port, "--workers", "2", "--threads", "2")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=proc)
        created = requests.post(f"http://127.0.0.1:{port}/v1/uploads", headers=auth("serve"),
                                timeout=30, json={"profile": "avatar", "filename": "a.png",
                                                  "content_type": "image/png", "size": 10})
        assert created.status_code == 201, created.text
        listed = requests.get(f"http://127.0.0.1:{port}/v1/uploads", headers=auth("serve"),
                              timeout=30).json()["items"]
        assert [u["id"] for u in listed] == [created.json()["id"]]
    finally:
        output = stop(proc)
    assert proc.returncode == 0, output
    assert "gthread" in output  # threads per worker, as asked
    assert output.count("Booting worker") == 2


def test_broker_serve_refuses_a_bad_setting_by_name(emulator: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")} | {
        "BROKER_JWT_SECRET": SECRET, "BROKER_PRESIGN_TTL": "forever"}
    done = subprocess.run([BROKER, "serve", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "BROKER_PRESIGN_TTL" in done.stderr


def create(port: int, user: str) -> requests.Response:
    return requests.post(f"http://127.0.0.1:{port}/v1/uploads", headers=auth(user), timeout=30,
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
                stop(proc)


def test_broker_serve_warns_that_memory_limits_are_per_worker(emulator: Settings) -> None:
    port = free_port()
    proc = start_serve(emulator, port, "--workers", "2")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=proc)
    finally:
        output = stop(proc)
    assert "BROKER_RATE_LIMIT_STORAGE" in output


def counted_creates(port: int) -> float:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "broker_uploads_created_total" and \
                    sample.labels.get("profile") == "avatar":
                return sample.value
    return 0.0


def test_broker_serve_sums_metrics_over_its_workers_and_logs_json(emulator: Settings) -> None:
    port = free_port()
    proc = start_serve(emulator, port, "--workers", "2", "--threads", "1",
                       BROKER_LOG_FORMAT="json")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=proc)
        for n in range(6):
            assert create(port, f"metrics-{n}").status_code == 201
        # Whichever worker answers the scrape, it counts what both did.
        assert {counted_creates(port) for _ in range(6)} == {6.0}
    finally:
        output = stop(proc)
    logged = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert any(line["logger"] == "gunicorn.access" for line in logged)
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in logged)


def test_broker_worker_judges_on_its_own_and_serves_its_metrics(emulator: Settings) -> None:
    from tests.samples import png_bytes

    app_port, metrics_port = free_port(), free_port()
    proc = start_serve(emulator, app_port, "--workers", "1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")} | {
        "BROKER_ENDPOINT_URL": emulator.endpoint_url or "", "BROKER_JWT_SECRET": SECRET,
        "BROKER_QUEUE_URL": emulator.queue_url or "", "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local"}
    worker = subprocess.Popen([BROKER, "worker", "--metrics-port", str(metrics_port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{app_port}/healthz", process=proc)
        wait_for_http(f"http://127.0.0.1:{metrics_port}/metrics", process=worker)
        data = png_bytes()
        created = requests.post(f"http://127.0.0.1:{app_port}/v1/uploads",
                                headers=auth("worker"), timeout=30,
                                json={"profile": "avatar", "filename": "a.png",
                                      "content_type": "image/png", "size": len(data)}).json()
        requests.post(created["upload"]["url"], data=created["upload"]["fields"], timeout=30,
                      files={"file": ("a.png", data, "image/png")})
        assert settle(f"http://127.0.0.1:{app_port}", "worker", created["id"]
                      )["status"] == "ready"
        text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).text
        assert 'broker_verdicts_total{code="accepted",status="ready"} 1.0' in text
    finally:
        for process in (proc, worker):
            stop(process)
    assert worker.returncode == 0
