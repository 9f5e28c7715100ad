"""Commands that operate a deployment: provision, migrate, sweep, redrive, webhooks,
erase, rejudge, quarantine, audit."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from broker.settings import load_settings

if TYPE_CHECKING:
    from broker.domain.records import UploadRecord


def migrate_records(settings: Any) -> None:
    """Bring a PostgreSQL records schema up to this release's, saying what changed."""
    if settings.records_store != "postgresql":
        return
    from broker.domain.records.migrations import migrate

    for migration in migrate(settings.database_url.get_secret_value()):
        print(f"records: applied migration {migration.version:04d} {migration.name}",
              flush=True)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply the PostgreSQL records' migrations that the database lacks."""
    from broker.domain.records.migrations import latest_version

    settings = load_settings()
    if settings.records_store != "postgresql":
        raise ValueError(f"the records are in {settings.records_store}, which needs no "
                         "migrations (BROKER_DATABASE_URL names no PostgreSQL database)")
    migrate_records(settings)
    print(f"records: the schema is at version {latest_version()}, this release's")
    return 0


def cmd_provision(args: argparse.Namespace) -> int:
    """Create the buckets, the event route and the table where the settings point."""
    from broker.compose import compose
    from broker.provision import ensure_table, provision_push, provision_queue, provision_storage

    settings = load_settings()
    clients = compose(settings).clients
    provision_storage(clients, settings, args.origin,
                      serve_public_bucket=args.public_read)
    if settings.records_store == "dynamodb":
        ensure_table(clients, settings.table)
    migrate_records(settings)
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
        state = "dead" if args.dead else "pending"
        deliveries = records.webhooks(state, args.limit)
        for d in deliveries:
            print(f"{d.id}  {d.type:<15} {d.upload_id}  attempts {d.attempts:>2}  "
                  f"due {d.due_at}  {d.url}  {d.last_error or ''}")
        if not deliveries:
            print(f"no {state} webhook deliveries")
        return 0
    deliverer = parts.deliverer
    if deliverer is None:
        raise ValueError("BROKER_WEBHOOK_URL is not set: there is nothing to send")
    ids = [d.id for d in records.webhooks("dead", 1000)] if args.all_dead else args.ids
    sent = deliverer.replay_now(ids)
    print(f"sent {sent.delivered} of {len(ids)} again; {sent.failed} failed (see "
          "`broker webhooks list`)")
    return 0 if sent.failed == 0 else 1


def cmd_erase(args: argparse.Namespace) -> int:
    """Erase one person: every file of every upload, in every bucket; tombstones kept."""
    import json

    from broker.compose import compose
    from broker.domain.erasure import erase_owner

    parts = compose(load_settings())
    if not args.yes:
        page, more = parts.records.list_by_owner(args.owner, limit=100)
        for record in page:
            print(f"{record.id}  {record.status:<10} {record.profile:<10} {record.filename}")
        if not page:
            print(f"{args.owner!r} has no uploads to erase")
            return 0
        print(f"{len(page)}{'+' if more else ''} uploads of {args.owner!r} would be erased, "
              "with every stored copy; run again with --yes to erase them")
        return 1
    report = erase_owner(parts.uploads, args.owner)
    parts.send_outbox()  # the app and the CDN hear of it now, not at the next run
    print(json.dumps(report.as_dict()))
    return 0


def cmd_rejudge(args: argparse.Namespace) -> int:
    """Judge published uploads again with today's rules and scanner; withdraw the bad."""
    import json

    from broker.compose import compose
    from broker.validator.rejudge import Selection, rejudge_all

    parts = compose(load_settings())
    records = _published(parts.records, args.upload, args.owner)
    chosen = Selection(args.profile, args.judged_before, args.stale).chosen(records,
                                                                            parts.validator)
    outcomes = rejudge_all(parts.validator, chosen, args.rate)
    parts.send_outbox()  # the app and the CDN hear of it now, not at the next run
    print(json.dumps(outcomes))
    return 0


def cmd_renditions(args: argparse.Namespace) -> int:
    """Backfill renditions at a bounded rate, saying how far it got as it goes."""
    import json

    from broker.compose import compose
    from broker.validator.renditions import backfill_all

    parts = compose(load_settings())
    if args.profile and parts.profiles.find(args.profile) is None:
        raise ValueError(f"there is no profile {args.profile!r}")
    records = (r for r in _published(parts.records, args.upload)
               if not args.profile or r.profile == args.profile)

    def progress(done: int, counts: dict[str, int]) -> None:
        if done % 100 == 0:
            print(f"{done} uploads: {json.dumps(counts)}", file=sys.stderr, flush=True)

    print(json.dumps(backfill_all(parts.validator, records, args.rate, progress)))
    return 0


def _published(records: Any, upload_id: str | None, owner: str | None = None
               ) -> Iterable[UploadRecord]:
    """One upload, by id; every upload of an owner; else every published one."""
    if upload_id:
        record = records.get(upload_id)
        if record is None:
            raise ValueError(f"there is no upload {upload_id!r}")
        return [record]
    if owner:
        return _all_of(records, owner)
    published: Iterable[UploadRecord] = records.each_in_status("ready")
    return published


def _all_of(records: Any, owner: str) -> Iterator[Any]:
    cursor = None
    while True:
        page, cursor = records.list_by_owner(owner, limit=100, cursor=cursor)
        yield from page
        if cursor is None:
            return


def cmd_quarantine(args: argparse.Namespace) -> int:
    """Review what was refused or withdrawn: list, download link, release, purge."""
    import json

    from broker.compose import compose
    from broker.validator.quarantine import Quarantine

    quarantine = Quarantine(compose(load_settings()).validator)
    if args.action == "list":
        shown = 0
        for record in quarantine.items():
            print(f"{record.id}  {record.status:<9} {record.owner:<16} {record.profile:<10} "
                  f"{record.reason_code or '':<18} {record.filename}  "
                  f"{record.reason_detail or ''}")
            shown += 1
        if not shown:
            print("the quarantine is empty")
        return 0
    if args.action == "link":
        print(quarantine.file_link(args.upload_id))
        return 0
    operator = args.operator or f"cli:{os.environ.get('USER', 'operator')}"
    if args.action == "release":
        record = quarantine.release(args.upload_id, operator, args.reason)
    else:
        record = quarantine.purge(args.upload_id, operator)
    print(json.dumps({"id": record.id, "status": record.status,
                      "reviewed_by": record.reviewed_by, "review_note": record.review_note}))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """The audit log as JSON lines: every verdict and every operator action."""
    import json

    from broker.compose import compose
    from broker.domain.records.outbox import AUDIT

    for entry in compose(load_settings()).records.webhooks(AUDIT, args.limit):
        record = entry.record()
        print(json.dumps({
            "at": entry.created_at, "event": entry.type, "upload_id": entry.upload_id,
            "owner": entry.owner, "status": record.status, "profile": record.profile,
            "reason": record.reason_code, "detail": record.reason_detail,
            "judged_by": record.judged_by, "actor": record.reviewed_by or "broker",
            "note": record.review_note}))
    return 0
