"""The self-hosted production topology, with no emulator anywhere: Ceph RGW storage
pushing its events, records in PostgreSQL, rate limits in Redis, two brokers under
`broker serve` and two validator processes under `broker worker`, all started the
way docs/operations/self-hosting.md says. DynamoDB and SQS point at a closed port: a call to
either would fail the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conformance.conftest import Rgw
from tests.conftest import require_system
from tests.integration.conftest import free_port
from tests.postgres_server import PostgresServer, postgres_installed, running_postgres
from tests.redis_server import RedisServer, redis_installed, running_redis
from tests.samples import SECRET, auth, png_bytes, same_picture, send_upload, settle
from tests.waiting import wait_for_http

pytestmark = pytest.mark.conformance
BROKER = str(Path(sys.executable).parent / "broker")
TOKEN = "push-token-" + "t" * 24


@dataclass
class Topology:
    env: dict[str, str]
    database: PostgresServer
    redis: RedisServer
    broker_ports: list[int]
    validator_port: int
    logs: Path  # what each process prints, for a failure's message
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_files: dict[int, Path] = field(default_factory=dict)  # by pid

    @property
    def brokers(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.broker_ports]

    def run(self, *args: str) -> str:
        done = subprocess.run([BROKER, *args], env=self.env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self) -> None:
        for port in self.broker_ports:
            self.processes.append(self._spawn("serve", "--port", str(port), "--workers", "1"))
        self.validator = self._spawn("worker", "--port", str(self.validator_port),
                                     "--workers", "2")
        self.processes.append(self.validator)
        urls = [*self.brokers, f"http://127.0.0.1:{self.validator_port}"]
        for url, process in zip(urls, self.processes, strict=True):
            wait_for_http(f"{url}/metrics", process=process, log=self.log_files[process.pid])

    def stop(self) -> None:
        """SIGTERM to every process at once (gunicorn's graceful stop), then each is
        waited for; one that hangs is killed with its workers."""
        from tests.waiting import stop_process

        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            stop_process(process, grace=60, group=True)
        self.processes.clear()

    def validator_processes(self) -> list[int]:
        """The validator's worker processes (gunicorn's children)."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            if int(fields[1]) == self.validator.pid:  # the parent's pid
                children.append(int(stat.parent.name))
        return children

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        # A session of its own: its gunicorn workers can be stopped with it.
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{'-'.join(args)}.log").open("ab") as log:
            process = subprocess.Popen([BROKER, *args], env=self.env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.log_files[process.pid] = Path(log.name)
        return process


@pytest.fixture(scope="module")
def topology(rgw: Rgw, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    require_system("PostgreSQL", postgres_installed(), "apt-get install postgresql")
    require_system("Redis", redis_installed(), "apt-get install redis-server")
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: no emulator anywhere
    with running_postgres() as database, running_redis(free_port()) as redis:
        validator_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")} | {
            "AWS_ACCESS_KEY_ID": rgw.access_key, "AWS_SECRET_ACCESS_KEY": rgw.secret_key,
            "BROKER_S3_ENDPOINT_URL": rgw.endpoint, "BROKER_DATABASE_URL": database.url,
            "BROKER_RATE_LIMIT_STORAGE": redis.url, "BROKER_EVENTS": "http",
            "BROKER_EVENT_TOKEN": TOKEN, "BROKER_JWT_SECRET": SECRET,
            "BROKER_INCOMING_BUCKET": "self-incoming", "BROKER_PUBLIC_BUCKET": "self-public",
            "BROKER_PRIVATE_BUCKET": "self-private", "BROKER_DYNAMODB_ENDPOINT_URL": closed,
            "BROKER_SQS_ENDPOINT_URL": closed, "BROKER_SWEEP_INTERVAL": "2",
            "BROKER_STUCK_AFTER": "60", "BROKER_LOG_FORMAT": "json"}
        topology = Topology(env, database, redis, [free_port(), free_port()], validator_port,
                            tmp_path_factory.mktemp("self-hosted-logs"))
        topology.run("provision", "--public-read", "--queue", "self-events", "--push-url",
                     f"http://127.0.0.1:{validator_port}/events/{TOKEN}")
        try:
            topology.start()
            yield topology
        finally:
            topology.stop()


def verdicts(topology: Topology) -> float:
    """Accepted verdicts, summed over every validator process."""
    text = requests.get(f"http://127.0.0.1:{topology.validator_port}/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith('broker_verdicts_total{code="accepted",status="ready"}'):
            return float(line.split()[-1])
    return 0.0


def test_uploads_through_two_brokers_are_judged_once_each_by_two_validators(
        topology: Topology) -> None:
    for broker in topology.brokers:
        ready = requests.get(f"{broker}/readyz", timeout=30).json()
        assert ready == {"status": "ready", "checks": {"storage": "ok", "records": "ok"}}
    before = verdicts(topology)
    pictures = {send_upload(topology.brokers[n % 2], "self-hosted", png_bytes(20 + n, 20)): n
                for n in range(8)}
    for upload_id, n in pictures.items():
        # RGW finds a new persistent topic's queue within about 30 s; then it is prompt.
        record = settle(topology.brokers[(n + 1) % 2], "self-hosted", upload_id, timeout=90)
        assert record["status"] == "ready", record
        assert same_picture(requests.get(record["url"], timeout=30).content,
                            png_bytes(20 + n, 20))
    assert verdicts(topology) - before == len(pictures)  # none judged twice


def test_an_upload_in_flight_when_its_validator_is_killed_still_settles(
        topology: Topology) -> None:
    data = png_bytes(1500, 1500)  # large enough to be caught being judged
    upload_id = send_upload(topology.brokers[0], "killed", data)
    deadline = time.monotonic() + 120  # until the event reaches a validator: prompt unloaded
    status = "pending"
    while status == "pending" and time.monotonic() < deadline:
        status = requests.get(f"{topology.brokers[0]}/v1/uploads/{upload_id}",
                              headers=auth("killed"), timeout=30).json()["status"]
        time.sleep(0.02)
    assert status == "processing"  # claimed: it is being judged now
    for pid in topology.validator_processes():
        os.kill(pid, signal.SIGKILL)
    record = settle(topology.brokers[1], "killed", upload_id, timeout=120)
    assert record["status"] == "ready", record
    assert same_picture(requests.get(record["url"], timeout=30).content, data)


def test_the_records_outlive_a_restart_of_every_process_and_the_database(
        topology: Topology) -> None:
    before = requests.get(f"{topology.brokers[0]}/v1/uploads", headers=auth("self-hosted"),
                          timeout=30).json()["items"]
    assert len(before) == 8
    topology.stop()
    topology.database.stop()
    topology.redis.stop()
    topology.database.start()
    topology.redis.start()
    topology.start()
    after = requests.get(f"{topology.brokers[1]}/v1/uploads", headers=auth("self-hosted"),
                         timeout=30).json()["items"]
    assert after == before
    assert requests.get(after[0]["url"], timeout=30).status_code == 200
    # And the restarted pipeline judges new uploads.
    upload_id = send_upload(topology.brokers[1], "self-hosted", png_bytes(9, 9))
    assert settle(topology.brokers[0], "self-hosted", upload_id, timeout=120
                  )["status"] == "ready"


def test_one_users_concurrent_creates_keep_to_the_rate_limit_and_the_pending_cap(
        topology: Topology) -> None:
    """80 creates of one user at once, across both brokers: the per-user rate limit (60 a
    minute, counted in Redis) and the pending cap (20, checked by PostgreSQL as each
    record is written) hold exactly, whichever broker and worker answers."""
    from concurrent.futures import ThreadPoolExecutor

    import psycopg

    headers = auth("all-at-once")
    body = {"profile": "avatar", "filename": "me.png", "content_type": "image/png",
            "size": 1000}

    def create(n: int) -> tuple[int, str]:
        broker = topology.brokers[n % len(topology.brokers)]
        reply = requests.post(f"{broker}/v1/uploads", json=body, headers=headers, timeout=60)
        return reply.status_code, reply.json().get("code", "")

    with ThreadPoolExecutor(32) as clients:
        answers = list(clients.map(create, range(80)))
    assert sorted(answers).count((201, "")) == 20
    assert answers.count((429, "too_many_pending")) == 40  # within the rate, over the cap
    assert answers.count((429, "rate_limited")) == 20  # the 61st and later in the minute
    with psycopg.connect(topology.database.url) as conn:
        pending = conn.execute("SELECT count(*) FROM uploads WHERE owner = %s AND status = "
                               "'pending'", ["all-at-once"]).fetchone()
    assert pending == (20,)
