"""What the lean clients share: a boto3 client's endpoint, region, credentials and
timeouts; kept-alive urllib3 connections; botocore's retries and botocore's errors.

A lean call lets botocore's `before-send` handlers (moto's mock, stubs) answer first,
as botocore does, so the same tests and mocks serve both.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import urllib3
from botocore.awsrequest import AWSPreparedRequest
from botocore.compat import HTTPHeaders
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.httpsession import get_cert_path

from broker.aws.clients import credentials_of
from broker.aws.sigv4 import Signer

ATTEMPTS = 4  # as the boto3 clients are configured
# What botocore's standard retry mode treats as worth another attempt, in any service.
RETRYABLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "RequestTimeout",
    "RequestTimeoutException", "PriorRequestNotComplete", "InternalServerError",
    "InternalError", "ServiceUnavailable",
})
RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
T = TypeVar("T")


class Retryable(Exception):
    """A failure worth another attempt; `error` is what the caller sees after the last."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class Answer:
    """A reply: its body read whole, or (`stream`) left to read from the connection."""

    status: int
    headers: Any
    data: bytes = b""
    stream: Any = None


def with_retries(attempt: Callable[[int], T]) -> T:
    """`attempt(n)` until it does not raise Retryable, at most ATTEMPTS times."""
    for number in range(ATTEMPTS):
        try:
            return attempt(number)
        except Retryable as failed:
            if number == ATTEMPTS - 1:
                raise failed.error from None
            # Full jitter, so callers refused together do not retry together.
            time.sleep(random.uniform(0, min(0.05 * 2 ** number, 1.0)))  # noqa: S311
    raise AssertionError("unreachable")  # pragma: no cover


def retryable(code: str, status: int) -> bool:
    return code in RETRYABLE_CODES or status in RETRYABLE_STATUS


def response_metadata(status: int, headers: Any, attempt: int) -> dict[str, Any]:
    """An answer's `ResponseMetadata`, as botocore gives it."""
    return {"HTTPStatusCode": status,
            "HTTPHeaders": {name.lower(): value for name, value in headers.items()},
            "RetryAttempts": attempt}


def _http_headers(headers: dict[str, str]) -> HTTPHeaders:
    message = HTTPHeaders()
    for name, value in headers.items():
        message[name] = value
    return message


class LeanConnection:
    """Signed requests to one boto3 client's endpoint, as that client would send them."""

    def __init__(self, client: Any) -> None:
        meta = client.meta
        parts = urlsplit(meta.endpoint_url)
        self.scheme = parts.scheme
        self.host = parts.netloc
        self.path = parts.path.rstrip("/")  # an endpoint may sit under a path
        self.service = meta.service_model.service_id.hyphenize()
        self.signer = Signer(credentials_of(client), meta.region_name,
                             meta.service_model.signing_name)
        self.events = meta.events
        config = meta.config
        self.pool = urllib3.PoolManager(
            maxsize=max(config.max_pool_connections, 32), retries=False,
            timeout=urllib3.Timeout(connect=config.connect_timeout, read=config.read_timeout),
            ca_certs=get_cert_path(True) if parts.scheme == "https" else None)

    def url(self, path: str, query: str = "") -> str:
        return f"{self.scheme}://{self.host}{path}" + (f"?{query}" if query else "")

    def send(self, operation: str, method: str, path: str, headers: dict[str, str],
             body: bytes = b"", *, query: str = "", payload_hash: str | None = None,
             stream: bool = False) -> Answer:
        """One signed request; `path` and `query` in canonical form. A broken or refused
        connection is Retryable, as botocore's connection errors."""
        signed = self.signer.sign_headers(method, self.host, path, headers, body,
                                          query=query, payload_hash=payload_hash)
        url = self.url(path, query)
        request = AWSPreparedRequest(method, url, _http_headers(signed), body,
                                     stream_output=stream)
        _, mocked = self.events.emit_until_response(f"before-send.{self.service}.{operation}",
                                                    request=request)
        if mocked is not None:
            return Answer(mocked.status_code, mocked.headers, mocked.content)
        try:
            reply = self.pool.request(method, url, body=body or None, headers=signed,
                                      preload_content=not stream, redirect=False)
        except urllib3.exceptions.NewConnectionError as exc:
            raise Retryable(EndpointConnectionError(endpoint_url=url, error=exc)) from exc
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise Retryable(ReadTimeoutError(endpoint_url=url, error=exc)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Retryable(ConnectionClosedError(endpoint_url=url)) from exc
        if stream:
            return Answer(reply.status, reply.headers, stream=reply)
        return Answer(reply.status, reply.headers, reply.data)

    def close(self) -> None:
        self.pool.clear()
