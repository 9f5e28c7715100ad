"""Commands for one machine: `broker run` (the whole stack on loopback) and `broker token`."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from broker.cli.operations import migrate_records
from broker.cli.process import finish_stopping, port_free, stop_on_signals
from broker.common.long_lived import freeze_survivors
from broker.domain.auth import issue_token
from broker.settings import load_settings


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

    from broker.devstack.stack import DevStack, ensure_local_secret, write_stack_env
    from broker.web import create_app

    for port, flag in ((args.port, "--port"), (args.emulator_port, "--emulator-port")):
        if not port_free(args.host, port):
            raise ValueError(f"{args.host}:{port} is already in use; choose another with {flag}")
    stop_on_signals()
    origin = f"http://{args.host}:{args.port}"
    secret_file = load_settings(env="local").secret_file
    ensure_local_secret(secret_file)
    kept = secret_file.parent.resolve() / "data"
    if args.fresh and kept.exists():
        shutil.rmtree(kept)
        print(f"started afresh: removed the records and files kept in {kept}", flush=True)
    overrides = _local_scanner()
    stack = DevStack(host=args.host, emulator_port=args.emulator_port, broker_origin=origin,
                     push_port=args.push_port, overrides=overrides, records=args.records,
                     keep_in=kept)
    settings = stack.start(with_worker=False)
    try:
        migrate_records(settings)
        write_stack_env(settings, secret_file.parent / "stack.env")
        stack.start_worker(own_process=True)
        app = create_app(settings.model_dump(), clients=stack.clients)
        freeze_survivors()  # what it loaded lives as long as it does
        # Kept-alive connections and a fixed pool of threads (a long poll holds one).
        server = create_server(app, host=args.host, port=args.port, threads=RUN_THREADS,
                               ident="broker", channel_timeout=60)
        events = ("SQS queue (emulator)" if settings.events == "sqs"
                  else f"HTTP push to http://{args.host}:{args.push_port}/events/<token>")
        print(
            f"\n  Broker and upload page: {origin}/\n"
            f"  Storage:                {_storage_banner(settings, kept)}\n"
            f"  Records:                {_records_banner(settings)}\n"
            f"  Queue:                  {settings.endpoint_url} (emulator)\n"
            f"  Events:                 {events}\n"
            f"  Public files:           {settings.public_url_for('<key>')}\n"
            f"  Allowed origins:        {', '.join(settings.allowed_origins)} "
            "(add yours with BROKER_ALLOWED_ORIGINS)\n"
            f"  Webhooks:               {_webhooks_banner(settings)}\n"
            f"  Malware scan:           {_scan_banner(settings)}\n"
            f"  Tokens are signed with: {_secret_banner(settings)}\n"
            f"  A token for user alice: {_token_command(settings)}\n"
            f"  Kept between runs in {kept} (start afresh: make run RUN_ARGS=--fresh)\n"
            f"  Apps of your own:       {kept.parent / 'stack.env'} holds the "
            "settings to share this stack (make example)\n"
            f"  Stop with Ctrl-C.\n",
            flush=True,
        )
        server.run()  # returns on Ctrl-C or SIGTERM
    except KeyboardInterrupt:
        pass  # interrupted while starting
    finally:
        print("\nstopping the broker, the validator worker and the emulator…", flush=True)
        finish_stopping()
        stack.stop()
        if metrics_folder:
            shutil.rmtree(metrics_folder, ignore_errors=True)
    return 0


def _storage_banner(settings: Any, kept: Path) -> str:
    if settings.s3_endpoint_url:
        return f"{settings.s3_endpoint_url} (yours)"
    return f"{settings.endpoint_for('s3')} (emulator; its files kept in {kept / 'storage'})"


def _records_banner(settings: Any) -> str:
    if settings.records_store == "dynamodb":
        return f"{settings.endpoint_url} (emulator, in memory: lost when this stops)"
    if settings.records_store == "sqlite":
        return (f"SQLite {settings.sqlite_path} (other broker commands reach it with "
                f"BROKER_DATABASE_URL=sqlite://{settings.sqlite_path})")
    from psycopg.conninfo import conninfo_to_dict

    where = conninfo_to_dict(settings.database_url.get_secret_value())
    return f"PostgreSQL {where.get('host', 'localhost')}:{where.get('port', 5432)}" \
        f"/{where.get('dbname', '')}"


def _webhooks_banner(settings: Any) -> str:
    return ", ".join(settings.webhook_urls) or "none (set BROKER_WEBHOOK_URL to hear verdicts)"


def _secret_banner(settings: Any) -> str:
    if settings.jwt_secret is not None:
        return "BROKER_JWT_SECRET, from this shell's environment"
    return f"the generated secret in {settings.secret_file.resolve()}"


def _token_command(settings: Any) -> str:
    """A command that prints a token this broker accepts, from any folder."""
    command = f"{Path(sys.executable).parent / 'broker'} token alice"
    if settings.jwt_secret is not None:
        return f"BROKER_JWT_SECRET=<the same secret> {command}"
    return f"BROKER_SECRET_FILE={settings.secret_file.resolve()} {command}"


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
