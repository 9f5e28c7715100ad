"""Promotion: writing the file a serving bucket holds for an accepted upload, with safe
headers, and proving it is what was judged, or was made only from what was judged."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from broker.domain.filenames import content_disposition
from broker.domain.inspection import Inspection, Verdict
from broker.domain.keys import delivered_key, rendition_key, with_extension
from broker.domain.pictures import PictureFile
from broker.domain.presign import UPLOAD_ID_METADATA
from broker.domain.records import UploadRecord
from broker.storage import Copied, Delivery, HashedStream, ObjectChanged, Storage, StoredObject
from broker.storage.part_plans import PartPlan

PUBLIC_CACHE = "public, max-age=31536000, immutable"
PRIVATE_CACHE = "private, max-age=0, no-store"
# Only raster images may render inline; everything else downloads.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp",
                          "image/avif"})


def delivery_for(record: UploadRecord, content_type: str, converted: bool = False
                 ) -> Delivery:
    """The headers a served file carries: its type, inline only for a public raster
    image, and caching by visibility. A converted file's name says its new type."""
    public = record.visibility == "public"
    inline = public and content_type in INLINE_TYPES
    name = with_extension(record.filename, content_type) if converted else record.filename
    return Delivery(
        content_type=content_type,
        content_disposition=content_disposition(name, "inline" if inline else "attachment"),
        cache_control=PUBLIC_CACHE if public else PRIVATE_CACHE,
    )


def deliver(storage: Storage, stored: StoredObject, inspection: Inspection, bucket: str,
            record: UploadRecord, plan: PartPlan | None) -> Served:
    """Write the served file and its renditions, and prove the file is what was judged
    (or made from it). Nothing stays written when a part fails."""
    obj = stored.info
    verdict = inspection.verdict
    assert verdict.sha256 is not None
    assert verdict.content_type is not None
    content_type = inspection.served.content_type or verdict.content_type
    key = delivered_key(record.id, obj.etag, content_type)
    delivery = delivery_for(record, content_type, content_type != verdict.content_type)
    metadata = {UPLOAD_ID_METADATA: record.id}
    written = [key]
    try:
        if inspection.rewrite is None:
            copied = storage.copy(obj, bucket, key, delivery, metadata, plan)
            if not _copy_proved(storage, copied, verdict, bucket, key):
                raise ObjectChanged(f"{obj.key} changed during the copy; withdrawn")
            size, sha256 = verdict.size, verdict.sha256
        else:  # served changed (re-encoded, neutralised, sanitized): from judged bytes only
            source = _JudgedObject(storage, obj, stored.prefix, sha256=verdict.sha256)
            served = HashedStream(inspection.rewrite(source))
            storage.upload(served, bucket, key, delivery, metadata)
            size, sha256 = served.size, served.hexdigest()
        renditions = write_renditions(storage, inspection.served.renditions, bucket, key,
                                      record, written)
    except Exception:
        for done in written:
            with contextlib.suppress(Exception):  # the failure that matters is raised
                storage.delete(bucket, done)
        raise
    return Served(size, sha256, key, content_type if content_type != verdict.content_type
                  else None, json.dumps(renditions) if renditions else None)


def write_renditions(storage: Storage, pictures: Iterable[PictureFile], bucket: str,
                     served_key: str, record: UploadRecord, written: list[str]
                     ) -> list[dict[str, object]]:
    """Store the renditions beside the served file, each key added to `written` as it
    is; what the record keeps of them. The same bytes are stored once (a small
    picture's sizes are often the same file)."""
    kept: list[dict[str, object]] = []
    key_of: dict[bytes, str] = {}
    for picture in pictures:
        key = key_of.get(picture.data)
        if key is None:
            key = key_of[picture.data] = rendition_key(served_key, picture.name,
                                                       picture.content_type)
            storage.upload(iter([picture.data]), bucket, key,
                           delivery_for(record, picture.content_type, converted=True),
                           {UPLOAD_ID_METADATA: record.id})
            written.append(key)
        kept.append(_kept(picture, key))
    return kept


def _kept(picture: PictureFile, key: str) -> dict[str, object]:
    return {"name": picture.name, "key": key, "width": picture.width,
            "height": picture.height, "content_type": picture.content_type,
            "size": len(picture.data)}


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
    """The file a serving bucket holds for an upload (the upload itself, or made from
    it), where, its type when converted, and its renditions (JSON, as records keep them)."""

    size: int
    sha256: str
    key: str
    content_type: str | None = None
    renditions: str | None = None


@dataclass(frozen=True)
class _JudgedObject(StoredObject):
    """The judged version, whose stream fails unless it hashes to the judged SHA-256."""

    sha256: str = ""

    def chunks(self) -> Iterator[bytes]:
        hashed = HashedStream(super().chunks())
        yield from hashed
        if hashed.hexdigest() != self.sha256:
            raise ObjectChanged(f"{self.info.key} is not the object that was judged")
