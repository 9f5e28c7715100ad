"""The promise, counted: after any run, nothing lost, unchecked, stuck or leaked.

Shared by the crash and fault tests: they differ in what goes wrong, not in what must
hold afterwards.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from broker.domain.records import RecordStore, renditions_of
from broker.settings import Settings


@dataclass
class Ledger:
    lost: list[str] = field(default_factory=list)  # stored, yet never judged
    unchecked: list[str] = field(default_factory=list)  # served, yet not what was judged
    stuck: list[str] = field(default_factory=list)  # still pending or processing
    leaked: list[str] = field(default_factory=list)  # objects nothing will ever remove

    @property
    def clean(self) -> bool:
        return not (self.lost or self.unchecked or self.stuck or self.leaked)

    def summary(self) -> str:
        return (f"{len(self.lost)} lost, {len(self.unchecked)} published unchecked, "
                f"{len(self.stuck)} stuck, {len(self.leaked)} leaked")


def _objects(s3: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def count(s3: Any, records: RecordStore, settings: Settings, uploads: dict[str, bytes]) -> Ledger:
    """Check every upload (id -> the bytes its owner stored) and every stored object."""
    ledger = Ledger()
    ready: dict[tuple[str, str], Any] = {}
    for upload_id, original in uploads.items():
        record = records.get(upload_id)
        if record is None or record.status in ("expired", "deleted"):
            ledger.lost.append(upload_id)
        elif record.status in ("pending", "processing"):
            ledger.stuck.append(upload_id)
        elif record.status == "ready":
            bucket = settings.public_bucket if record.visibility == "public" \
                else settings.private_bucket
            ready[(bucket, record.stored_key or "")] = record
            for rendition in renditions_of(record):  # made from the judged pixels
                ready[(bucket, rendition["key"])] = rendition
            if record.sha256 != _sha(original):
                ledger.unchecked.append(f"{upload_id}: judged other bytes than stored")
    ours = tuple(uploads)  # other tests may share the store: count only these uploads
    for bucket in (settings.public_bucket, settings.private_bucket):
        for key, data in _objects(s3, bucket).items():
            if not key.startswith(ours):
                continue
            record = ready.get((bucket, key))
            if record is None:
                ledger.leaked.append(f"s3://{bucket}/{key}: no ready upload serves it")
                ledger.unchecked.append(f"s3://{bucket}/{key}")
            elif isinstance(record, dict):
                if len(data) != record["size"]:
                    ledger.unchecked.append(f"s3://{bucket}/{key}: not the rendition made")
            elif _sha(data) != (record.served_sha256 or record.sha256):
                ledger.unchecked.append(f"s3://{bucket}/{key}: not the file judged")
    versions = s3.list_object_versions(Bucket=settings.incoming_bucket,
                                       Prefix=settings.incoming_prefix)
    ledger.leaked += [f"incoming version {v['Key']}" for v in versions.get("Versions", [])
                      if v["Key"].removeprefix(settings.incoming_prefix).startswith(ours)]
    return ledger
