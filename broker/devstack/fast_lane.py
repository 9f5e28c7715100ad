"""The verdict's frequent emulator requests, answered from moto's own stores without
Flask and moto's per-request set-up.

Each upload asks the emulator the same seven things in a few fixed shapes: store the
browser's form upload, then, for the validator, read a range of the object, list its
key's versions, write the served copy, delete the judged version, receive the queue's
event and delete it. moto spent about 0.9 ms of CPU on each, mostly building its
request and response objects around a store operation a tenth of that. A request of
exactly one of these shapes is answered here by the store operations moto runs for
it, with the answer moto gives (moto checks no POST policy, and neither does this).
Every other request, and any request the store would refuse, goes to moto, which
answers it as before: an error is always moto's own.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

App = Callable[[dict[str, Any], Any], Iterable[bytes]]
Answer = tuple[int, list[tuple[str, str]], bytes]  # status, headers, body

_CREDENTIAL = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/")
_OBJECT_PATH = re.compile(r"/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/([A-Za-z0-9_.=/-]{1,1024})")
_BUCKET_PATH = re.compile(r"/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/?")
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
# Headers every SDK call carries; a request with any other header not named by its
# shape goes to moto.
_COMMON = frozenset({"host", "authorization", "x-amz-date", "x-amz-content-sha256",
                     "x-amz-security-token", "user-agent", "accept", "accept-encoding",
                     "connection", "content-length", "content-type", "amz-sdk-invocation-id",
                     "amz-sdk-request", "x-amz-target", "x-amzn-query-mode"})
_PUT_HEADERS = frozenset({"cache-control", "content-disposition"})
_STATUS = {200: "200 OK", 201: "201 CREATED", 204: "204 No Content",
           206: "206 Partial Content"}
_SQS_JSON = "application/x-amz-json-1.0"
_MAX_VISIBILITY = 43200
# The type moto's Flask app gives an answer without one (it also allows every origin).
_FLASKS_TYPE = "text/html; charset=utf-8"
# A browser's form upload: what moto reads of it, and the fields that change its answer.
_FORM_STATUSES = {"200": 200, "201": 201, "204": 204}
_FORM_REFERRED = ("file", "success_action_redirect", "acl")
_OWNER = ("<Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID>"
          "<DisplayName>webfile</DisplayName></Owner>")


_REQUEST_PREFIX = os.urandom(4).hex().upper()
_REQUEST_NUMBERS = itertools.count(1)


def _request_id() -> str:
    """Unique within this emulator's life, without the system call a random id takes."""
    return f"{_REQUEST_PREFIX}{next(_REQUEST_NUMBERS):012X}"


class _Refer(Exception):
    """This request is moto's to answer."""


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    account: str
    region: str
    service: str


class FastLane:
    """WSGI: the frequent request shapes answered here, everything else by `moto`."""

    def __init__(self, moto: App) -> None:
        from moto import settings
        from moto.s3.models import s3_backends
        from moto.sqs.models import sqs_backends

        self._moto = moto
        self._settings = settings
        self._s3 = s3_backends
        self._sqs = sqs_backends
        # moto told to check IAM policies (it never does by default): every request is
        # moto's, which checks them.
        self._open = math.isinf(settings.INITIAL_NO_AUTH_ACTION_COUNT)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not self._open:
            return self._moto(environ, start_response)
        try:
            status, headers, body = self._answer(environ)
        except _Refer:
            return self._moto(environ, start_response)
        names = {name.lower() for name, _ in headers}
        origin = environ.get("HTTP_ORIGIN")
        start_response(_STATUS[status], [
            *(pair for pair in headers if pair[0].lower() != "content-length"),
            *([] if "content-type" in names else [("Content-Type", _FLASKS_TYPE)]),
            *([] if status == 204 else [("Content-Length", str(len(body)))]),
            ("x-amz-request-id", _request_id()),
            *([("Access-Control-Allow-Origin", origin), ("Vary", "Origin")] if origin
              else [("Access-Control-Allow-Origin", "*")])])
        return [body]

    def _answer(self, environ: dict[str, Any]) -> Answer:
        if environ["REQUEST_METHOD"] == "POST" and "HTTP_AUTHORIZATION" not in environ \
                and environ.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
            return self._browser_post(environ)
        request = _parse(environ)
        if request.service == "sqs" and request.method == "POST" and request.path == "/":
            return self._queue_call(environ, request)
        if request.service != "s3" or "x-amz-target" in request.headers:
            raise _Refer
        if request.method == "GET" and (bucket := _BUCKET_PATH.fullmatch(request.path)):
            return self._list_versions(request, bucket.group(1))
        found = _OBJECT_PATH.fullmatch(request.path)
        if found is None:
            raise _Refer
        bucket_name, key_name = found.groups()
        if request.method == "GET":
            return self._get(request, bucket_name, key_name)
        if request.method == "PUT":
            return self._put(environ, request, bucket_name, key_name)
        if request.method == "DELETE":
            return self._delete(request, bucket_name, key_name)
        raise _Refer

    # S3

    def _bucket(self, account: str, name: str) -> tuple[Any, Any]:
        backend = self._s3[account]["aws"]
        try:
            bucket = backend.get_bucket(name)
        except Exception as missing:  # moto names it in its own words
            raise _Refer from missing
        if not _bucket_is_plain(bucket):
            raise _Refer  # a table bucket, say: moto's rules
        return backend, bucket

    def _get(self, request: _Request, bucket_name: str, key_name: str) -> Answer:
        _only(request, {"range"}, (), ("versionId",))
        backend, _ = self._bucket(request.account, bucket_name)
        version_id = _one(request.query, "versionId")
        key = backend.get_object(bucket_name, key_name, version_id=version_id)
        if key is None or key.storage_class != "STANDARD" or key.multipart is not None:
            raise _Refer
        headers = {"x-amz-version-id": key.version_id} if key.version_id != "null" else {}
        headers.update(key.response_dict)
        headers.update(key.metadata)
        headers["Accept-Ranges"] = "bytes"
        value: bytes = key.value
        wanted = request.headers.get("range")
        if wanted is None:
            return 200, _pairs(headers), value
        span = _RANGE.fullmatch(wanted)
        if span is None or int(span.group(1)) >= len(value):
            raise _Refer  # moto's own reading of suffixes, lists and the unsatisfiable
        first, last = int(span.group(1)), len(value) - 1
        if span.group(2):
            last = min(int(span.group(2)), last)
        if first > last:
            raise _Refer
        headers["content-range"] = f"bytes {first}-{last}/{len(value)}"
        headers["content-length"] = str(last - first + 1)
        return 206, _pairs(headers), value[first:last + 1]

    def _put(self, environ: dict[str, Any], request: _Request, bucket_name: str,
             key_name: str) -> Answer:
        from moto.s3.utils import metadata_from_headers

        _only(request, _PUT_HEADERS, ("x-amz-meta-",), ())
        if request.headers.get("x-amz-content-sha256", "").startswith("STREAMING-"):
            raise _Refer
        backend, bucket = self._bucket(request.account, bucket_name)
        if bucket.object_lock_enabled:
            raise _Refer
        body = _body(environ)
        new_key = backend.put_object(bucket_name, key_name, body, storage="STANDARD",
                                     encryption=None, kms_key_id=None,
                                     bucket_key_enabled=None, lock_mode=None,
                                     lock_legal_status=None, lock_until=None,
                                     checksum_value=None)
        new_key.set_metadata(metadata_from_headers(_as_werkzeug_names(environ)))
        new_key.set_acl(bucket.acl)
        new_key.website_redirect_location = None
        backend.put_object_tagging(new_key, {})
        headers = dict(new_key.response_dict)
        headers.pop("content-length", None)
        return 200, _pairs(headers), b""

    def _delete(self, request: _Request, bucket_name: str, key_name: str) -> Answer:
        _only(request, set(), (), ("versionId",))
        version_id = _one(request.query, "versionId")
        backend, bucket = self._bucket(request.account, bucket_name)
        stored = bucket.keys.getlist(key_name, [])
        # moto refuses a locked version, and tells a delete marker's removal apart:
        # those, and a version not there, are moto's to answer.
        chosen = [key for key in stored if str(key.version_id) == str(version_id)]
        if not bucket.is_versioned or version_id is None \
                or len(chosen) != 1 or type(chosen[0]).__name__ != "FakeKey" \
                or chosen[0].is_locked(governance_bypass=False):
            raise _Refer
        _, meta = backend.delete_object(bucket_name, key_name, version_id=version_id,
                                        bypass=None)
        return 204, [(f"x-amz-{name}", str(value)) for name, value in meta.items()], b""

    def _list_versions(self, request: _Request, bucket_name: str) -> Answer:
        _only(request, set(), (), ("versions", "prefix"))
        if "versions" not in request.query or "prefix" not in request.query:
            raise _Refer
        backend, bucket = self._bucket(request.account, bucket_name)
        prefix = _one(request.query, "prefix") or ""
        max_keys = self._settings.get_s3_default_max_keys()
        versions, _, markers, next_marker, _ = backend.list_object_versions(
            bucket_name, delimiter=None, key_marker=None, max_keys=max_keys,
            prefix=prefix, version_id_marker=None)
        if next_marker is not None:
            raise _Refer  # moto pages a long listing
        entries = [_listed("Version", v, f"<ETag>{escape(v.etag)}</ETag><Size>{v.size}</Size>"
                                         f"<StorageClass>{escape(v.storage_class)}</StorageClass>")
                   for v in versions] + [_listed("DeleteMarker", m, "") for m in markers]
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<ListVersionsResult '
                'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<Name>{escape(bucket.name)}</Name><Prefix>{escape(prefix)}</Prefix>"
                f"<KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker>"
                f"<MaxKeys>{max_keys}</MaxKeys><IsTruncated>false</IsTruncated>"
                f"{''.join(entries)}</ListVersionsResult>")
        return 200, [("Content-Type", "application/xml")], body.encode()

    def _browser_post(self, environ: dict[str, Any]) -> Answer:
        """A browser's form upload to a bucket (a presigned POST): moto checks none of
        its policy, as here; the file part's bytes stored, the form's headers set."""
        from moto.s3.utils import metadata_from_headers
        from werkzeug.formparser import parse_form_data
        from werkzeug.wrappers import Request

        path = _plain_path(environ)
        bucket_path = _BUCKET_PATH.fullmatch(path)
        if bucket_path is None or environ.get("QUERY_STRING") \
                or not environ.get("CONTENT_LENGTH") or "HTTP_CONTENT_ENCODING" in environ \
                or "HTTP_X_MOTO_ACCOUNT_ID" in environ:
            raise _Refer
        body = _body(environ)
        parsing = {**environ, "wsgi.input": io.BytesIO(body)}
        try:  # within the limits moto's Flask request has
            _, form, files = parse_form_data(
                parsing, max_form_memory_size=Request.max_form_memory_size,
                max_form_parts=Request.max_form_parts)
        except Exception as unparsed:
            raise _Refer from unparsed
        try:
            status = _FORM_STATUSES.get(form.get("success_action_status", "204"))
            if list(files) != ["file"] or len(files.getlist("file")) != 1 \
                    or not form.get("key") or status is None \
                    or any(name in form for name in _FORM_REFERRED):
                raise _Refer
            upload = files["file"]
            key = form["key"].replace("${filename}", os.path.basename(upload.filename or ""))
            if len(key.encode()) > 1024:
                raise _Refer
            signed_by = form.get("AWSAccessKeyId") or "AKIAEXAMPLE"  # moto's, unsigned
            backend, _ = self._bucket(_account(signed_by), bucket_path.group(1))
            new_key = backend.put_object(bucket_path.group(1), key, upload.stream.read(),
                                         request_method="POST")
            new_key.set_metadata(metadata_from_headers(form))
        finally:
            for _, part in files.items(multi=True):
                part.close()
        return status, [], b""

    # SQS, in its JSON protocol

    def _queue_call(self, environ: dict[str, Any], request: _Request) -> Answer:
        target = request.headers.get("x-amz-target", "")
        if target not in ("AmazonSQS.ReceiveMessage", "AmazonSQS.DeleteMessage") \
                or not request.headers.get("content-type", "").startswith(_SQS_JSON) \
                or request.query:
            raise _Refer
        _only(request, set(), (), ())
        body = _body(environ)
        try:
            params = json.loads(body)
        except ValueError as unreadable:
            raise _Refer from unreadable
        if not isinstance(params, dict) or not isinstance(params.get("QueueUrl"), str):
            raise _Refer
        backend = self._sqs[request.account][request.region]
        queue_name = params["QueueUrl"].split("/")[-1]
        try:
            queue = backend.get_queue(queue_name)
        except Exception as missing:
            raise _Refer from missing
        if target == "AmazonSQS.DeleteMessage":
            return self._delete_message(backend, queue_name, params)
        return self._receive(backend, queue, queue_name, params)

    @staticmethod
    def _receive(backend: Any, queue: Any, queue_name: str, params: dict[str, Any]) -> Answer:
        if set(params) - {"QueueUrl", "MaxNumberOfMessages", "WaitTimeSeconds",
                          "VisibilityTimeout"}:
            raise _Refer  # attribute names and the rest: moto's
        count = params.get("MaxNumberOfMessages", 1)
        wait = params.get("WaitTimeSeconds", int(queue.receive_message_wait_time_seconds))
        visibility = params.get("VisibilityTimeout", queue.visibility_timeout)
        if not all(type(n) is int for n in (count, wait, visibility)) \
                or not (1 <= count <= 10 and 0 <= wait <= 20
                        and 0 <= visibility <= _MAX_VISIBILITY):
            raise _Refer
        messages = backend.receive_message(queue_name, count, wait, visibility, [])
        answer = {"Messages": [{"MessageId": m.id, "ReceiptHandle": m.receipt_handle,
                                "MD5OfBody": m.body_md5, "Body": m.body}
                               for m in messages]} if messages else {}
        return 200, [("Content-Type", _SQS_JSON)], json.dumps(answer).encode()

    @staticmethod
    def _delete_message(backend: Any, queue_name: str, params: dict[str, Any]) -> Answer:
        receipt = params.get("ReceiptHandle")
        if set(params) != {"QueueUrl", "ReceiptHandle"} or not isinstance(receipt, str):
            raise _Refer
        try:
            backend.delete_message(queue_name, receipt)
        except Exception as refused:  # refused before anything changed: moto says why
            raise _Refer from refused
        return 200, [("Content-Type", _SQS_JSON)], b"{}"


def _parse(environ: dict[str, Any]) -> _Request:
    headers = {name[5:].replace("_", "-").lower(): value
               for name, value in environ.items() if name.startswith("HTTP_")}
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            headers[name.replace("_", "-").lower()] = environ[name]
    credential = _CREDENTIAL.match(headers.get("authorization", ""))
    path = _plain_path(environ)
    if credential is None or "x-moto-account-id" in headers or "origin" in headers:
        raise _Refer  # CORS and other accounts: moto's
    access_key, region, service = credential.groups()
    return _Request(environ["REQUEST_METHOD"], path,
                    parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
                    headers, _account(access_key), region, service)


def _plain_path(environ: dict[str, Any]) -> str:
    """The request's path, as sent: one that was percent-encoded is moto's to decode."""
    path: str = environ.get("PATH_INFO", "")
    if environ.get("REQUEST_URI", "").split("?")[0] != path:
        raise _Refer
    return path


def _account(access_key: str) -> str:
    """The account moto would answer for (its own choice, in its order)."""
    from moto.iam.models import get_account_id_from

    return os.environ.get("MOTO_ACCOUNT_ID") or get_account_id_from(access_key)


def _only(request: _Request, headers: set[str] | frozenset[str], prefixes: tuple[str, ...],
          query: tuple[str, ...]) -> None:
    """Refer a request with a header or query parameter its shape does not name."""
    for name in request.headers:
        if name not in _COMMON and name not in headers and not name.startswith(prefixes):
            raise _Refer
    if any(name not in query or len(values) != 1 for name, values in request.query.items()):
        raise _Refer


def _one(query: dict[str, list[str]], name: str) -> str | None:
    return query[name][0] if name in query else None


def _body(environ: dict[str, Any]) -> bytes:
    """The request's body, put back for moto should the request be referred after all."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _as_werkzeug_names(environ: dict[str, Any]) -> dict[str, str]:
    """The request's headers under the names moto reads them by (werkzeug's)."""
    from werkzeug.datastructures import EnvironHeaders

    return dict(EnvironHeaders(environ).items())


def _bucket_is_plain(bucket: Any) -> bool:
    return type(bucket).__name__ == "FakeBucket"


def _pairs(headers: dict[str, Any]) -> list[tuple[str, str]]:
    return [(name, str(value)) for name, value in headers.items()]


def _listed(tag: str, entry: Any, details: str) -> str:
    """One version or delete marker of a version listing, as moto writes it."""
    latest = "true" if getattr(entry, "is_latest", False) else "false"
    return (f"<{tag}><Key>{escape(entry.name)}</Key>"
            f"<VersionId>{escape(str(entry.version_id or 'null'))}</VersionId>"
            f"<IsLatest>{latest}</IsLatest><LastModified>{entry.last_modified_ISO8601}"
            f"</LastModified>{details}{_OWNER}</{tag}>")
