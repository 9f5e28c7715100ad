"""The `broker` command: run the local stack, print tokens."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from broker.common.errors import StorageError
from broker.domain.auth import issue_token
from broker.settings import SettingsError, load_settings


def cmd_token(args: argparse.Namespace) -> int:
    # Without BROKER_ENV, sign for the local stack's generated secret.
    overrides = {} if "BROKER_ENV" in os.environ else {"env": "local"}
    settings = load_settings(**overrides)
    ttl = settings.token_ttl if args.ttl is None else args.ttl
    if ttl <= 0:
        raise ValueError(f"--ttl must be at least 1 second, not {ttl}")
    print(issue_token(settings.signing_secret(), args.user, ttl))  # ValueError: exit 2
    return 0


RUN_THREADS = 48  # broker run: requests at once, long polls included


def _share_metrics() -> str | None:
    """One folder for the broker's and the validator's counters, so /metrics shows both
    (set before any metric exists)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    folder = tempfile.mkdtemp(prefix="broker-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    return folder


def cmd_run(args: argparse.Namespace) -> int:
    metrics_folder = _share_metrics()
    from waitress.server import create_server

    from broker.devstack.stack import DevStack, ensure_local_secret
    from broker.web import create_app

    for port, flag in ((args.port, "--port"), (args.emulator_port, "--emulator-port")):
        if not _port_free(args.host, port):
            raise ValueError(f"{args.host}:{port} is already in use; choose another with {flag}")
    _stop_on_signals()
    origin = f"http://{args.host}:{args.port}"
    secret_file = load_settings(env="local").secret_file
    ensure_local_secret(secret_file)
    overrides = _local_scanner()
    stack = DevStack(host=args.host, emulator_port=args.emulator_port, broker_origin=origin,
                     push_port=args.push_port, overrides=overrides, records=args.records)
    settings = stack.start(with_worker=False)
    try:
        _migrate_records(settings)
        stack.start_worker(own_process=True)
        app = create_app(settings.model_dump(), clients=stack.clients)
        # Kept-alive connections and a fixed pool of threads (a long poll holds one).
        server = create_server(app, host=args.host, port=args.port, threads=RUN_THREADS,
                               ident="broker", channel_timeout=60)
        events = ("SQS queue (emulator)" if settings.events == "sqs"
                  else f"HTTP push to http://{args.host}:{args.push_port}/events/<token>")
        print(
            f"\n  Broker and upload page: {origin}/\n"
            f"  Storage:                {settings.endpoint_for('s3')}\n"
            f"  Records:                {_records_banner(settings)}\n"
            f"  Queue:                  {settings.endpoint_url} (emulator)\n"
            f"  Events:                 {events}\n"
            f"  Public files:           {settings.public_url_for('<key>')}\n"
            f"  Malware scan:           {_scan_banner(settings)}\n"
            f"  A token for user alice: .venv/bin/broker token alice\n"
            f"  Stop with Ctrl-C.\n",
            flush=True,
        )
        server.run()  # returns on Ctrl-C or SIGTERM
    except KeyboardInterrupt:
        pass  # interrupted while starting
    finally:
        print("\nstopping the broker, the validator worker and the emulator…", flush=True)
        stack.stop()
        if metrics_folder:
            shutil.rmtree(metrics_folder, ignore_errors=True)
    return 0


def _migrate_records(settings: Any) -> None:
    """Bring a PostgreSQL records schema up to this release's, saying what changed."""
    if settings.records_store != "postgresql":
        return
    from broker.domain.records.migrations import migrate

    for migration in migrate(settings.database_url.get_secret_value()):
        print(f"records: applied migration {migration.version:04d} {migration.name}",
              flush=True)


def _records_banner(settings: Any) -> str:
    if settings.records_store == "dynamodb":
        return f"{settings.endpoint_url} (emulator, in memory: lost when this stops)"
    if settings.records_store == "sqlite":
        return (f"SQLite {settings.sqlite_path} (removed when this stops; other broker "
                f"commands reach it with BROKER_DATABASE_URL=sqlite://{settings.sqlite_path})")
    from psycopg.conninfo import conninfo_to_dict

    where = conninfo_to_dict(settings.database_url.get_secret_value())
    return f"PostgreSQL {where.get('host', 'localhost')}:{where.get('port', 5432)}" \
        f"/{where.get('dbname', '')}"


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply the PostgreSQL records' migrations that the database lacks."""
    from broker.domain.records.migrations import latest_version

    settings = load_settings()
    if settings.records_store != "postgresql":
        raise ValueError(f"the records are in {settings.records_store}, which needs no "
                         "migrations (BROKER_DATABASE_URL names no PostgreSQL database)")
    _migrate_records(settings)
    print(f"records: the schema is at version {latest_version()}, this release's")
    return 0


def _local_scanner() -> dict[str, Any]:
    """Scan with the machine's clamd when one answers and BROKER_SCANNER says nothing."""
    from broker.domain.inspection.scanner import find_local_clamd

    if "BROKER_SCANNER" in os.environ:
        return {}
    address = find_local_clamd()
    return {"scanner": "clamd", "clamd_address": address} if address else {}


def _scan_banner(settings: Any) -> str:
    if settings.scanner == "clamd":
        return f"on, clamd at {settings.clamd_address}"
    return ("OFF: uploads are not scanned for malware (no clamd answered at "
            "/run/clamav/clamd.ctl: start clamav-daemon, or set BROKER_SCANNER=clamd and "
            "BROKER_CLAMD_ADDRESS)")


def cmd_provision(args: argparse.Namespace) -> int:
    """Create the buckets, the event route and the table where the settings point."""
    from broker.aws.clients import make_clients
    from broker.provision import ensure_table, provision_push, provision_queue, provision_storage

    settings = load_settings()
    clients = make_clients(settings)
    provision_storage(clients, settings, args.origin,
                      serve_public_bucket=args.public_read)
    if settings.records_store == "dynamodb":
        ensure_table(clients, settings.table)
    _migrate_records(settings)
    if settings.events == "http":
        if not args.push_url:
            raise ValueError("BROKER_EVENTS=http: give --push-url, the address the store "
                             "POSTs notifications to (http://validator:9101/events/<token>)")
        topic = provision_push(clients, settings, args.queue, args.push_url)
        print(f"# the store pushes ObjectCreated events through {topic}")
        return 0
    queue_url = provision_queue(clients, settings, args.queue)
    print(f"export BROKER_QUEUE_URL={queue_url}")  # for: eval "$(broker provision)"
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
    _migrate_records(settings)
    parts = compose(settings)
    stop = threading.Event()
    _stop_on_signals()
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.host)
    parts.start_deliverer(stop)
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
    _migrate_records(settings)

    def receiver() -> Any:
        import threading

        from broker.compose import compose
        from broker.runtimes.push_receiver import PushReceiver
        from broker.validator.sweep import run_sweeper

        parts = compose(settings)
        threading.Thread(target=run_sweeper, name="sweeper", daemon=True,
                         args=(parts.validator, threading.Event())).start()
        parts.start_deliverer(threading.Event())
        return PushReceiver(parts.validator, settings.event_token.get_secret_value())

    serve(receiver, host=args.host, port=args.port, workers=args.workers,
          threads=settings.worker_concurrency, timeout=max(60, int(settings.clamd_timeout) * 2),
          graceful_timeout=30, log_format=settings.log_format, log_level=settings.log_level,
          name="upload-validator")
    return 0


def _parts_and_dead_letters() -> tuple[Any, str | None]:
    from broker.aws.queue import dead_letter_url_of
    from broker.compose import compose

    parts = compose(load_settings())
    settings = parts.settings
    dead_letters = settings.dead_letter_queue_url
    if dead_letters is None and settings.queue_url is not None:
        dead_letters = dead_letter_url_of(parts.clients.sqs, settings.queue_url)
    return parts, dead_letters


def cmd_sweep(args: argparse.Namespace) -> int:
    """Expire lapsed uploads, re-drive stuck ones, report the dead-letter queue; once."""
    import json

    from broker.validator.sweep import sweep

    parts, dead_letters = _parts_and_dead_letters()
    report = sweep(parts.validator, parts.clients.sqs, dead_letters)
    print(json.dumps(report.as_dict()))
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    """Send the events waiting in the dead-letter queue back to the queue."""
    from broker.aws.queue import redrive

    parts, dead_letters = _parts_and_dead_letters()
    queue_url = parts.settings.queue_url
    if queue_url is None or dead_letters is None:
        raise ValueError("BROKER_QUEUE_URL (with a dead-letter queue) is not set: "
                         "run `broker provision` first")
    moved = redrive(parts.clients.sqs, dead_letters, queue_url)
    print(f"sent {moved} dead-lettered events back to the queue")
    return 0


def cmd_webhooks(args: argparse.Namespace) -> int:
    """List the webhook deliveries still pending or given up, or send some again."""
    from broker.compose import compose

    parts = compose(load_settings())
    records = parts.records
    if args.action == "list":
        for d in records.webhooks("dead" if args.dead else "pending", args.limit):
            print(f"{d.id}  {d.type:<15} {d.upload_id}  attempts {d.attempts:>2}  "
                  f"due {d.due_at}  {d.url}  {d.last_error or ''}")
        return 0
    deliverer = parts.deliverer
    if deliverer is None:
        raise ValueError("BROKER_WEBHOOK_URL is not set: there is nothing to send")
    ids = [d.id for d in records.webhooks("dead", 1000)] if args.all_dead else args.ids
    sent = deliverer.replay_now(ids)
    print(f"sent {sent.delivered} of {len(ids)} again; {sent.failed} failed (see "
          "`broker webhooks list`)")
    return 0 if sent.failed == 0 else 1


def cmd_serve(args: argparse.Namespace) -> int:
    """The broker alone under gunicorn, for production on your own servers."""
    from broker.runtimes.serving import serve, share_metrics_between_processes

    share_metrics_between_processes()
    from broker.web import create_app

    # A bad setting stops here with its name, before any worker starts.
    settings = load_settings()
    _migrate_records(settings)
    if args.workers > 1 and settings.rate_limit_storage.startswith("memory"):
        logging.getLogger("broker.serve").warning(
            "rate limits are counted in each of the %d worker processes on its own: share "
            "them with BROKER_RATE_LIMIT_STORAGE=redis://host:6379", args.workers)
    serve(create_app, host=args.host, port=args.port, workers=args.workers,
          threads=args.threads, timeout=args.timeout, graceful_timeout=args.graceful_timeout,
          log_format=settings.log_format, log_level=settings.log_level)
    return 0


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) != 0


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both stop the stack cleanly, even when started in the background."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broker", description="Direct-upload broker.")
    commands = parser.add_subparsers(dest="command", required=True)

    token = commands.add_parser("token", help="print a bearer token for a user")
    token.add_argument("user", help="the user id (the token's sub)")
    token.add_argument("--ttl", type=int, default=None, metavar="SECONDS",
                       help="lifetime in seconds, 1 to 2592000 (30 days); "
                       "default BROKER_TOKEN_TTL, 3600")
    token.set_defaults(func=cmd_token)

    run = commands.add_parser("run", help="run broker, validator and emulator on loopback")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--emulator-port", type=int, default=9100)
    run.add_argument("--push-port", type=int, default=9101,
                     help="where the validator receives pushed events (BROKER_EVENTS=http)")
    run.add_argument("--records", choices=("sqlite", "dynamodb"), default="sqlite",
                     help="keep the records in SQLite (default: its indexes keep every "
                     "call's cost flat) or in the emulator's DynamoDB (as on AWS; it scans "
                     "its whole table for index queries); BROKER_DATABASE_URL overrides both")
    run.set_defaults(func=cmd_run)

    provision = commands.add_parser(
        "provision", help="create buckets, queue and table where BROKER_* settings point")
    provision.add_argument("--origin", action="append", default=[],
                           help="an origin allowed to upload (repeatable)")
    provision.add_argument("--queue", default="uploads-events",
                           help="the event queue's (or push topic's) name")
    provision.add_argument("--public-read", action="store_true",
                           help="let anyone read the public bucket directly (no CDN in "
                           "front of it)")
    provision.add_argument("--push-url", default=None,
                           help="BROKER_EVENTS=http: where the store POSTs notifications")
    provision.set_defaults(func=cmd_provision)

    worker = commands.add_parser(
        "worker", help="run the validator: poll BROKER_QUEUE_URL, or receive pushed events")
    worker.add_argument("--host", default="127.0.0.1",
                        help="where the push receiver and the metrics listen")
    worker.add_argument("--port", type=int, default=9101,
                        help="the push receiver's port (BROKER_EVENTS=http; also serves "
                        "/metrics)")
    worker.add_argument("--workers", type=_positive, default=2,
                        help="push receiver processes (each judges BROKER_WORKER_CONCURRENCY "
                        "objects at once)")
    worker.add_argument("--metrics-port", type=int, default=None,
                        help="polling an SQS queue: serve Prometheus metrics at "
                        "http://HOST:PORT/metrics")
    worker.set_defaults(func=cmd_worker)

    sweep = commands.add_parser(
        "sweep", help="expire lapsed uploads, re-drive stuck ones, report dead letters")
    sweep.set_defaults(func=cmd_sweep)

    redrive = commands.add_parser("redrive",
                                  help="send dead-lettered events back to the queue")
    redrive.set_defaults(func=cmd_redrive)

    migrate = commands.add_parser(
        "migrate", help="bring the PostgreSQL records schema up to this release's")
    migrate.set_defaults(func=cmd_migrate)

    webhooks = commands.add_parser("webhooks", help="list or re-send webhook deliveries")
    actions = webhooks.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="deliveries still pending (or --dead)")
    listing.add_argument("--dead", action="store_true", help="those given up instead")
    listing.add_argument("--limit", type=_positive, default=100)
    replay = actions.add_parser("replay", help="send deliveries again now, from the start")
    replay.add_argument("ids", nargs="*", help="delivery ids, as `list` shows them")
    replay.add_argument("--all-dead", action="store_true", help="every dead delivery")
    webhooks.set_defaults(func=cmd_webhooks)

    serve = commands.add_parser("serve", help="run the broker alone under gunicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=_positive, default=2,
                       help="worker processes (default 2; about one per core)")
    serve.add_argument("--threads", type=_positive, default=32,
                       help="threads per worker (default 32: a long poll holds one while "
                       "it waits)")
    serve.add_argument("--timeout", type=_positive, default=30,
                       help="seconds a request may take before its worker is restarted")
    serve.add_argument("--graceful-timeout", type=_positive, default=20,
                       help="seconds requests in flight get to finish on SIGTERM")
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from broker.common.logs import configure

    # Read before the settings, which log as they load; a bad value is refused by
    # name with the other settings.
    log_format = os.environ.get("BROKER_LOG_FORMAT", "text")
    configure("json" if log_format == "json" else "text",
              os.environ.get("BROKER_LOG_LEVEL", "INFO").upper())
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (SettingsError, ValueError) as exc:
        print(f"broker: {exc}", file=sys.stderr)
        return 2
    except StorageError as exc:  # a store that does not answer, or a schema behind
        print(f"broker: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
