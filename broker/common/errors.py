"""The exceptions of the domain: each says what failed, none knows HTTP. The web edge
(`broker.web.problems`) maps each to one answer in one table.

BrokerError
 ├── MalformedRequest      the request cannot be read (not JSON)
 ├── UnsupportedMediaType  the request is not of a kind the call reads
 ├── NotAuthenticated      no usable credentials
 ├── Forbidden             a cookie-authenticated change from a foreign origin
 ├── NotFound              no such upload for this caller (another owner's included)
 ├── Conflict              the upload is not in a state that allows this
 ├── InvalidRequest        the request breaks a rule a client can fix (with a reason code)
 ├── TooManyRequests       over a per-user limit; retry after `retry_after` seconds
 └── StorageError          an outside service failed in a way we cannot fix here
      └── RecordsUnavailable   the upload records' store, in particular
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from broker.common.reasons import REASONS


class BrokerError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "internal_error"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra


class MalformedRequest(BrokerError):
    code = "malformed_request"


class UnsupportedMediaType(BrokerError):
    code = "unsupported_media_type"


class NotAuthenticated(BrokerError):
    code = "not_authenticated"


class Forbidden(BrokerError):
    code = "forbidden"


class NotFound(BrokerError):
    code = "not_found"


class Conflict(BrokerError):
    code = "conflict"


class InvalidRequest(BrokerError):
    code = "invalid_request"

    def __init__(self, code: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or REASONS.get(code, code), code=code, **extra)


class TooManyRequests(BrokerError):
    code = "too_many_requests"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None) -> None:
        retry_after = max(1, retry_after)  # whoever tells the client says at least 1 s
        super().__init__(detail, code=code, retry_after=retry_after)
        self.retry_after = retry_after


class StorageError(BrokerError):
    code = "storage_unavailable"
    retry_after = 5  # seconds: outages of the stores are usually short
    service = "storage"  # which outside service failed, for metrics


class RecordsUnavailable(StorageError):
    service = "records"


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
