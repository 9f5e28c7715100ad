"""Shared fixtures: a scrubbed environment, the AWS emulator in-process, sample files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from moto import mock_aws

from broker.aws.clients import AwsClients, make_clients
from broker.compose import compose
from broker.provision import provision
from broker.settings import Settings, load_settings
from broker.validator.judge import Validator
from broker.web import create_app
from tests.samples import SECRET


@pytest.fixture(autouse=True)
def scrubbed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's BROKER_* or AWS_* settings, or real credentials."""
    for name in list(os.environ):
        if name.startswith(("BROKER_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def settings() -> Settings:
    return load_settings(jwt_secret=SECRET, public_base_url="https://cdn.example.test")


@pytest.fixture
def aws(settings: Settings) -> Iterator[AwsClients]:
    """Every AWS call goes to moto in this process, with the product's resources made."""
    with mock_aws():
        clients = make_clients(settings)
        provision(clients, settings, "uploads-events", ["https://app.example.test"])
        yield clients


@pytest.fixture
def queue_url(aws: AwsClients) -> str:
    return aws.sqs.get_queue_url(QueueName="uploads-events")["QueueUrl"]


@pytest.fixture
def app(settings: Settings, aws: AwsClients) -> Flask:
    return create_app(settings.model_dump(), clients=aws)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def validator(settings: Settings, aws: AwsClients) -> Validator:
    return compose(settings, aws).validator


# -- suites that need system packages ------------------------------------------------
# Under CI=true they must run; elsewhere they may skip, and the summary says so loudly.
IN_CI = os.environ.get("CI", "").lower() == "true"
_SKIPPED_FOR_PACKAGES: dict[str, str] = {}


def require_system(what: str, available: bool, install: str) -> None:
    """Skip (or, in CI, fail) a test whose system package is missing."""
    if available:
        return
    message = f"{what} is not installed ({install})"
    if IN_CI:
        pytest.fail(f"CI must run this suite: {message}")
    _SKIPPED_FOR_PACKAGES[what] = install
    pytest.skip(message)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _SKIPPED_FOR_PACKAGES:
        return
    write = terminalreporter.write_line
    write("")
    write("!" * 78, red=True, bold=True)
    write("SKIPPED SUITES: these tests did not run because system packages are missing.",
          red=True, bold=True)
    for what, install in _SKIPPED_FOR_PACKAGES.items():
        write(f"  - {what}: {install}", red=True)
    write("CI (CI=true) installs them and runs everything: make test CI=true (as root).",
          red=True)
    write("!" * 78, red=True, bold=True)


@pytest.fixture(scope="session")
def clamd_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real clamd with the test signature database."""
    from tests.clamd_server import clamd_installed, running_clamd

    require_system("clamd", clamd_installed(), "apt-get install clamav clamav-daemon")
    with running_clamd(tmp_path_factory.mktemp("clamd")) as address:
        yield address


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server (Debian's package), one for the session, migrated."""
    from broker.domain.records.migrations import migrate
    from tests.postgres_server import postgres_installed, running_postgres

    require_system("PostgreSQL", postgres_installed(), "apt-get install postgresql")
    with running_postgres() as server:
        migrate(server.url)
        yield server.url


# -- a real browser: Debian's headless Chromium driven by Playwright ----------------
# Defined once here: a second session of Playwright's sync API cannot start inside
# the first one's event loop.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    require_system("Chromium", CHROMIUM.exists(), "apt-get install chromium chromium-driver")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # A start-up on a busy machine can take longer than Playwright's 30 s default.
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_FLAGS, timeout=120_000)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True)
    yield context.new_page()
    context.close()


# -- no process outlives the session -------------------------------------------------
# Every process a test starts is the pytest process's descendant, or (a daemon that
# detached itself: Ceph's, LocalStack's) carries this mark in its environment.
SESSION_MARK = "TESTS_SESSION_MARK"
# Runtimes a library keeps for the interpreter's whole life and stops itself at exit
# (not a test's): jsii's node kernel, which the CDK tests drive.
INTERPRETER_RUNTIMES = ("jsii-runtime.js",)


def _proc_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every process, from /proc."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            command = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue  # exited meanwhile
        name, rest = stat.split(" (", 1)[1].rsplit(")", 1)
        state, parent = rest.split()[:2]
        table[int(entry.name)] = (int(parent), state,
                                  command.replace(b"\0", b" ").decode(errors="replace").strip()
                                  or f"[{name}]")
    return table


def _marked(pid: int, mark: bytes) -> bool:
    try:
        return mark in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _leftovers(root: int, mark: bytes) -> dict[int, tuple[int, str, str]]:
    """The processes still there that this session started (zombies included)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    found |= {pid for pid in table if pid != root and _marked(pid, mark)}

    def runtime(pid: int) -> bool:
        return pid in table and any(name in table[pid][2] for name in INTERPRETER_RUNTIMES)

    return {pid: table[pid] for pid in found
            if not runtime(pid) and not runtime(table[pid][0])}


def _end_processes(pids: list[int], root: int, grace: float) -> None:
    """SIGTERM, SIGKILL after `grace`; reap those that are this process's children."""
    import signal
    import time
    from contextlib import suppress

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        for pid in pids:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while True:
            table = _proc_table()
            for pid in pids:
                if table.get(pid, (0, "", ""))[0] == root:
                    with suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
            table = _proc_table()
            alive = [pid for pid in pids
                     if pid in table and (table[pid][1] != "Z" or table[pid][0] == root)]
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        pids = alive
        if not pids:
            return


def _stop_own_helpers() -> None:
    """The helper this process started for contained picture work (the fork server)
    ends with it; end it now, as it is not a leftover."""
    from broker.domain.pictures import forkserver

    forkserver.stop()


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_session() -> Iterator[None]:
    """At the end of the session, every process the tests started must be gone: any
    left is ended (SIGTERM, then SIGKILL), reaped, and fails the session by name."""
    import secrets

    root = os.getpid()
    mark = secrets.token_hex(8)
    os.environ[SESSION_MARK] = mark
    yield
    os.environ.pop(SESSION_MARK, None)
    _stop_own_helpers()
    left: dict[int, tuple[int, str, str]] = {}
    for _ in range(5):  # again: one ended may have started another meanwhile
        found = _leftovers(root, f"{SESSION_MARK}={mark}".encode())
        if not found:
            break
        left |= found
        _end_processes(sorted(found), root, grace=10)
    if not left:
        return
    named = "\n".join(
        f"  pid {pid} (parent {parent}{', exited but never reaped' if state == 'Z' else ''})"
        f": {command}" for pid, (parent, state, command) in sorted(left.items()))
    pytest.fail(f"{len(left)} process(es) outlived the tests (now ended):\n{named}",
                pytrace=False)
