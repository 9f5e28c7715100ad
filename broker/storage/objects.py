"""Every S3 call the product makes, behind one small class.

A missing object is a value (None), not an exception; a changed object is
`ObjectChanged`; any other failure of the store is `StorageError`.

Every read, copy and delete of a judged object names its version when the store
keeps versions (the incoming bucket is provisioned with versioning), so a newer
upload at the same key can neither be served in its place nor deleted with it.
"""

from __future__ import annotations

import base64
import io
import itertools
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from broker.common.errors import StorageError, probing
from broker.storage.multipart import MultipartStore
from broker.storage.part_plans import PartPlan, StoredPart
from broker.storage.streams import ChunkReader, HashedStream
from broker.storage.values import Copied, Delivery, ObjectChanged, ObjectInfo

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING = {"404", "NoSuchKey", "NotFound"}
PROBE_KEY = "readiness-probe"  # read by readiness checks, never written
# Bytes in flight per streamed read: what a whole-object pass holds at once.
STREAM_CHUNK = 256 * 1024
# The first read of an object fetches this much: the sniff, and all of a small file,
# so an avatar is judged from one GET (and its facts come with it: no HEAD).
FIRST_READ = 1024 * 1024
# A file we produce up to this size is stored with one PUT, not a multipart upload.
SINGLE_PUT_MAX = 8 * 1024 * 1024
COPY_CONCURRENCY = 8  # parts of a copy in parts copied at once
_CHANGED = {"412", "PreconditionFailed"}
# What a store answers for a version id it does not know (deleted, or never versioned).
_BAD_VERSION = {"400", "InvalidArgument", "NoSuchVersion"}


class _RangeReader(io.RawIOBase):
    """Random access to an object: what parsers that seek (zip, PDF, images) need."""

    def __init__(self, storage: Storage, obj: ObjectInfo) -> None:
        self._storage = storage
        self._obj = obj
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._obj.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        data = self._storage.read_range(self._obj, self._pos, len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


@dataclass(frozen=True)
class StoredObject:
    """One stored version, readable as a head, a seekable file or a stream of chunks.
    `prefix` holds its first bytes as already read; when that is all of it, every read
    is answered from memory."""

    storage: Storage
    info: ObjectInfo
    prefix: bytes = b""

    @property
    def size(self) -> int:
        return self.info.size

    @property
    def whole(self) -> bool:
        return len(self.prefix) == self.info.size

    def head(self, length: int) -> bytes:
        if length <= len(self.prefix) or self.whole:
            return self.prefix[:length]
        return self.storage.read_range(self.info, 0, length)

    def open(self) -> BinaryIO:
        if self.whole:
            return io.BytesIO(self.prefix)
        return self.storage.open(self.info)

    def chunks(self) -> Iterator[bytes]:
        if self.whole:
            return (self.prefix[i:i + STREAM_CHUNK]
                    for i in range(0, len(self.prefix), STREAM_CHUNK))
        return self.storage.iter_chunks(self.info, STREAM_CHUNK)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _absent(exc: ClientError, version_id: str | None) -> bool:
    """The object (or the version named) is not there: a value, not a failure."""
    return _code(exc) in _MISSING or bool(version_id and _code(exc) in _BAD_VERSION)


class Storage:
    """S3 operations on any store that speaks the protocol."""

    def __init__(self, client: S3Client, objects: S3Client | None = None) -> None:
        """`objects`, when given, makes a verdict's reads, writes, deletes and version
        listings in the client's place, answering as it does (`broker.aws.lean_s3`)."""
        self.client = client
        self.objects = objects or client
        self.multipart = MultipartStore(client)

    def fetch(self, bucket: str, key: str, version_id: str | None = None
              ) -> StoredObject | None:
        """The object (one version, when named) with its first FIRST_READ bytes, from one
        ranged GET whose answer carries what HEAD would say; None when it does not exist."""
        pinned: dict[str, Any] = {"VersionId": version_id} if version_id else {}
        try:
            reply = self.objects.get_object(Bucket=bucket, Key=key,
                                           Range=f"bytes=0-{FIRST_READ - 1}", **pinned)
            with reply["Body"] as body:
                prefix: bytes = body.read()
        except ClientError as exc:
            if _absent(exc, version_id):
                return None
            if _code(exc) == "InvalidRange":  # an empty object has no byte 0
                info = self.head(bucket, key, version_id)
                return StoredObject(self, info) if info else None
            raise StorageError(f"GET s3://{bucket}/{key} failed: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"GET s3://{bucket}/{key} failed: {exc}") from exc
        # "bytes 0-1023/5000": the object's size follows the slash; a store that ignored
        # the range sent the whole object.
        total = str(reply.get("ContentRange", "")).rpartition("/")[2]
        size = int(total) if total.isdigit() else len(prefix)
        return StoredObject(self, self._info(bucket, key, reply, size), prefix)

    def ping(self, bucket: str) -> None:
        """Raise StorageError unless the store answers (readiness): a HEAD of a key
        nobody writes, whose 404 (or 403) is an answer."""
        with probing(StorageError):
            self.client.head_object(Bucket=bucket, Key=PROBE_KEY)

    def exists(self, bucket: str, key: str) -> bool:
        """Whether an object is stored at `key`, from a listing: needs no read access."""
        try:
            reply = self.client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"LIST s3://{bucket}/{key} failed: {exc}") from exc
        return any(o.get("Key") == key for o in reply.get("Contents", []))

    def erase(self, bucket: str, prefix: str) -> int:
        """Remove every object under `prefix`, every version of each and every delete
        marker: nothing of it stays recoverable. How many were removed."""
        removed = 0
        try:
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=prefix)
            for page in pages:
                entries: list[Any] = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
                for entry in entries:
                    version = entry.get("VersionId")
                    if version and version != "null":
                        self.objects.delete_object(Bucket=bucket, Key=entry["Key"],
                                                  VersionId=version)
                    else:
                        self.objects.delete_object(Bucket=bucket, Key=entry["Key"])
                    removed += 1
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"erasing s3://{bucket}/{prefix} failed: {exc}") from exc
        return removed

    def listed(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        """The objects stored under `prefix` (their current versions), oldest first; the
        facts a listing gives (no type, no metadata)."""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                         Prefix=prefix)
            found = [ObjectInfo(bucket=bucket, key=o["Key"], size=int(o.get("Size", 0)),
                                etag=o["ETag"], content_type="",
                                last_modified=o["LastModified"])
                     for page in pages for o in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"LIST s3://{bucket}/{prefix} failed: {exc}") from exc
        return sorted(found, key=lambda o: o.last_modified)

    def versions(self, bucket: str, key: str) -> list[ObjectInfo]:
        """Every stored version of exactly `key` (delete markers aside), oldest first."""
        try:
            reply = self.objects.list_object_versions(Bucket=bucket, Prefix=key)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"LIST versions of s3://{bucket}/{key} failed: {exc}") from exc
        found = [ObjectInfo(bucket=bucket, key=key, size=int(v.get("Size", 0)),
                            etag=v["ETag"], content_type="", last_modified=v["LastModified"],
                            version_id=v["VersionId"] if v.get("VersionId") not in (None, "null")
                            else None)
                 for v in reply.get("Versions", []) if v.get("Key") == key]
        return sorted(found, key=lambda v: v.last_modified)

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo | None:
        """The object's facts (of one version, when named), or None when it does not exist."""
        pinned: dict[str, Any] = {"VersionId": version_id} if version_id else {}
        try:
            reply = self.objects.head_object(Bucket=bucket, Key=key, **pinned)
        except ClientError as exc:
            if _absent(exc, version_id):
                return None
            raise StorageError(f"HEAD s3://{bucket}/{key} failed: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"HEAD s3://{bucket}/{key} failed: {exc}") from exc
        return self._info(bucket, key, reply, int(reply["ContentLength"]))

    @staticmethod
    def _info(bucket: str, key: str, reply: Any, size: int) -> ObjectInfo:
        version = reply.get("VersionId")
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=size,
            etag=reply["ETag"],
            content_type=reply.get("ContentType", ""),
            last_modified=reply["LastModified"],
            metadata={k.lower(): v for k, v in reply.get("Metadata", {}).items()},
            version_id=version if version and version != "null" else None,
        )

    def read_range(self, obj: ObjectInfo, start: int, length: int) -> bytes:
        """Bytes [start, start+length) of exactly the version `obj` describes."""
        if length <= 0 or start >= obj.size:
            return b""
        end = min(start + length, obj.size) - 1
        body = self._get(obj, Range=f"bytes={start}-{end}")
        try:
            with body:
                data: bytes = body.read()
        except BotoCoreError as exc:  # a reset or timeout mid-body
            raise StorageError(f"reading s3://{obj.bucket}/{obj.key} failed: {exc}") from exc
        return data

    def open(self, obj: ObjectInfo, buffer_size: int = 256 * 1024) -> io.BufferedReader:
        """A seekable file over exactly this version, fetched by ranged GETs as it is read."""
        return io.BufferedReader(_RangeReader(self, obj), buffer_size=buffer_size)

    def iter_chunks(self, obj: ObjectInfo, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The object's bytes in bounded chunks, streamed: never all in memory."""
        body = self._get(obj)
        try:
            with body:
                yield from body.iter_chunks(chunk_size)
        except BotoCoreError as exc:  # a reset or timeout mid-body
            raise StorageError(f"reading s3://{obj.bucket}/{obj.key} failed: {exc}") from exc

    def _get(self, obj: ObjectInfo, **extra: Any) -> Any:
        try:
            reply = self.objects.get_object(
                Bucket=obj.bucket, Key=obj.key, IfMatch=obj.etag, **obj.pin(), **extra
            )
        except ClientError as exc:
            self._raise(exc, "GET", obj.bucket, obj.key)
        except BotoCoreError as exc:
            raise StorageError(f"GET s3://{obj.bucket}/{obj.key} failed: {exc}") from exc
        return reply["Body"]

    def copy(self, obj: ObjectInfo, bucket: str, key: str, delivery: Delivery | None,
             metadata: dict[str, str], plan: PartPlan | None = None) -> Copied:
        """Server-side copy of exactly this version, with the headers it will be served
        with; in parts per `plan` (what a single CopyObject cannot do above 5 GiB)."""
        # REPLACE keeps no header that is not named: a copy without a delivery (to
        # quarantine) names the source's own type.
        source_type = obj.content_type or "application/octet-stream"
        extra: dict[str, Any] = {"ContentType": source_type} if delivery is None else {
            "ContentType": delivery.content_type,
            "ContentDisposition": delivery.content_disposition,
            "CacheControl": delivery.cache_control,
        }
        if plan is not None:
            return Copied(part_sha256=self._copy_in_parts(obj, bucket, key, metadata, plan,
                                                          extra))
        try:
            reply = self.client.copy_object(
                Bucket=bucket,
                Key=key,
                CopySource=obj.copy_source(),
                CopySourceIfMatch=obj.etag,
                MetadataDirective="REPLACE",
                Metadata=metadata,
                ChecksumAlgorithm="SHA256",  # stores that honour it say what they wrote
                **extra,
            )
        except ClientError as exc:
            self._raise(exc, "COPY", obj.bucket, obj.key)
        except BotoCoreError as exc:
            raise StorageError(f"COPY s3://{obj.bucket}/{obj.key} failed: {exc}") from exc
        checksum = reply.get("CopyObjectResult", {}).get("ChecksumSHA256")
        return Copied(sha256=base64.b64decode(checksum).hex() if checksum else None)

    def _copy_in_parts(self, obj: ObjectInfo, bucket: str, key: str, metadata: dict[str, str],
                       plan: PartPlan, extra: dict[str, Any]) -> tuple[str, ...] | None:
        """UploadPartCopy, several parts at once, each only while the source keeps its
        ETag; nothing passes through here, whatever the size. Each part's SHA-256 (hex)
        when the store reported them all. A failure aborts the copy: nothing is left."""
        content_type = extra.pop("ContentType")
        multipart_id = self.multipart.start(bucket, key, content_type, metadata,
                                            ChecksumAlgorithm="SHA256", **extra)

        def copy(number: int) -> StoredPart:
            first = (number - 1) * plan.part_size
            try:
                reply = self.client.upload_part_copy(
                    Bucket=bucket, Key=key, UploadId=multipart_id, PartNumber=number,
                    CopySource=obj.copy_source(), CopySourceIfMatch=obj.etag,
                    CopySourceRange=f"bytes={first}-{first + plan.length_of(number) - 1}")
            except ClientError as exc:
                self._raise(exc, "COPY PART", obj.bucket, obj.key)
            except BotoCoreError as exc:
                raise StorageError(f"COPY PART s3://{obj.bucket}/{obj.key} failed: {exc}") \
                    from exc
            result = reply["CopyPartResult"]
            return StoredPart(number, plan.length_of(number), str(result["ETag"]),
                              result.get("ChecksumSHA256"))

        try:
            with ThreadPoolExecutor(COPY_CONCURRENCY, thread_name_prefix="copy-part") as pool:
                parts = list(pool.map(copy, range(1, plan.part_count + 1)))
            if not self.multipart.complete(bucket, key, multipart_id, parts):
                raise StorageError(f"the copy in parts to s3://{bucket}/{key} vanished")
        except StorageError as exc:
            self.multipart.abort(bucket, key, multipart_id)
            # A store that ignores the precondition copied ranges of a newer object (whose
            # parts then do not assemble): say so, as one that honours it would.
            current = self.head(obj.bucket, obj.key)
            if current is None or current.etag != obj.etag:
                raise ObjectChanged(f"{obj.key} changed during the copy in parts") from exc
            raise
        except BaseException:
            self.multipart.abort(bucket, key, multipart_id)
            raise
        if not all(p.checksum_sha256 for p in parts):
            return None
        return tuple(base64.b64decode(p.checksum_sha256 or "").hex() for p in parts)

    def sha256(self, bucket: str, key: str) -> str | None:
        """The SHA-256 (hex) of what is stored at a key now, read as a stream; None if absent."""
        obj = self.head(bucket, key)
        if obj is None:
            return None
        hashed = HashedStream(self.iter_chunks(obj, STREAM_CHUNK))
        for _ in hashed:
            pass
        return hashed.hexdigest()

    def upload(self, chunks: Iterable[bytes], bucket: str, key: str, delivery: Delivery,
               metadata: dict[str, str]) -> None:
        """Store a stream we produced (a rewritten file): one PUT when it is small, else
        in parts, never all in memory. The stream is drawn to its end before a small
        file is written, so a stream that fails (ObjectChanged) writes nothing."""
        extra: Any = {"ContentType": delivery.content_type,
                      "ContentDisposition": delivery.content_disposition,
                      "CacheControl": delivery.cache_control, "Metadata": metadata}
        stream = iter(chunks)
        first: list[bytes] = []
        held = 0
        for chunk in stream:
            first.append(chunk)
            held += len(chunk)
            if held > SINGLE_PUT_MAX:
                break
        try:
            if held <= SINGLE_PUT_MAX:
                self.objects.put_object(Bucket=bucket, Key=key, Body=b"".join(first), **extra)
                return
            self.client.upload_fileobj(
                io.BufferedReader(ChunkReader(itertools.chain(first, stream))), bucket, key,
                ExtraArgs=extra)
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise StorageError(f"PUT s3://{bucket}/{key} failed: {exc}") from exc

    def delete(self, bucket: str, key: str) -> None:
        """Remove an object; one already gone is fine."""
        try:
            self.objects.delete_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                self._raise(exc, "DELETE", bucket, key)
        except BotoCoreError as exc:
            raise StorageError(f"DELETE s3://{bucket}/{key} failed: {exc}") from exc

    def delete_judged(self, obj: ObjectInfo) -> bool:
        """Remove exactly the version that was judged; never a newer one at the same key.
        False when a newer object is there (its own event will judge it)."""
        if not obj.version_id:
            current = self.head(obj.bucket, obj.key)
            if current is None:
                return True
            if current.etag != obj.etag:
                return False
        try:
            if obj.version_id:
                self.objects.delete_object(Bucket=obj.bucket, Key=obj.key,
                                          VersionId=obj.version_id)
            else:  # If-Match closes the gap after HEAD on stores that honour it
                self.objects.delete_object(Bucket=obj.bucket, Key=obj.key, IfMatch=obj.etag)
        except ClientError as exc:
            if _code(exc) in _CHANGED:
                return False
            if _code(exc) not in _MISSING:
                self._raise(exc, "DELETE", obj.bucket, obj.key)
        except BotoCoreError as exc:
            raise StorageError(f"DELETE s3://{obj.bucket}/{obj.key} failed: {exc}") from exc
        return True

    def presign_get(self, bucket: str, key: str, ttl: int, disposition: str) -> str:
        """A short-lived download link that makes the browser save the file."""
        try:
            return self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": bucket, "Key": key, "ResponseContentDisposition": disposition},
                ExpiresIn=ttl,
            )
        except BotoCoreError as exc:  # signing is local: only missing credentials fail it
            raise StorageError(f"cannot sign a download: {exc}") from exc

    @staticmethod
    def _raise(exc: ClientError, verb: str, bucket: str, key: str) -> Any:
        code = _code(exc)
        if code in _CHANGED:
            raise ObjectChanged(f"s3://{bucket}/{key} changed while it was being checked") from exc
        if code in _MISSING:
            raise ObjectChanged(f"s3://{bucket}/{key} disappeared while it was being checked") \
                from exc
        raise StorageError(f"{verb} s3://{bucket}/{key} failed: {code}") from exc
