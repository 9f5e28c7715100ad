"""Presigned uploads the browser sends straight to the bucket.

A POST form (the default) whose policy pins the bucket, the exact key, the exact
Content-Type, the exact size, the upload id metadata and the success status; or,
for clients that can only PUT (Uppy's signRequest), a PUT URL whose signature
covers the key, the Content-Type and the Content-Length; or, for large files, one
URL per part of a multipart upload whose signature covers the part's exact length
and, when the client sent it, the part's SHA-256. Either way the store refuses
anything else (where it enforces them; the validator re-checks).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from botocore.exceptions import BotoCoreError

from broker.aws.clients import credentials_of
from broker.aws.sigv4 import UNSIGNED_PAYLOAD, Signer
from broker.common.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

UPLOAD_ID_METADATA = "upload-id"  # the object's metadata naming its upload
UPLOAD_ID_FIELD = f"x-amz-meta-{UPLOAD_ID_METADATA}"  # the same, as a POST form field
SUCCESS_STATUS = "201"
# How a part URL pins the part's content: S3's additional checksum (AWS S3, MinIO), or
# the payload hash signed into the URL (stores that verify only that, such as Ceph
# RGW before 19).
PartChecksum = Literal["checksum-sha256", "content-sha256"]


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
    """Signing needs no network, only credentials: their absence is an outage."""
    try:
        yield
    except BotoCoreError as exc:
        raise StorageError(f"cannot sign for storage: {exc}") from exc


@dataclass(frozen=True)
class PresignedPart:
    """PUT the part's bytes to `url` with `headers` (the browser sets Content-Length)."""

    part_number: int
    url: str
    headers: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"part_number": self.part_number, "url": self.url, "headers": self.headers}


class PostSigner:
    """Signs POST uploads and part URLs for one S3 client's credentials and endpoint,
    with the day's derived key (one HMAC per signature, where botocore derives the key
    each time); the bucket's URL comes from botocore once per bucket, so addressing
    styles and endpoints stay botocore's."""

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

    def object_url(self, bucket: str, key: str) -> str:
        return self._url(bucket).rstrip("/") + "/" + quote(key, safe="/~")

    def presign_part(self, *, bucket: str, key: str, multipart_id: str, part_number: int,
                     length: int | None, sha256: bytes | None, ttl: int,
                     checksum: PartChecksum) -> PresignedPart:
        """Sign one UploadPart: of exactly `length` bytes (None: any, for clients that
        plan their own parts) and, given its SHA-256, of exactly that content."""
        signed: dict[str, str] = {}
        if length is not None:
            signed["content-length"] = str(length)
        send: dict[str, str] = {}
        payload = UNSIGNED_PAYLOAD
        if sha256 is not None and checksum == "checksum-sha256":
            send["x-amz-checksum-sha256"] = base64.b64encode(sha256).decode()
        elif sha256 is not None:
            payload = send["x-amz-content-sha256"] = sha256.hex()
        with signing():
            url = self.signer.presign_url(
                "PUT", self.object_url(bucket, key),
                {"partNumber": str(part_number), "uploadId": multipart_id},
                {**signed, **send}, ttl, payload)
        return PresignedPart(part_number, url, send)

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
