"""Judging a published upload again, as the rules or the scanner's signatures change.

The served file is read from where it is served and judged by today's checks and
scanner. Still fine: left exactly where it is, its record noting what judged it
now (no copy, no event). Found bad: withdrawn. Its file is kept in quarantine and
removed from where it was served; the record says why, when and by what; the
owner's usage is released; the app hears `upload.withdrawn` and the CDN is told
(both from the outbox, written with the change).
"""

from __future__ import annotations

import logging
from typing import Literal

from broker.domain.inspection import Declared, inspect
from broker.domain.keys import quarantine_key
from broker.domain.presign import UPLOAD_ID_METADATA
from broker.domain.records import UploadRecord
from broker.validator.judge import Validator

log = logging.getLogger(__name__)

Rejudged = Literal["unchanged", "withdrawn", "not ready", "missing"]


def rejudge(validator: Validator, record: UploadRecord) -> Rejudged:
    """Judge a ready upload again; withdraw it when it no longer passes."""
    s = validator.settings
    bucket = s.public_bucket if record.visibility == "public" else s.private_bucket
    if record.status == "withdrawn" and record.stored_key:
        validator.storage.delete(bucket, record.stored_key)  # finish a withdrawal cut short
        return "withdrawn"
    if record.status != "ready" or not record.stored_key:
        return "not ready"
    stored = validator.storage.fetch(bucket, record.stored_key)
    profile = validator.profiles.find(record.profile)
    if stored is None or profile is None or record.content_type is None:
        log.warning("%s cannot be judged again: its served file or profile is gone",
                    record.id)
        return "missing"
    declared = Declared(record.filename, record.content_type, stored.info.size)
    verdict = inspect(stored, profile, declared, validator.scanner).verdict
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
    validator.storage.delete(bucket, record.stored_key)
    log.warning("withdrew %s: %s %s", record.id, verdict.reason.code, verdict.detail)
    return "withdrawn"
