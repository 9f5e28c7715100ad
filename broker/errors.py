"""The exceptions of the domain; the web layer maps each to one HTTP answer.

BrokerError
 ├── MalformedRequest    the body cannot be read as JSON (400)
 ├── NotAuthenticated    no usable credentials (401)
 ├── Forbidden           a cookie-authenticated change from a foreign origin (403)
 ├── NotFound            no such upload for this caller (404; also another owner's)
 ├── Conflict            the upload is not in a state that allows this (409)
 ├── UnsupportedMediaType  the body is not JSON (415)
 ├── InvalidRequest      the request breaks a rule a client can fix (422, with a reason code)
 ├── TooManyRequests     over a per-user limit; retry after `retry_after` seconds (429)
 └── StorageError        an outside service failed in a way we cannot fix here (503)
      └── RecordsUnavailable   the upload records' store, in particular
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from broker.reasons import REASONS


class BrokerError(Exception):
    """Base of every error the domain raises on purpose."""

    status = 500
    code = "internal_error"
    title = "Internal error"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra
        self.headers: dict[str, str] = {}


class InvalidRequest(BrokerError):
    status = 422
    code = "invalid_request"
    title = "The request cannot be accepted"

    def __init__(self, code: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or REASONS.get(code, code), code=code, **extra)


class NotAuthenticated(BrokerError):
    status = 401
    code = "not_authenticated"
    title = "Authentication required"


class NotFound(BrokerError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(BrokerError):
    status = 409
    code = "conflict"
    title = "Conflict"


class StorageError(BrokerError):
    status = 503
    code = "storage_unavailable"
    title = "Storage is unavailable"
    retry_after = 5  # seconds: outages of the stores are usually short
    service = "storage"  # which outside service failed, for metrics


@contextmanager
def probing(unavailable: type[StorageError]) -> Iterator[None]:
    """A readiness probe of an AWS-protocol store: a refusal that is a 4xx (no such key
    or table, access denied) means the store is up; a 5xx, or no answer, raises
    `unavailable`."""
    try:
        yield
    except ClientError as exc:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
        if status >= 500:
            raise unavailable(f"error: {exc}") from exc
    except BotoCoreError as exc:
        raise unavailable(f"unreachable: {exc}") from exc


class RecordsUnavailable(StorageError):
    service = "records"


class MalformedRequest(BrokerError):
    status = 400
    code = "malformed_request"
    title = "The request cannot be read"


class Forbidden(BrokerError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class UnsupportedMediaType(BrokerError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class TooManyRequests(BrokerError):
    status = 429
    code = "too_many_requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None) -> None:
        retry_after = max(1, retry_after)  # the header and the body say the same
        super().__init__(detail, code=code, retry_after=retry_after)
        self.headers["Retry-After"] = str(retry_after)
