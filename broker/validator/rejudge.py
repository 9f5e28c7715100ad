"""Judging a published upload again, as the rules or the scanner's signatures change.

The served file is read from where it is served and judged by today's checks and
scanner. `broker rejudge` chooses the uploads (one, an owner's, or every published
one, by profile, by age, or those judged by other rules or signatures); the worker
does it by itself, at a bounded rate, whenever the rules or the scanner's signatures
change. Still fine: left exactly where it is, its record noting what judged it
now (no copy, no event). Found bad: withdrawn. Its file is kept in quarantine and
removed from where it was served; the record says why, when and by what; the
owner's usage is released; the app hears `upload.withdrawn` and the CDN is told
(both from the outbox, written with the change).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from broker.domain.inspection import Declared, inspect, stale
from broker.domain.keys import quarantine_key, with_extension
from broker.domain.presign import UPLOAD_ID_METADATA
from broker.domain.profiles import Profile
from broker.domain.records import UploadRecord, served_keys
from broker.validator.judge import Validator

log = logging.getLogger(__name__)

Rejudged = Literal["unchanged", "withdrawn", "not ready", "missing"]


def rejudge(validator: Validator, record: UploadRecord) -> Rejudged:
    """Judge a ready upload again; withdraw it when it no longer passes."""
    s = validator.settings
    bucket = s.public_bucket if record.visibility == "public" else s.private_bucket
    if record.status == "withdrawn" and record.stored_key:
        _remove_served(validator, bucket, record)  # finish a withdrawal cut short
        return "withdrawn"
    if record.status != "ready" or not record.stored_key:
        return "not ready"
    stored = validator.storage.fetch(bucket, record.stored_key)
    profile = validator.profiles.find(record.profile)
    if stored is None or profile is None or record.content_type is None:
        log.warning("%s cannot be judged again: its served file or profile is gone",
                    record.id)
        return "missing"
    declared, profile = _as_served(record, record.content_type, profile, stored.info.size)
    verdict = inspect(stored, profile, declared, validator.scanner,
                      pictures=validator.picture_limits).verdict
    if verdict.accepted:
        validator.records.transition(record, "ready", allowed_from=("ready",),
                                     judged_by=verdict.judged_by)  # no event: not a change
        return "unchanged"
    assert verdict.reason is not None
    keep = quarantine_key(s.quarantine_prefix, record.id, stored.info.etag)
    validator.storage.copy(stored.info, s.incoming_bucket, keep, None,
                           {UPLOAD_ID_METADATA: record.id, "reason": verdict.reason.code})
    withdrawn = validator.records.transition(
        record, "withdrawn", allowed_from=("ready",), reason_code=verdict.reason.code,
        reason_message=verdict.reason.message, reason_detail=verdict.detail or None,
        judged_by=verdict.judged_by)
    if withdrawn is None:
        return "not ready"  # deleted or changed meanwhile
    _remove_served(validator, bucket, record)
    log.warning("withdrew %s: %s %s", record.id, verdict.reason.code, verdict.detail)
    return "withdrawn"


def _as_served(record: UploadRecord, content_type: str, profile: Profile, size: int
               ) -> tuple[Declared, Profile]:
    """What the served file is judged as: its own type (a converted picture is served in
    another one), and only by the checks (it is not written again)."""
    served_type = record.served_type or content_type
    filename = with_extension(record.filename, served_type) if record.served_type \
        else record.filename
    types = {**profile.types, served_type: (filename.rsplit(".", 1)[-1].lower(),)}
    checks_only = profile.model_copy(update={"types": types, "reencode": False,
                                             "renditions": ()})
    return Declared(filename, served_type, size), checks_only


def _remove_served(validator: Validator, bucket: str, record: UploadRecord) -> None:
    for key in served_keys(record):
        validator.storage.delete(bucket, key)


@dataclass(frozen=True)
class Selection:
    """Which published uploads to judge again."""

    profile: str | None = None
    judged_before: str | None = None  # an ISO time: judged (last changed) before it
    stale_only: bool = False  # only those judged by other rules or signatures than now

    def chosen(self, records: Iterable[UploadRecord], validator: Validator
               ) -> Iterator[UploadRecord]:
        for record in records:
            if self.profile and record.profile != self.profile:
                continue
            if self.judged_before and record.updated_at >= self.judged_before:
                continue
            if self.stale_only and not stale(record.judged_by, validator.scanner):
                continue
            yield record


def rejudge_all(validator: Validator, records: Iterable[UploadRecord], rate: float,
                stop: threading.Event | None = None) -> dict[str, Rejudged]:
    """Judge each again, at most `rate` a second; stops early when `stop` is set."""
    outcomes: dict[str, Rejudged] = {}
    pause = 1.0 / rate if rate > 0 else 0.0
    for record in records:
        if stop is not None and stop.is_set():
            break
        outcomes[record.id] = rejudge(validator, record)
        if pause and stop is None:
            time.sleep(pause)
        elif pause and stop is not None and stop.wait(pause):
            break
    return outcomes


def run_rejudger(validator: Validator, stop: threading.Event, rate: float,
                 check_every: float = 300.0) -> None:
    """Judge again every published upload judged by other rules or signatures, whenever
    what judges changes (a release, a signature update), at `rate` uploads a second."""
    passed: str | None = None
    while not stop.is_set():
        try:
            version = validator.scanner.version()
            now = f"{version}" if version else "no scanner"
            if now != passed:
                stale_ones = Selection(stale_only=True).chosen(
                    validator.records.each_in_status("ready"), validator)
                outcomes = rejudge_all(validator, stale_ones, rate, stop)
                withdrawn = [i for i, o in outcomes.items() if o == "withdrawn"]
                log.info("judged again %d uploads (%s); withdrew %d: %s", len(outcomes), now,
                         len(withdrawn), " ".join(withdrawn[:20]))
                passed = now if not stop.is_set() else passed
        except Exception:
            log.exception("judging published uploads again failed; trying again later")
        stop.wait(check_every)
