"""The whole product on one machine: emulator, provisioning, worker and broker.

`broker run` calls `DevStack.start()`; the integration tests use it too.
"""

from __future__ import annotations

import logging
import os
import secrets
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from broker.aws.clients import AwsClients, make_clients
from broker.compose import compose
from broker.devstack.emulator import EmbeddedEmulator, Kept
from broker.devstack.judging import QUEUE_NAME, Judging
from broker.devstack.keeping import restore
from broker.devstack.worker_process import WorkerProcess
from broker.provision import ensure_table, provision_queue, provision_storage
from broker.settings import Settings, load_settings

log = logging.getLogger(__name__)


LOCAL_WORKER_CONCURRENCY = 16
# Pages served from this machine on any port (an app of your own next to `make run`),
# which the embedded emulator's buckets accept; a store you bring keeps to the list.
LOOPBACK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*")
# What an app on this machine needs to share the stack (the Flask extension's settings):
# where storage, the records and the public files are, and the emulator's credentials.
SHARED_FOR_APPS = ("endpoint_url", "database_url", "public_base_url", "incoming_bucket",
                   "public_bucket", "private_bucket", "region", "profiles_file", "app_signal")


def ensure_local_secret(path: Path) -> None:
    """Generate the local signing secret once; `broker token` reads the same file."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")


def write_stack_env(settings: Settings, path: Path) -> None:
    """`.broker/stack.env`: the settings an app on this machine needs to use the stack
    (`set -a; . .broker/stack.env` before starting it, as `make example` does)."""
    lines = [f"AWS_DEFAULT_REGION={settings.region}", "BROKER_ENV=local"]
    if settings.s3_endpoint_url is None:  # the emulator's throwaway keys; never a real one
        lines += ["AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local"]
    for name in SHARED_FOR_APPS:
        value = getattr(settings, name)
        if value is None:
            continue
        plain = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        lines.append(f"BROKER_{name.upper()}={shlex.quote(plain)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


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
    # stack's own, or the emulator's DynamoDB table.
    records: Literal["sqlite", "dynamodb"] = "sqlite"
    # Where the SQLite records and the emulator's objects are kept between runs (`broker
    # run`'s .broker/data); None: a temporary folder, removed at stop.
    keep_in: Path | None = None
    settings: Settings | None = None
    clients: AwsClients | None = None
    _server: Any = None
    _judging: Judging | None = None
    _worker_process: WorkerProcess | None = None
    _records_dir: str | None = None

    def start(self, with_worker: bool = True) -> Settings:
        if "BROKER_WORKER_CONCURRENCY" not in os.environ:
            # Judging here waits mostly on the in-process emulator: more at once keeps it busy.
            self.overrides.setdefault("worker_concurrency", LOCAL_WORKER_CONCURRENCY)
        if "BROKER_WEBHOOK_ALLOW_PRIVATE" not in os.environ:
            # A receiver on the developer's machine works with nothing else set.
            self.overrides.setdefault("webhook_allow_private", True)
        if "BROKER_APP_SIGNAL" not in os.environ:
            # An app that mounts the broker hears each verdict with nothing else set.
            self.overrides.setdefault("app_signal", True)
        first = load_settings(env="local", **self.overrides)
        brought = first.s3_endpoint_url
        if brought is None:
            use_emulator_credentials()
        elif "BROKER_EVENTS" not in os.environ:
            # A store of your own cannot notify the emulator's queue: it pushes to us.
            self.overrides.setdefault("events", "http")
        kept = None
        if self.keep_in is not None and brought is None:
            kept = Kept(self.keep_in / "storage", _buckets(first))
        self._server = EmbeddedEmulator(self.host, self.emulator_port, kept)
        self._server.start()
        endpoint = self._server.endpoint
        base = load_settings(env="local", endpoint_url=endpoint, **self.overrides)
        clients = make_clients(base)
        own = (self.broker_origin, self.broker_origin.replace("127.0.0.1", "localhost"))
        # The broker's own page and every app origin allowed (BROKER_ALLOWED_ORIGINS) may
        # call the broker and post to storage (a page elsewhere embeds the uploader); to
        # the emulator, any app on this machine's loopback too (one mounting the broker).
        origins = tuple(dict.fromkeys((*own, *base.allowed_origins)))
        posting = origins if brought else (*origins, *LOOPBACK_ORIGINS)
        provision_storage(clients, base, posting, serve_public_bucket=True)
        updates: dict[str, Any] = {"allowed_origins": origins}
        if base.database_url is None and self.records == "dynamodb":
            ensure_table(clients, base.table)
        elif base.database_url is None:
            folder = self._records_folder()
            updates["database_url"] = SecretStr(f"sqlite://{folder / 'records.sqlite3'}")
        if base.events == "sqs":
            updates["queue_url"] = provision_queue(clients, base, QUEUE_NAME)
        elif base.event_token is None:
            updates["event_token"] = SecretStr(secrets.token_urlsafe(24))
        self.settings = base.model_copy(update=updates)
        self.clients = clients
        if kept is not None:
            # The emulator keeps what this run stores; the last run's goes back first.
            restored = restore(clients.s3, kept.buckets, kept.folder)
            if restored:
                log.info("put back %d stored files kept by the last run", restored)
        if with_worker:
            self.start_worker()
        return self.settings

    def start_worker(self, own_process: bool = False) -> None:
        """The validator, its sweeper and the webhook deliverer: in threads of this
        process, or (`own_process`) in a child process of their own."""
        assert self.settings is not None
        if own_process:
            self._worker_process = WorkerProcess(self.settings, self.host, self.push_port)
            self._worker_process.start()
            return
        assert self.clients is not None
        self._judging = Judging(compose(self.settings, self.clients), self.host,
                                self.push_port)
        self._judging.start()

    def _records_folder(self) -> Path:
        if self.keep_in is not None:
            self.keep_in.mkdir(parents=True, exist_ok=True)
            return self.keep_in
        self._records_dir = tempfile.mkdtemp(prefix="broker-records-")
        return Path(self._records_dir)

    def stop(self) -> None:
        if self._worker_process is not None:
            self._worker_process.stop()
        if self._judging is not None:
            self._judging.stop()
        if self._server is not None:
            self._server.stop()
        if self._records_dir is not None:
            shutil.rmtree(self._records_dir, ignore_errors=True)


def _buckets(settings: Settings) -> tuple[str, ...]:
    """The buckets whose objects `broker run` keeps between runs."""
    return settings.incoming_bucket, settings.public_bucket, settings.private_bucket
