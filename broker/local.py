"""The whole product on one machine: emulator, provisioning, worker and broker.

`broker run` calls `DevStack.start()`; the integration tests use it too.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from broker.clients import AwsClients, make_clients
from broker.provision import ensure_table, provision_push, provision_queue, provision_storage
from broker.settings import Settings, load_settings

log = logging.getLogger(__name__)

QUEUE_NAME = "uploads-events"
LOCAL_WORKER_CONCURRENCY = 16


def ensure_local_secret(path: Path) -> None:
    """Generate the local signing secret once; `broker token` reads the same file."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")


def use_emulator_credentials() -> None:
    """The emulator accepts any credentials; never let real ones reach it by accident."""
    os.environ["AWS_ACCESS_KEY_ID"] = "local"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "local"  # noqa: S105 - not a secret: the emulator's
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)


@dataclass
class DevStack:
    """Emulator + provisioned resources + validator, started and stopped together.

    Storage is the emulator's, or a store you bring (`s3_endpoint_url` in the
    overrides, its keys in the usual AWS variables). Events come from the
    emulator's SQS queue, or (`events="http"`) by push to a receiver started here.
    """

    host: str = "127.0.0.1"
    emulator_port: int = 0
    broker_origin: str = "http://127.0.0.1:8000"
    push_port: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    # Where the records live unless BROKER_DATABASE_URL says: a SQLite file of the
    # stack's own (removed at stop), or the emulator's DynamoDB table.
    records: Literal["sqlite", "dynamodb"] = "sqlite"
    settings: Settings | None = None
    clients: AwsClients | None = None
    _server: Any = None
    _push_server: Any = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _worker: threading.Thread | None = None
    _worker_process: Any = None
    _records_dir: str | None = None

    def start(self, with_worker: bool = True) -> Settings:
        from broker.emulator import EmbeddedEmulator

        if "BROKER_WORKER_CONCURRENCY" not in os.environ:
            # Judging here waits mostly on the in-process emulator: more at once keeps it busy.
            self.overrides.setdefault("worker_concurrency", LOCAL_WORKER_CONCURRENCY)
        if "BROKER_WEBHOOK_ALLOW_PRIVATE" not in os.environ:
            # A receiver on the developer's machine works with nothing else set.
            self.overrides.setdefault("webhook_allow_private", True)
        brought = load_settings(env="local", **self.overrides).s3_endpoint_url
        if brought is None:
            use_emulator_credentials()
        elif "BROKER_EVENTS" not in os.environ:
            # A store of your own cannot notify the emulator's queue: it pushes to us.
            self.overrides.setdefault("events", "http")
        self._server = EmbeddedEmulator(self.host, self.emulator_port)
        self._server.start()
        endpoint = self._server.endpoint
        base = load_settings(env="local", endpoint_url=endpoint, **self.overrides)
        clients = make_clients(base)
        origins = (self.broker_origin, self.broker_origin.replace("127.0.0.1", "localhost"))
        provision_storage(clients, base, origins, serve_public_bucket=True)
        updates: dict[str, Any] = {"allowed_origins": base.allowed_origins or origins}
        if base.database_url is None and self.records == "dynamodb":
            ensure_table(clients, base.table)
        elif base.database_url is None:
            self._records_dir = tempfile.mkdtemp(prefix="broker-records-")
            path = Path(self._records_dir) / "records.sqlite3"
            updates["database_url"] = SecretStr(f"sqlite://{path}")
        if base.events == "sqs":
            updates["queue_url"] = provision_queue(clients, base, QUEUE_NAME)
        elif base.event_token is None:
            updates["event_token"] = SecretStr(secrets.token_urlsafe(24))
        self.settings = base.model_copy(update=updates)
        self.clients = clients
        if with_worker:
            self.start_worker()
        return self.settings

    def start_worker(self, own_process: bool = False) -> None:
        """The validator, its sweeper and the webhook deliverer: in threads of this
        process, or (`own_process`) in a child process of their own."""
        if own_process:
            from broker.local_worker import WorkerProcess

            assert self.settings is not None
            self._worker_process = WorkerProcess(self.settings, self.host, self.push_port)
            self._worker_process.start()
            return
        from broker.webhooks.deliverer import start_deliverer
        from lambdas.validator.process import Validator
        from lambdas.validator.push import PushReceiver, serve_push
        from lambdas.validator.sweep import run_sweeper
        from lambdas.validator.worker import run_worker

        assert self.settings is not None
        assert self.clients is not None
        validator = Validator.build(self.settings, self.clients)
        start_deliverer(self.settings, self.clients, validator.records, self._stop)
        if self.settings.events == "http":
            assert self.settings.event_token is not None
            token = self.settings.event_token.get_secret_value()
            self._push_server = serve_push(PushReceiver(validator, token), self.host,
                                           self.push_port)
            url = f"http://{self.host}:{self._push_server.server_port}/events/{token}"
            provision_push(self.clients, self.settings, QUEUE_NAME, url)
            log.info("validator receiving pushed events on %s:%s", self.host,
                     self._push_server.server_port)
            self._worker = threading.Thread(target=run_sweeper, name="sweeper", daemon=True,
                                            args=(validator, self._stop))
            self._worker.start()
            return
        assert self.settings.queue_url is not None
        self._worker = threading.Thread(
            target=run_worker, name="validator-worker", daemon=True,
            args=(validator, self.clients.sqs, self.settings.queue_url, self._stop),
            kwargs={"wait_seconds": 1},
        )
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._worker_process is not None:
            self._worker_process.stop()
        if self._push_server is not None:
            self._push_server.shutdown()
        if self._worker is not None:
            self._worker.join(timeout=10)
        if self._server is not None:
            self._server.stop()
        if self._records_dir is not None:
            shutil.rmtree(self._records_dir, ignore_errors=True)
