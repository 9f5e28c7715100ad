"""The presign, side by side: the broker's POST /v1/uploads, a bare Flask endpoint that
only presigns, the durable floor (that bare presign and one committed INSERT into the
PostgreSQL the broker's records are in), and Uppy Companion's GET /s3/params, each one
process (gunicorn with one worker, or Node), against one emulator, requests
interleaved in rounds.

Figures per server and concurrency: the CPU the server process spent per request (from
/proc, user + system), the CPU the database spent meanwhile, and the latency clients
saw (p50, p99).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.common import (
    SECRET,
    bench_env,
    cpu_seconds,
    free_port,
    percentile,
    process,
    tree_cpu_seconds,
    worker_pid,
)
from tests.npm import npm_available, npm_install

COMPANION_VERSION = "6.2.2"
CONCURRENCY = (1, 16)
ROUNDS, PER_ROUND, WARMUP = 5, 200, 40


@dataclass
class Figures:
    cpu_seconds: float = 0.0
    db_cpu_seconds: float = 0.0
    requests: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds / self.requests * 1000

    @property
    def db_cpu_ms(self) -> float:
        return self.db_cpu_seconds / self.requests * 1000

    @property
    def total_cpu_ms(self) -> float:
        return self.cpu_ms + self.db_cpu_ms

    def percentile(self, share: float) -> float:
        return percentile(self.latencies, share) * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) * 1000


@dataclass
class Server:
    name: str
    pid: int
    call: Callable[[requests.Session], int]


def _gunicorn(app: str, port: int, env: dict[str, str]) -> list[str]:
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    return [gunicorn, "-w", "1", "-k", "gthread", "--threads", "16", "--keep-alive", "30",
            "-b", f"127.0.0.1:{port}", app]


@contextmanager
def _companion(endpoint: str) -> Iterator[tuple[int, int] | None]:
    """Companion's standalone server on the same emulator; None without node and npm."""
    if not npm_available():
        yield None
        return
    cache = npm_install("companion", "@uppy/companion", COMPANION_VERSION)
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = os.environ | {
            "NODE_ENV": "production", "COMPANION_PORT": str(port),
            "COMPANION_DOMAIN": f"127.0.0.1:{port}", "COMPANION_PROTOCOL": "http",
            "COMPANION_DATADIR": data, "COMPANION_SECRET": "bench-companion-secret",
            "COMPANION_PREAUTH_SECRET": "bench-companion-preauth",
            "COMPANION_UPLOAD_URLS": f"{endpoint}/", "COMPANION_CLIENT_ORIGINS": "true",
            "COMPANION_AWS_KEY": "bench", "COMPANION_AWS_SECRET": "bench",
            "COMPANION_AWS_BUCKET": "uploads-incoming", "COMPANION_AWS_REGION": "us-east-1",
            "COMPANION_AWS_ENDPOINT": endpoint, "COMPANION_AWS_FORCE_PATH_STYLE": "true",
            "COMPANION_HIDE_METRICS": "true"}
        node = ["node", str(cache / "node_modules" / "@uppy" / "companion" / "bin" / "companion")]
        with process(node, env, f"http://127.0.0.1:{port}/") as companion:
            yield port, companion.pid


@dataclass
class Database:
    url: str
    label: str
    pid: int | None  # the server's process tree, whose CPU is counted; None: in-process


@contextmanager
def _records_database() -> Iterator[Database]:
    """Where the broker keeps its records here: PostgreSQL, a real server over TCP like
    a deployment's (the emulator's DynamoDB copies its whole table for every write and
    is not safe for concurrent ones), else a SQLite file."""
    from tests.postgres_server import postgres_installed, running_postgres

    if not postgres_installed():
        with tempfile.TemporaryDirectory() as folder:
            yield Database(f"sqlite:///{folder}/records.sqlite3",
                           "SQLite (PostgreSQL not installed)", None)
        return
    from broker.domain.records.migrations import migrate

    with running_postgres() as server:
        migrate(server.url)
        assert server.pid is not None
        yield Database(server.url, "PostgreSQL on loopback", server.pid)


def bench_presign(endpoint: str) -> tuple[str, dict[int, dict[str, Figures]]]:
    """The records store used, and {concurrency: {server: figures}}; Companion is left
    out when node is missing, the floor when PostgreSQL is."""

    with _records_database() as database:
        env = bench_env(endpoint) | {"BROKER_DATABASE_URL": database.url}
        return database.label, _bench_presign(endpoint, env, database.pid)


def _bench_presign(endpoint: str, env: dict[str, str], db_pid: int | None
                   ) -> dict[int, dict[str, Figures]]:
    from broker.domain.auth import issue_token

    ports = {"broker": free_port(), "bare": free_port(), "floor": free_port()}
    # Every request from another user, as in production: the rate limit and the
    # pending cap stay on, and their cost is part of the figure.
    total = len(CONCURRENCY) * (WARMUP + ROUNDS * PER_ROUND)
    tokens = iter([issue_token(SECRET.encode(), f"user-{i}", 3600) for i in range(total)])
    body = {"profile": "bench", "filename": "a.png", "content_type": "image/png",
            "size": 1000}

    def broker_call(session: requests.Session) -> int:
        reply = session.post(f"http://127.0.0.1:{ports['broker']}/v1/uploads", json=body,
                             headers={"Authorization": f"Bearer {next(tokens)}"}, timeout=30)
        assert reply.status_code == 201, reply.text
        return reply.status_code

    def presign_call(name: str) -> Callable[[requests.Session], int]:
        url = f"http://127.0.0.1:{ports[name]}/presign"
        return lambda session: session.post(url, timeout=30).status_code

    with ExitStack() as running:
        broker = running.enter_context(process(
            _gunicorn("bench.apps:broker_app()", ports["broker"], env), env,
            f"http://127.0.0.1:{ports['broker']}/healthz"))
        bare = running.enter_context(process(
            _gunicorn("bench.apps:bare_app()", ports["bare"], env), env,
            f"http://127.0.0.1:{ports['bare']}/"))
        servers = [Server("broker", worker_pid(broker.pid), broker_call),
                   Server("bare", worker_pid(bare.pid), presign_call("bare"))]
        if db_pid is not None:
            floor = running.enter_context(process(
                _gunicorn("bench.apps:floor_app()", ports["floor"], env), env,
                f"http://127.0.0.1:{ports['floor']}/"))
            servers.append(Server("floor", worker_pid(floor.pid), presign_call("floor")))
        companion = running.enter_context(_companion(endpoint))
        if companion is not None:
            port, pid = companion

            def companion_call(session: requests.Session) -> int:
                return session.get(f"http://127.0.0.1:{port}/s3/params", timeout=30,
                                   params={"filename": "a.png", "type": "image/png"}
                                   ).status_code
            servers.append(Server("companion", pid, companion_call))
        return {clients: _measure(servers, clients, db_pid) for clients in CONCURRENCY}


def _measure(servers: list[Server], clients: int, db_pid: int | None
             ) -> dict[str, Figures]:
    sessions = [requests.Session() for _ in range(clients)]
    figures = {s.name: Figures() for s in servers}
    with ThreadPoolExecutor(clients) as pool:
        for server in servers:
            _load(pool, sessions, server, WARMUP, None)
        for _ in range(ROUNDS):  # interleaved, so machine noise hits every server alike
            for server in servers:
                before = cpu_seconds(server.pid)
                db_before = tree_cpu_seconds(db_pid) if db_pid else 0.0
                _load(pool, sessions, server, PER_ROUND, figures[server.name])
                figures[server.name].cpu_seconds += cpu_seconds(server.pid) - before
                if db_pid:
                    figures[server.name].db_cpu_seconds += tree_cpu_seconds(db_pid) - db_before
    return figures


def _load(pool: ThreadPoolExecutor, sessions: list[requests.Session], server: Server,
          count: int, into: Figures | None) -> None:
    def one(n: int) -> float:
        started = time.perf_counter()
        status = server.call(sessions[n % len(sessions)])
        assert status in (200, 201), (server.name, status)
        return time.perf_counter() - started

    latencies = list(pool.map(one, range(count)))
    if into is not None:
        into.requests += count
        into.latencies += latencies


def print_presign(measured: tuple[str, dict[int, dict[str, Figures]]]) -> None:
    store, results = measured
    print(f"\nthe presign, CPU per request in the server's one process and in the database, "
          f"and latency ({ROUNDS * PER_ROUND} requests each, interleaved rounds, one emulator; "
          f"the broker's records in {store}):")
    labels = {"broker": "broker POST /v1/uploads (auth, checks, record)",
              "bare": "bare Flask + generate_presigned_post",
              "floor": "floor: bare + one committed INSERT",
              "companion": f"Uppy Companion {COMPANION_VERSION} GET /s3/params"}
    for clients, figures in results.items():
        bare = figures["bare"].cpu_ms
        print(f"  {clients} concurrent client{'s' if clients > 1 else ''}:")
        print(f"    {'':<48} {'server':>9} {'database':>9}")
        for name, f in figures.items():
            print(f"    {labels[name]:<48} {f.cpu_ms:6.3f} ms {f.db_cpu_ms:6.3f} ms "
                  f"({f.cpu_ms / bare:4.2f}x bare)  p50 {f.p50:6.2f} ms  "
                  f"p99 {f.percentile(0.99):6.2f} ms")
        if "floor" in figures:
            broker, floor = figures["broker"], figures["floor"]
            print(f"    broker + database / floor + database CPU: {broker.total_cpu_ms:.3f} / "
                  f"{floor.total_cpu_ms:.3f} ms = {broker.total_cpu_ms / floor.total_cpu_ms:.2f}x")
        if "companion" in figures:
            ratio = figures["broker"].cpu_ms / figures["companion"].cpu_ms
            print(f"    broker / Companion CPU: {ratio:.2f}x")
    if not any("floor" in f for f in results.values()):
        print("  (PostgreSQL is not installed: apt-get install postgresql adds the floor)")
    if not any("companion" in f for f in results.values()):
        print("  (node and npm are not installed: apt-get install nodejs npm adds Companion)")
