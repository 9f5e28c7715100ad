"""What the storage layer says about objects: their facts, a copy's checksums, how a
served file is headed, and the one failure that is not an outage (a changed object)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CopySourceTypeDef


class ObjectChanged(Exception):
    """The object was replaced between two reads: what was checked is not what is there."""

    service = "storage_changed"


@dataclass(frozen=True)
class Copied:
    """What a store said about a copy it wrote: its SHA-256, or each part's (hex)."""

    sha256: str | None = None
    part_sha256: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ObjectInfo:
    """What HEAD says about a stored object."""

    bucket: str
    key: str
    size: int
    etag: str
    content_type: str
    last_modified: datetime
    metadata: dict[str, str] = field(default_factory=dict)
    version_id: str | None = None  # None: the store keeps no versions of this key

    def pin(self) -> dict[str, Any]:
        """The request parameters that address exactly this version."""
        return {"VersionId": self.version_id} if self.version_id else {}

    def copy_source(self) -> CopySourceTypeDef:
        source: CopySourceTypeDef = {"Bucket": self.bucket, "Key": self.key}
        if self.version_id:
            source["VersionId"] = self.version_id
        return source


@dataclass(frozen=True)
class Delivery:
    """How a promoted object is to be served."""

    content_type: str
    content_disposition: str
    cache_control: str
