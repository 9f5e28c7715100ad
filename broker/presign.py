"""The presigned S3 POST: a form the browser submits straight to the bucket.

Its policy pins the bucket, the exact key, the exact Content-Type, the exact
size, the upload id metadata and the success status, so the store itself
refuses anything else (where it enforces policies; the validator re-checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

UPLOAD_ID_FIELD = "x-amz-meta-upload-id"
SUCCESS_STATUS = "201"


@dataclass(frozen=True)
class PresignedPost:
    """Where and how the browser sends the file: `fields` first, the file last."""

    url: str
    fields: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"method": "POST", "url": self.url, "fields": self.fields}


def presign_post(
    client: S3Client,
    *,
    bucket: str,
    key: str,
    upload_id: str,
    content_type: str,
    min_size: int,
    max_size: int,
    ttl: int,
) -> PresignedPost:
    """Sign a POST that can store exactly one object of exactly this shape."""
    fields = {
        "Content-Type": content_type,
        UPLOAD_ID_FIELD: upload_id,
        "success_action_status": SUCCESS_STATUS,
    }
    # A new list every call: boto3 appends the bucket and key conditions to it.
    conditions: list[Any] = [
        {"Content-Type": content_type},
        {UPLOAD_ID_FIELD: upload_id},
        {"success_action_status": SUCCESS_STATUS},
        ["content-length-range", min_size, max_size],
    ]
    reply = client.generate_presigned_post(
        Bucket=bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=ttl
    )
    return PresignedPost(url=reply["url"], fields=dict(reply["fields"]))
