"""Erasing one person: every file of every upload they made, everywhere it was kept.

For each of the owner's uploads: every version of its object in incoming/, its
quarantined copies, its files in the public and private buckets (the served file and
any other copy under the upload's folder), its unfinished parts; then the record
becomes a tombstone that keeps no file name, which releases the owner's usage, tells
the CDN and sends `upload.deleted`. Files go before records, so a run cut short is
finished by running it again: what was removed is simply absent the second time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from broker.domain.records import RecordStore, UploadRecord
from broker.domain.uploads import Uploads

log = logging.getLogger(__name__)

ERASED_NAME = ""  # what a tombstone keeps of the file's name: nothing


@dataclass
class ErasureReport:
    owner: str
    uploads: list[str] = field(default_factory=list)
    objects_removed: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"owner": self.owner, "uploads_erased": len(self.uploads),
                "objects_removed": self.objects_removed, "upload_ids": self.uploads}


def erase_owner(uploads: Uploads, owner: str) -> ErasureReport:
    """Erase everything of `owner`; safe to run again after a crash."""
    report = ErasureReport(owner)
    records = uploads.records
    while True:
        page, _ = records.list_by_owner(owner, limit=100)
        if not page:
            return report
        for record in page:
            report.objects_removed += _remove_files(uploads, record)
            if _tombstone(records, record):
                report.uploads.append(record.id)
                log.info("erased %s of %s", record.id, owner)


def _remove_files(uploads: Uploads, record: UploadRecord) -> int:
    s = uploads.settings
    storage = uploads.storage
    storage.multipart.abort(s.incoming_bucket, record.incoming_key, record.multipart_id)
    removed = storage.erase(s.incoming_bucket, record.incoming_key)
    removed += storage.erase(s.incoming_bucket, f"{s.quarantine_prefix}{record.id}/")
    for bucket in (s.public_bucket, s.private_bucket):
        removed += storage.erase(bucket, f"{record.id}/")
    return removed


def _tombstone(records: RecordStore, record: UploadRecord) -> bool:
    """The record as a tombstone with no file name; False when it changed meanwhile (the
    next page reads it again)."""
    return records.transition(record, "deleted", allowed_from=(record.status,),
                              filename=ERASED_NAME) is not None
