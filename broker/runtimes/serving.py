"""gunicorn for the production processes of self-hosting: the broker (`broker serve`)
and the validator's push receiver (`broker worker` with BROKER_EVENTS=http).

Each worker process builds the app once (clients, profiles, secret) and serves it on
threads; SIGTERM lets requests in flight finish within the graceful timeout.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from broker.common.logs import logging_config

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """gunicorn, configured from arguments rather than a config file or its argv."""

    def __init__(self, factory: Callable[[], Any], options: dict[str, Any]) -> None:
        self._factory = factory
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        return ready_to_serve(self._factory())


def ready_to_serve(app: Any) -> Any:
    """The built app, its long-lived objects (clients, service models, profiles) set
    aside from the garbage collector: otherwise every full collection walks them all,
    a tenth of a second that requests wait for."""
    gc.collect()
    gc.freeze()
    return app


def share_metrics_between_processes() -> None:
    """Worker processes write their metrics to one folder that a scrape sums; must run
    before prometheus-client is first imported. A folder made here is removed when
    this process exits (its counts belong to this run only)."""
    if METRICS_DIR not in os.environ:
        folder = tempfile.mkdtemp(prefix="broker-metrics-")
        os.environ[METRICS_DIR] = folder
        owner = os.getpid()

        def remove() -> None:
            if os.getpid() == owner:  # not in a worker exiting: the master's to remove
                shutil.rmtree(folder, ignore_errors=True)
        atexit.register(remove)


def _forget_dead_worker(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def serve(factory: Callable[[], Any], *, host: str, port: int, workers: int, threads: int,
          timeout: int, graceful_timeout: int, log_format: str = "text",
          log_level: str = "INFO", name: str = "upload-broker") -> None:
    """Run `factory()`'s WSGI app under gunicorn until SIGTERM or SIGINT."""
    _Gunicorn(factory, {
        "bind": f"{host}:{port}", "workers": workers, "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync", "timeout": timeout,
        "graceful_timeout": graceful_timeout, "accesslog": "-", "errorlog": "-",
        "proc_name": name, "child_exit": _forget_dead_worker,
        "logconfig_dict": logging_config(log_format, log_level),
    }).run()
