"""The S3 calls of multipart uploads: start, list what arrived, complete, abort.

A missing multipart upload (completed, aborted, or expired by the bucket's lifecycle
rule) is a value (None or False), not an exception; any other failure of the store
is `StorageError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from broker.common.errors import StorageError
from broker.storage.part_plans import StoredPart

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NO_UPLOAD = {"NoSuchUpload", "404"}


class UploadGone(Exception):
    """The multipart upload is no longer open."""


@contextmanager
def _calling(verb: str, bucket: str, key: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _NO_UPLOAD:
            raise UploadGone(f"no open multipart upload at s3://{bucket}/{key}") from exc
        raise StorageError(f"{verb} s3://{bucket}/{key} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"{verb} s3://{bucket}/{key} failed: {exc}") from exc


class MultipartStore:
    def __init__(self, client: S3Client) -> None:
        self.client = client

    def start(self, bucket: str, key: str, content_type: str, metadata: dict[str, str],
              **extra: Any) -> str:
        """A new multipart upload at `key`; its id."""
        with _calling("CREATE MULTIPART", bucket, key):
            reply = self.client.create_multipart_upload(
                Bucket=bucket, Key=key, ContentType=content_type, Metadata=metadata, **extra)
        return str(reply["UploadId"])

    def parts(self, bucket: str, key: str, multipart_id: str) -> list[StoredPart] | None:
        """Every part storage holds, in order; None when the upload is gone."""
        found: list[StoredPart] = []
        marker = 0
        try:
            while True:
                with _calling("LIST PARTS", bucket, key):
                    reply = self.client.list_parts(Bucket=bucket, Key=key,
                                                   UploadId=multipart_id,
                                                   PartNumberMarker=marker)
                found += [StoredPart(int(p["PartNumber"]), int(p["Size"]), str(p["ETag"]),
                                     p.get("ChecksumSHA256")) for p in reply.get("Parts", [])]
                if not reply.get("IsTruncated"):
                    return found
                marker = int(reply["NextPartNumberMarker"])
        except UploadGone:
            return None

    def complete(self, bucket: str, key: str, multipart_id: str,
                 parts: list[StoredPart]) -> bool:
        """Assemble `parts` into the object; False when the upload is gone."""
        listed: list[Any] = []
        for part in parts:
            entry: dict[str, Any] = {"PartNumber": part.part_number, "ETag": part.etag}
            if part.checksum_sha256:
                entry["ChecksumSHA256"] = part.checksum_sha256
            listed.append(entry)
        try:
            with _calling("COMPLETE", bucket, key):
                self.client.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=multipart_id,
                    MultipartUpload={"Parts": listed})
        except UploadGone:
            return False
        return True

    def abort(self, bucket: str, key: str, multipart_id: str | None) -> None:
        """Drop the upload and every part it holds (its parts are storage nobody will
        use: deleted, or expired before completion); one already gone, or none, is fine."""
        if multipart_id is None:
            return
        try:
            with _calling("ABORT", bucket, key):
                self.client.abort_multipart_upload(Bucket=bucket, Key=key,
                                                   UploadId=multipart_id)
        except UploadGone:
            pass
