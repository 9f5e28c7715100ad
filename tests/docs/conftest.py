"""One local stack for the documentation's tests: `broker run` as a reader starts it
(through its command line, in a scratch folder of its own), with the webhook
receiver of docs/examples/ listening for its events."""

from __future__ import annotations

import base64
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.docs.blocks import ROOT
from tests.waiting import stop_process, wait_for_http

BROKER_COMMAND = Path(sys.executable).parent / "broker"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"docs-webhook-secret-0123456789ab").decode()
_SUMMARY: list[str] = []


def summarize(line: str) -> None:
    """A line for the end of the run (`pytest tests/docs` prints them)."""
    if line not in _SUMMARY:
        _SUMMARY.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _SUMMARY:
        terminalreporter.write_line(line)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def load_example(name: str) -> ModuleType:
    """A module of docs/examples/ by file name (they are files, not a package)."""
    path = ROOT / "docs" / "examples" / name
    spec = importlib.util.spec_from_file_location(f"docs_example_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clean_env() -> dict[str, str]:
    """The environment without the developer's BROKER_* or AWS_* settings."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("BROKER_", "AWS_", "PROMETHEUS_MULTIPROC_DIR"))}


@dataclass
class Recorder:
    """Keeps every request body the webhook receiver got, then hands it on."""

    app: Any
    bodies: list[bytes] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        self.bodies.append(body)
        from io import BytesIO

        environ["wsgi.input"] = BytesIO(body)
        return self.app(environ, start_response)


@dataclass
class Stack:
    url: str
    folder: Path  # broker run's working folder: .broker/secret is here
    receiver: Any  # the example receiver's Flask app
    recorder: Recorder
    webhook_url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        """`broker token USER`, run where `broker run` runs (it reads .broker/secret)."""
        if user in self.tokens:
            return self.tokens[user]
        done = subprocess.run([str(BROKER_COMMAND), "token", user], cwd=self.folder,
                              env=clean_env(), capture_output=True, text=True, check=True,
                              timeout=60)
        self.tokens[user] = done.stdout.strip()
        return self.tokens[user]

    def secret(self) -> str:
        return (self.folder / ".broker" / "secret").read_text().strip()

    def reader_folder(self, name: str) -> Path:
        """A folder laid out as the repository is for a reader's commands (`.venv`,
        `docs`, the stack's `.broker`), where what they write lands."""
        folder = self.folder / "readers" / name
        folder.mkdir(parents=True)
        for entry in (".venv", "docs"):
            (folder / entry).symlink_to(ROOT / entry)
        (folder / ".broker").symlink_to(self.folder / ".broker")
        return folder


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("docs-stack")
    receiver = load_example("webhook_receiver.py").create_app(WEBHOOK_SECRET)
    recorder = Recorder(receiver)
    hooks = make_server("127.0.0.1", free_port(), recorder, threaded=True)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    webhook_url = f"http://127.0.0.1:{hooks.server_port}/webhooks"
    port = free_port()
    env = clean_env() | {"TMPDIR": str(folder), "BROKER_WEBHOOK_URL": webhook_url,
                         "BROKER_WEBHOOK_SECRET": WEBHOOK_SECRET}
    log_path = folder / "broker-run.log"
    with log_path.open("wb") as log:
        run = subprocess.Popen(
            [str(BROKER_COMMAND), "run", "--port", str(port), "--emulator-port",
             str(free_port()), "--push-port", str(free_port())],
            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=run, log=log_path,
                      what="the docs' broker run")
        yield Stack(f"http://127.0.0.1:{port}", folder, receiver, recorder, webhook_url)
    finally:
        stop_process(run, group=True, sig=signal.SIGINT)  # Ctrl-C, as a reader stops it
        hooks.shutdown()
        hooks.server_close()
