"""Commands that serve in production: the broker under gunicorn, the validator worker."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from broker.cli.operations import migrate_records
from broker.cli.process import stop_on_signals
from broker.settings import load_settings


def cmd_serve(args: argparse.Namespace) -> int:
    """The broker alone under gunicorn, for production on your own servers."""
    from broker.runtimes.serving import serve, share_metrics_between_processes

    share_metrics_between_processes()
    from broker.web import create_app

    # A bad setting stops here with its name, before any worker starts.
    settings = load_settings()
    migrate_records(settings)
    if args.workers > 1 and settings.rate_limit_storage.startswith("memory"):
        logging.getLogger("broker.serve").warning(
            "rate limits are counted in each of the %d worker processes on its own: share "
            "them with BROKER_RATE_LIMIT_STORAGE=redis://host:6379", args.workers)
    serve(create_app, host=args.host, port=args.port, workers=args.workers,
          threads=args.threads, timeout=args.timeout, graceful_timeout=args.graceful_timeout,
          log_format=settings.log_format, log_level=settings.log_level)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """The long-running validator: poll BROKER_QUEUE_URL, or (BROKER_EVENTS=http) receive
    pushed notifications under gunicorn, until stopped."""
    settings = load_settings()
    if settings.events == "http":
        return _serve_push(settings, args)

    import threading

    from broker.compose import compose
    from broker.runtimes.sqs_worker import run_worker

    if settings.queue_url is None:
        raise ValueError("BROKER_QUEUE_URL is not set: run `broker provision` first")
    migrate_records(settings)
    parts = compose(settings)
    stop = threading.Event()
    stop_on_signals()
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.host)
    parts.start_deliverer(stop)
    parts.start_rejudger(stop)
    try:
        run_worker(parts.validator, parts.clients.sqs, settings.queue_url, stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def _serve_push(settings: Any, args: argparse.Namespace) -> int:
    """The push receiver under gunicorn: each worker process judges on its threads and
    runs a sweeper (sweeps are conditional writes, so several are harmless)."""
    from broker.runtimes.serving import serve, share_metrics_between_processes

    if settings.event_token is None:
        raise ValueError("BROKER_EVENT_TOKEN is not set: the receiver needs the token the "
                         "store's push endpoint URL carries")
    share_metrics_between_processes()
    migrate_records(settings)

    def receiver() -> Any:
        import threading

        from broker.compose import compose
        from broker.runtimes.push_receiver import PushReceiver
        from broker.validator.sweep import run_sweeper

        parts = compose(settings)
        threading.Thread(target=run_sweeper, name="sweeper", daemon=True,
                         args=(parts.validator, threading.Event())).start()
        parts.start_deliverer(threading.Event())
        parts.start_rejudger(threading.Event())
        return PushReceiver(parts.validator, settings.event_token.get_secret_value())

    serve(receiver, host=args.host, port=args.port, workers=args.workers,
          threads=settings.worker_concurrency, timeout=max(60, int(settings.clamd_timeout) * 2),
          graceful_timeout=30, log_format=settings.log_format, log_level=settings.log_level,
          name="upload-validator")
    return 0
