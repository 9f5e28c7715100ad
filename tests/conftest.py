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
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True)
    yield context.new_page()
    context.close()
