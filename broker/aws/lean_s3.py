"""The validator's per-object S3 calls at a fraction of botocore's CPU per call.

Each verdict reads the object, writes what is served, deletes what was judged and
lists the key's versions: four calls, each about 0.7 ms of botocore's CPU (the model,
the endpoint rules, the event hooks, the XML parser) around a request of a few headers.
This client sends those calls (GetObject, and HeadObject beside it; PutObject,
DeleteObject, ListObjectVersions) directly, with botocore's answers: the same result
keys and types, `ClientError` with the same codes, botocore's connection and streaming
errors, the same retries. Any other call, or a call with parameters it does not know, goes to the
boto3 client it was built from.

It serves stores addressed by path at an endpoint of their own (the emulator, Ceph
RGW, MinIO) with checksums only where required (`lean_s3` decides); AWS's own
endpoints, with their redirects, virtual hosts and checksums, stay with botocore.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import urllib3
from botocore.exceptions import ClientError, ReadTimeoutError, ResponseStreamingError
from defusedxml import ElementTree

from broker.aws.lean_http import (
    Answer,
    LeanConnection,
    Retryable,
    response_metadata,
    retryable,
    with_retries,
)

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# Parameters each lean call knows, by the header or query name it sends them as.
_GET_HEADERS = {"Range": "range", "IfMatch": "if-match"}
_PUT_HEADERS = {"ContentType": "content-type", "ContentDisposition": "content-disposition",
                "CacheControl": "cache-control"}
_DELETE_HEADERS = {"IfMatch": "if-match"}
_HEADERS_BY_METHOD = {"GET": _GET_HEADERS, "HEAD": {}, "DELETE": _DELETE_HEADERS}


def lean_s3(client: Any) -> LeanS3 | None:
    """The lean client for this boto3 client, or None where botocore should stay: AWS's
    own endpoints, virtual-host addressing, or checksums on every call."""
    meta = client.meta
    host = urlsplit(meta.endpoint_url).hostname or ""
    if host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn"):
        return None
    if (meta.config.s3 or {}).get("addressing_style") != "path":
        return None
    if meta.config.request_checksum_calculation != "when_required" \
            or meta.config.response_checksum_validation != "when_required":
        return None
    return LeanS3(client)


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _header_date(value: str | None) -> datetime | None:
    return parsedate_to_datetime(value) if value else None


def _xml_date(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # the name without S3's XML namespace


class _Held:
    """A body already read whole (an answer from botocore's `before-send` handlers)."""

    length_remaining = 0

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, amt: int | None = None) -> bytes:
        return self._data.read(amt)

    def close(self) -> None:
        self._data.close()

    def release_conn(self) -> None:
        self._data.close()


class StreamingBody:
    """An object's body read from its connection, as botocore's StreamingBody is read:
    whole, in chunks, or as a context that gives the connection back."""

    def __init__(self, reply: Any, url: str) -> None:
        self._reply = reply
        self._url = url

    def __enter__(self) -> StreamingBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, amt: int | None = None) -> bytes:
        try:
            data: bytes = self._reply.read(amt)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise ReadTimeoutError(endpoint_url=self._url, error=exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # cut short, or reset
            raise ResponseStreamingError(error=exc) from exc
        return data

    def iter_chunks(self, chunk_size: int = 1024) -> Iterator[bytes]:
        while chunk := self.read(chunk_size):
            yield chunk

    def close(self) -> None:
        if self._reply.length_remaining:  # left unread: the connection cannot be reused
            self._reply.close()
        self._reply.release_conn()


class LeanS3:
    """boto3's S3 client, its per-object calls sent directly (see the module)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.connection = LeanConnection(client)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_client"], name)  # everything else: botocore's

    def close(self) -> None:
        self.connection.close()

    # ---- the calls ---------------------------------------------------------------

    def get_object(self, **params: Any) -> dict[str, Any]:
        return self._object_call("GetObject", "GET", params, stream=True)

    def head_object(self, **params: Any) -> dict[str, Any]:
        return self._object_call("HeadObject", "HEAD", params)

    def put_object(self, **params: Any) -> dict[str, Any]:
        body = params.get("Body", b"")
        metadata = params.get("Metadata", {})
        known = {"Bucket", "Key", "Body", "Metadata", *_PUT_HEADERS}
        if set(params) - known or not isinstance(body, bytes) or not all(
                str(v).isascii() for v in (*metadata.values(), *metadata.keys(),
                                           *(params.get(p, "") for p in _PUT_HEADERS))):
            return dict(self._client.put_object(**params))
        headers = {header: str(params[name]) for name, header in _PUT_HEADERS.items()
                   if params.get(name) is not None}
        headers.update({f"x-amz-meta-{key.lower()}": str(value)
                        for key, value in metadata.items()})
        return self._object_call("PutObject", "PUT", {"Bucket": params["Bucket"],
                                                       "Key": params["Key"]},
                                 headers=headers, body=body)

    def delete_object(self, **params: Any) -> dict[str, Any]:
        return self._object_call("DeleteObject", "DELETE", params)

    def list_object_versions(self, **params: Any) -> dict[str, Any]:
        if set(params) - {"Bucket", "Prefix"}:
            return dict(self._client.list_object_versions(**params))
        path = f"{self.connection.path}/{_encode(params['Bucket'])}"
        query = f"prefix={_encode(params.get('Prefix', ''))}&versions="
        answer = self._send("ListObjectVersions", "GET", path, query, {}, b"")
        return self._versions(answer)

    # ---- how they are sent and read ----------------------------------------------

    def _object_call(self, operation: str, method: str, params: dict[str, Any], *,
                     headers: dict[str, str] | None = None, body: bytes = b"",
                     stream: bool = False) -> dict[str, Any]:
        named = _HEADERS_BY_METHOD.get(method, {})
        if headers is None:  # a call whose every parameter this client knows, or botocore's
            if set(params) - {"Bucket", "Key", "VersionId", *named}:
                return dict(getattr(self._client, _python_name(operation))(**params))
            headers = {header: str(params[name]) for name, header in named.items()
                       if params.get(name) is not None}
        bucket, key = params["Bucket"], params["Key"]
        path = f"{self.connection.path}/{_encode(bucket)}/{quote(key, safe='/-_.~')}"
        query = f"versionId={_encode(params['VersionId'])}" if params.get("VersionId") else ""
        answer = self._send(operation, method, path, query, headers, body, stream=stream)
        return self._object_facts(answer, stream)

    def _send(self, operation: str, method: str, path: str, query: str,
              headers: dict[str, str], body: bytes, *, stream: bool = False) -> Answer:
        payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        signed = {**headers, "x-amz-content-sha256": payload_hash}

        def attempt(number: int) -> Answer:
            answer = self.connection.send(operation, method, path, signed, body, query=query,
                                          payload_hash=payload_hash, stream=stream)
            if answer.status >= 300:
                data = answer.data
                if answer.stream is not None:
                    data = answer.stream.read()
                    answer.stream.release_conn()
                raise self._error(operation, answer.status, answer.headers, data, number)
            return answer

        return with_retries(attempt)

    def _error(self, operation: str, status: int, headers: Any, data: bytes,
               attempt: int) -> Exception:
        """botocore's ClientError for a refusal (Retryable when worth another attempt):
        the code from the error document, or the status when there is none (HEAD)."""
        code, message = str(status), ""
        if data:
            try:
                document = ElementTree.fromstring(data)
                fields = {_local(child.tag): child.text or "" for child in document}
                code, message = fields.get("Code") or code, fields.get("Message", "")
            except ElementTree.ParseError:
                pass
        response: Any = {"Error": {"Code": code, "Message": message},
                          "ResponseMetadata": response_metadata(status, headers, attempt)}
        error = ClientError(response, operation)
        return Retryable(error) if retryable(code, status) else error

    def _object_facts(self, answer: Answer, stream: bool) -> dict[str, Any]:
        """The headers of an object's answer, under botocore's names and types."""
        headers = answer.headers
        facts: dict[str, Any] = {"ResponseMetadata": response_metadata(answer.status, headers, 0)}
        for header, name in (("etag", "ETag"), ("content-type", "ContentType"),
                             ("content-range", "ContentRange"),
                             ("x-amz-version-id", "VersionId"),
                             ("cache-control", "CacheControl"),
                             ("content-disposition", "ContentDisposition"),
                             ("content-encoding", "ContentEncoding"),
                             ("content-language", "ContentLanguage"),
                             ("accept-ranges", "AcceptRanges")):
            if (value := headers.get(header)) is not None:
                facts[name] = value
        if (length := headers.get("content-length")) is not None:
            facts["ContentLength"] = int(length)
        if (modified := _header_date(headers.get("last-modified"))) is not None:
            facts["LastModified"] = modified
        if headers.get("x-amz-delete-marker") is not None:
            facts["DeleteMarker"] = headers["x-amz-delete-marker"] == "true"
        facts["Metadata"] = {name[len("x-amz-meta-"):]: value
                             for name, value in ((n.lower(), v) for n, v in headers.items())
                             if name.startswith("x-amz-meta-")}
        if stream:
            reply = answer.stream if answer.stream is not None else _Held(answer.data)
            facts["Body"] = StreamingBody(reply, self.connection.host)
        return facts

    def _versions(self, answer: Answer) -> dict[str, Any]:
        document = ElementTree.fromstring(answer.data)
        versions: list[dict[str, Any]] = []
        markers: list[dict[str, Any]] = []
        result: dict[str, Any] = {"ResponseMetadata": response_metadata(answer.status,
                                                                answer.headers, 0)}
        for child in document:
            name = _local(child.tag)
            if name in ("Version", "DeleteMarker"):
                entry: dict[str, Any] = {_local(field.tag): field.text or "" for field in child
                                         if _local(field.tag) != "Owner"}
                entry["IsLatest"] = entry.get("IsLatest") == "true"
                if "LastModified" in entry:
                    entry["LastModified"] = _xml_date(entry["LastModified"])
                if "Size" in entry:
                    entry["Size"] = int(entry["Size"])
                (versions if name == "Version" else markers).append(entry)
            elif name == "IsTruncated":
                result[name] = child.text == "true"
            elif name in ("Name", "Prefix", "KeyMarker", "VersionIdMarker",
                          "NextKeyMarker", "NextVersionIdMarker"):
                result[name] = child.text or ""
        if versions:
            result["Versions"] = versions
        if markers:
            result["DeleteMarkers"] = markers
        return result


def _python_name(operation: str) -> str:
    """GetObject -> get_object: the boto3 method of an operation."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


