"""The `broker` command: run the local stack, print tokens, serve, operate."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from broker.cli.local import cmd_run, cmd_token
from broker.cli.operations import (
    cmd_audit,
    cmd_erase,
    cmd_migrate,
    cmd_provision,
    cmd_quarantine,
    cmd_redrive,
    cmd_rejudge,
    cmd_renditions,
    cmd_sweep,
    cmd_webhooks,
)
from broker.cli.servers import cmd_serve, cmd_worker
from broker.common.errors import BrokerError, StorageError
from broker.settings import SettingsError


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
    run.add_argument("--fresh", action="store_true",
                     help="forget the records and files kept by earlier runs "
                     "(.broker/data) and start with none")
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

    again = commands.add_parser(
        "rejudge", help="judge published uploads again; withdraw those now found bad")
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("--upload", help="one upload, by id")
    which.add_argument("--owner", help="every upload of one owner")
    which.add_argument("--all", action="store_true", help="every published upload")
    again.add_argument("--profile", help="only uploads of this profile")
    again.add_argument("--judged-before", metavar="TIME",
                       help="only uploads judged before this ISO time (2026-12-01T00:00:00Z)")
    again.add_argument("--stale", action="store_true",
                       help="only uploads judged by other rules or signatures than now")
    again.add_argument("--rate", type=float, default=10.0,
                       help="uploads judged a second, at most (default 10)")
    again.set_defaults(func=cmd_rejudge)

    sizes = commands.add_parser(
        "renditions", help="give published pictures the renditions their profile declares "
                           "now (after a profile's renditions change)")
    which = sizes.add_mutually_exclusive_group(required=True)
    which.add_argument("--upload", help="one upload, by id")
    which.add_argument("--profile", help="every published upload of this profile")
    which.add_argument("--all", action="store_true", help="every published upload")
    sizes.add_argument("--rate", type=float, default=5.0,
                       help="uploads given new renditions a second, at most (default 5)")
    sizes.set_defaults(func=cmd_renditions)

    quarantine = commands.add_parser(
        "quarantine", help="review refused and withdrawn uploads: list, link, release, purge")
    steps = quarantine.add_subparsers(dest="action", required=True)
    steps.add_parser("list", help="every refused or withdrawn upload, with its reason")
    link = steps.add_parser("link", help="a 60-second link that downloads the file")
    link.add_argument("upload_id")
    release = steps.add_parser("release", help="serve it as an accepted file would be")
    release.add_argument("upload_id")
    release.add_argument("--reason", required=True, help="why (kept in the audit log)")
    purge = steps.add_parser("purge", help="remove its quarantined file for good")
    purge.add_argument("upload_id")
    for step in (release, purge):
        step.add_argument("--operator", help="who does it (default: cli:$USER)")
    quarantine.set_defaults(func=cmd_quarantine)

    audit = commands.add_parser("audit", help="the audit log: verdicts, operator actions")
    audit_steps = audit.add_subparsers(dest="action", required=True)
    export = audit_steps.add_parser("export", help="print it as JSON lines, oldest first")
    export.add_argument("--limit", type=_positive, default=100_000)
    audit.set_defaults(func=cmd_audit)

    erase = commands.add_parser(
        "erase", help="erase one person's uploads: every stored copy, records as tombstones")
    erase.add_argument("owner", help="the owner, as tokens name them (the `sub`)")
    erase.add_argument("--yes", action="store_true",
                       help="erase; without it, list what would be erased")
    erase.set_defaults(func=cmd_erase)

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
        why = f": {exc.__cause__}" if exc.__cause__ else ""
        print(f"broker: {exc}{why}", file=sys.stderr)
        return 1
    except BrokerError as exc:  # an operation refused (no such upload, a conflict)
        print(f"broker: {exc.detail}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
