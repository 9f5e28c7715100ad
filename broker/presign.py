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

from broker.clients import credentials_of
from broker.errors import StorageError
from broker.sigv4 import Signer

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


class PostSigner:
    """Signs POST uploads for one S3 client's credentials and endpoint. The policy is
    signed with the day's derived key (one HMAC per upload, where botocore derives the
    key each time); the form's URL, which depends only on the bucket, comes from
    botocore once per bucket, so addressing styles and endpoints stay botocore's."""

    def __init__(self, client: S3Client) -> None:
        self.client = client
        meta = client.meta
        self.signer = Signer(credentials_of(client), meta.region_name, "s3")
        self._urls: dict[str, str] = {}

    def _url(self, bucket: str) -> str:
        url = self._urls.get(bucket)
        if url is None:
            with signing():
                url = self.client.generate_presigned_post(Bucket=bucket, Key="-")["url"]
            self._urls[bucket] = url
        return url

    def presign_post(self, *, bucket: str, key: str, upload_id: str, content_type: str,
                     min_size: int, max_size: int, ttl: int) -> PresignedUpload:
        """Sign a POST that can store exactly one object of exactly this shape."""
        fields = {
            "key": key,
            "Content-Type": content_type,
            UPLOAD_ID_FIELD: upload_id,
            "success_action_status": SUCCESS_STATUS,
        }
        conditions: list[Any] = [
            {"Content-Type": content_type},
            {UPLOAD_ID_FIELD: upload_id},
            {"success_action_status": SUCCESS_STATUS},
            ["content-length-range", min_size, max_size],
            {"bucket": bucket},
            {"key": key},
        ]
        url = self._url(bucket)
        with signing():
            signed = self.signer.post_policy(fields, conditions, ttl)
        return PresignedUpload(url=url, fields=signed)


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
