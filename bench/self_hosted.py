"""Verdicts on the self-hosted topology, as docs/operations/self-hosting.md starts it:
Ceph RGW storage pushing its events to `broker worker`, records in PostgreSQL, rate
limits in Redis, `broker serve` in front; measured as `broker run` is (bench/verdicts.py),
with the shipped profiles. Every process's CPU is counted, the store's and the
databases' included. `python -m bench self-hosted` runs this part alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.common import SECRET, free_port, process, running_rgw
from bench.verdicts import CLIENTS, LOST_AFTER, Outcomes, Stack, measure

BROKER = str(Path(sys.executable).parent / "broker")
UPLOADS = int(os.environ.get("BENCH_SELF_HOSTED_UPLOADS", "3000"))
HALF_UPLOADS = int(os.environ.get("BENCH_SELF_HOSTED_HALF_UPLOADS", "1000"))
WORKERS = 2  # processes, for `broker serve` and for `broker worker` (their defaults)
TOKEN = "push-token-" + "b" * 24


def bench_self_hosted() -> dict[str, float] | None:
    """The figures, or None when Ceph RGW, PostgreSQL or Redis is not installed."""
    from broker.domain.auth import issue_token
    from tests.postgres_server import postgres_installed, running_postgres
    from tests.redis_server import redis_installed, running_redis

    if not (postgres_installed() and redis_installed()):
        return None
    with running_rgw() as rgw:
        if rgw is None:
            return None
        with running_postgres() as database, running_redis(free_port()) as redis:
            port, validator_port = free_port(), free_port()
            closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: no emulator
            env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")} | {
                "AWS_ACCESS_KEY_ID": rgw.access_key,
                "AWS_SECRET_ACCESS_KEY": rgw.secret_key,
                "BROKER_S3_ENDPOINT_URL": rgw.endpoint, "BROKER_DATABASE_URL": database.url,
                "BROKER_RATE_LIMIT_STORAGE": redis.url, "BROKER_EVENTS": "http",
                "BROKER_EVENT_TOKEN": TOKEN, "BROKER_JWT_SECRET": SECRET,
                "BROKER_DYNAMODB_ENDPOINT_URL": closed, "BROKER_SQS_ENDPOINT_URL": closed,
                "BROKER_UPLOAD_RATE_LIMIT": "1000000/minute",
                "BROKER_MAX_PENDING_UPLOADS": "10000"}
            subprocess.run([BROKER, "provision", "--public-read", "--queue", "bench-events",
                            "--push-url", f"http://127.0.0.1:{validator_port}/events/{TOKEN}"],
                           env=env, check=True, capture_output=True, timeout=300)
            base = f"http://127.0.0.1:{port}"
            with process([BROKER, "serve", "--port", str(port), "--workers", str(WORKERS)],
                         env, f"{base}/healthz") as broker, \
                    process([BROKER, "worker", "--port", str(validator_port), "--workers",
                             str(WORKERS)], env,
                            f"http://127.0.0.1:{validator_port}/metrics") as worker:
                tokens = [issue_token(SECRET.encode(), f"bench-self-{i}", 3600)
                          for i in range(CLIENTS)]
                parts = {broker.pid: "broker", worker.pid: "validator",
                         **{pid: "Ceph RGW" for pid in rgw.daemons()}}
                if database.pid is not None:
                    parts[database.pid] = "PostgreSQL"
                if redis.pid is not None:
                    parts[redis.pid] = "Redis"
                stack = Stack(base, tokens, parts)
                _first_verdict(stack)
                return measure(stack, UPLOADS, HALF_UPLOADS) | {"renditions": True}


def _first_verdict(stack: Stack) -> None:
    """Wait out RGW's discovery of its new topic (about 30 s): the first verdict."""
    first = Outcomes()
    stack.upload(-1, first)
    if not first.seconds:
        raise RuntimeError(f"the self-hosted topology judged no upload within "
                           f"{LOST_AFTER:.0f} s")


def print_self_hosted(figures: dict[str, float] | None) -> None:
    from bench.verdicts import print_verdicts

    if figures is None:
        print("\nverdicts on the self-hosted topology: needs Ceph RGW "
              "(scripts/ceph-rgw.sh install), PostgreSQL and Redis")
        return
    from broker.settings import Settings

    concurrency = Settings.model_fields["worker_concurrency"].default
    print_verdicts(figures, f"{WORKERS} processes x {concurrency}",
                   where=f"the self-hosted topology (Ceph RGW pushing events, `broker serve` "
                         f"and `broker worker`, {WORKERS} processes each, PostgreSQL, Redis)")
