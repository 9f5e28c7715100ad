"""Presigned uploads the browser sends straight to the bucket.

A POST form (the default) whose policy pins the bucket, the exact key, the exact
Content-Type, the exact size, the upload id metadata and the success status; or,
for clients that can only PUT (Uppy's signRequest), a PUT URL whose signature
covers the key, the Content-Type and the Content-Length. Either way the store
refuses anything else (where it enforces them; the validator re-checks).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError

from broker.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

UPLOAD_ID_FIELD = "x-amz-meta-upload-id"
SUCCESS_STATUS = "201"


@dataclass(frozen=True)
class PresignedUpload:
    """Where and how the browser sends the file: for POST, `fields` first and the
    file last; for PUT, the file as the body with `headers`."""

    url: str
    fields: dict[str, str]
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "fields": self.fields,
                "headers": self.headers}


@contextmanager
def signing() -> Iterator[None]:
    """Signing needs no network, only credentials: their absence is an outage (503)."""
    try:
        yield
    except BotoCoreError as exc:
        raise StorageError(f"cannot sign for storage: {exc}") from exc


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
) -> PresignedUpload:
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
    with signing():
        reply = client.generate_presigned_post(
            Bucket=bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=ttl
        )
    return PresignedUpload(url=reply["url"], fields=dict(reply["fields"]))


def presign_put(client: S3Client, *, bucket: str, key: str, content_type: str, size: int,
                ttl: int) -> PresignedUpload:
    """Sign a PUT of exactly this key, type and length (browsers set Content-Length)."""
    with signing():
        url = client.generate_presigned_url(
            "put_object",
            Params={"Bucket": bucket, "Key": key, "ContentType": content_type,
                    "ContentLength": size},
            ExpiresIn=ttl,
        )
    return PresignedUpload(url=url, fields={}, method="PUT",
                           headers={"Content-Type": content_type})
