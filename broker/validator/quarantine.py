"""The quarantine, reviewed by operators: what was refused or withdrawn, why, the file
itself through a short download link, and two actions, each recorded in the audit
log with who did it and why.

- Release: the file is served exactly as an accepted one would be (re-encoded or
  sanitized where the profile says so, with the same headers), the record becomes
  `ready` (usage counted, `upload.ready` sent), naming who released it and why.
- Purge: every quarantined copy is removed for good; the record stays as it was,
  naming who purged it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from broker.common.errors import Conflict, NotFound
from broker.domain.filenames import content_disposition
from broker.domain.inspection import Inspection, Verdict, served_for_release
from broker.domain.records import UploadRecord
from broker.domain.records.model import Status
from broker.storage import HashedStream, ObjectInfo
from broker.validator.judge import Validator
from broker.validator.promotion import deliver

REVIEWED: tuple[Status, ...] = ("rejected", "withdrawn")
LINK_SECONDS = 60  # a quarantined file's download link: long enough to start it


@dataclass
class Quarantine:
    validator: Validator

    def items(self) -> Iterator[UploadRecord]:
        """Every upload refused or withdrawn, the refused first."""
        for status in REVIEWED:
            yield from self.validator.records.each_in_status(status)

    def file_link(self, upload_id: str) -> str:
        """A short link that downloads the quarantined file as an attachment."""
        record, kept = self._kept(upload_id)
        return self.validator.storage.presign_get(
            kept.bucket, kept.key, LINK_SECONDS,
            content_disposition(f"quarantined-{record.filename or record.id}", "attachment"))

    def release(self, upload_id: str, operator: str, reason: str) -> UploadRecord:
        """Serve it as an accepted file would be, recording who released it and why."""
        if not reason.strip():
            raise Conflict("Say why the file is released (--reason).", code="reason_required")
        v = self.validator
        record, kept = self._kept(upload_id)
        profile = v.profiles.find(record.profile)
        content_type = record.content_type or record.declared_type
        stored = v.storage.fetch(kept.bucket, kept.key)
        if profile is None or stored is None:
            raise Conflict(f"{upload_id} cannot be released: its profile or file is gone.")
        hashed = HashedStream(stored.chunks())  # what the served copy is proved against
        for _ in hashed:
            pass
        verdict = Verdict.accept(content_type, stored.info.size, hashed.hexdigest())
        inspection = Inspection(verdict, served_for_release(stored, content_type, profile,
                                                            v.picture_limits))
        public = record.visibility == "public"
        bucket = v.settings.public_bucket if public else v.settings.private_bucket
        served = deliver(v.storage, stored, inspection, bucket, record, None)
        released = v.records.transition(
            record, "ready", allowed_from=(record.status,), quota=v.quota_of(record),
            content_type=content_type, size=verdict.size, stored_key=served.key,
            sha256=verdict.sha256, served_size=served.size, served_sha256=served.sha256,
            served_type=served.content_type, renditions=served.renditions,
            reason_code=None, reason_message=None, reason_detail=None,
            reviewed_by=operator, review_note=f"released: {reason}")
        if released is None:
            v.remove_served(bucket, served)
            raise Conflict(f"{upload_id} changed while it was being released; try again.")
        v.storage.erase(v.settings.incoming_bucket, self._prefix(record.id))
        return released

    def purge(self, upload_id: str, operator: str) -> UploadRecord:
        """Remove every quarantined copy for good, recording who did it."""
        v = self.validator
        record = self._reviewed(upload_id)
        v.storage.erase(v.settings.incoming_bucket, self._prefix(record.id))
        purged = v.records.transition(record, record.status, allowed_from=(record.status,),
                                      reviewed_by=operator, review_note="purged")
        if purged is None:
            raise Conflict(f"{upload_id} changed while it was being purged; try again.")
        return purged

    def _reviewed(self, upload_id: str) -> UploadRecord:
        record = self.validator.records.get(upload_id)
        if record is None or record.status not in REVIEWED:
            raise NotFound(f"There is no refused or withdrawn upload {upload_id!r}.")
        return record

    def _kept(self, upload_id: str) -> tuple[UploadRecord, ObjectInfo]:
        record = self._reviewed(upload_id)
        bucket = self.validator.settings.incoming_bucket
        kept = self.validator.storage.listed(bucket, self._prefix(record.id))
        if not kept:
            raise NotFound(f"{upload_id} has no quarantined file (purged, or expired).")
        return record, kept[-1]

    def _prefix(self, upload_id: str) -> str:
        return f"{self.validator.settings.quarantine_prefix}{upload_id}/"
