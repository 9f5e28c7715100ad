"""Promotion: writing the file a serving bucket holds for an accepted upload, with safe
headers, and proving it is what was judged, or was made only from what was judged."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from broker.domain.filenames import content_disposition
from broker.domain.inspection import Inspection, Verdict
from broker.domain.presign import UPLOAD_ID_METADATA
from broker.domain.records import UploadRecord
from broker.storage import Copied, Delivery, HashedStream, ObjectChanged, Storage, StoredObject
from broker.storage.part_plans import PartPlan

PUBLIC_CACHE = "public, max-age=31536000, immutable"
PRIVATE_CACHE = "private, max-age=0, no-store"
# Only raster images may render inline; everything else downloads.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def delivery_for(record: UploadRecord, content_type: str) -> Delivery:
    """The headers a served file carries: the detected type, inline only for a public
    raster image, and caching by visibility."""
    public = record.visibility == "public"
    inline = public and content_type in INLINE_TYPES
    return Delivery(
        content_type=content_type,
        content_disposition=content_disposition(
            record.filename, "inline" if inline else "attachment"),
        cache_control=PUBLIC_CACHE if public else PRIVATE_CACHE,
    )


def deliver(storage: Storage, stored: StoredObject, inspection: Inspection, bucket: str,
            key: str, delivery: Delivery, upload_id: str, plan: PartPlan | None) -> Served:
    """Write the served file, and prove it is what was judged (or made from it)."""
    obj = stored.info
    judged = inspection.verdict.sha256
    assert judged is not None
    metadata = {UPLOAD_ID_METADATA: upload_id}
    if inspection.rewrite is None:
        copied = storage.copy(obj, bucket, key, delivery, metadata, plan)
        if not _copy_proved(storage, copied, inspection.verdict, bucket, key):
            storage.delete(bucket, key)
            raise ObjectChanged(f"{obj.key} changed during the copy; withdrawn")
        return Served(inspection.verdict.size, judged)
    # Served changed (re-encoded, neutralised, sanitized): made from the judged bytes only.
    source = _JudgedObject(storage, obj, stored.prefix, sha256=judged)
    served = HashedStream(inspection.rewrite(source))
    try:
        storage.upload(served, bucket, key, delivery, metadata)
    except ObjectChanged:
        storage.delete(bucket, key)
        raise
    return Served(served.size, served.hexdigest())


def _copy_proved(storage: Storage, copied: Copied, verdict: Verdict, bucket: str,
                 key: str) -> bool:
    """The copy holds the judged bytes: by the store's own SHA-256 of it (whole, or
    part by part), else by reading it back."""
    if copied.sha256 is not None:
        return copied.sha256 == verdict.sha256
    if copied.part_sha256 is not None and verdict.part_sha256 is not None:
        return copied.part_sha256 == verdict.part_sha256
    return storage.sha256(bucket, key) == verdict.sha256


@dataclass(frozen=True)
class Served:
    """The file a serving bucket holds for an upload: the upload itself, or made from it."""

    size: int
    sha256: str


@dataclass(frozen=True)
class _JudgedObject(StoredObject):
    """The judged version, whose stream fails unless it hashes to the judged SHA-256."""

    sha256: str = ""

    def chunks(self) -> Iterator[bytes]:
        hashed = HashedStream(super().chunks())
        yield from hashed
        if hashed.hexdigest() != self.sha256:
            raise ObjectChanged(f"{self.info.key} is not the object that was judged")
