"""The hot path's DynamoDB and SQS calls at a fraction of botocore's CPU per call.

Every upload costs one records write on the broker's hottest path, and a receive and a
delete of its event in the worker. A botocore call spends about a millisecond of CPU on
work these calls do not need (validating the request against the model, resolving the
endpoint's rules, dozens of event hooks, deriving a signing key); the JSON protocol
both services speak is a signed POST of the very parameters boto3 takes. These clients
speak it directly over kept-alive connections, with botocore's answers: the same result
dicts, `ClientError` with the same codes (and DynamoDB's cancellation reasons),
botocore's connection errors. Each is built from a boto3 client, whose endpoint,
region, credentials and timeouts it uses, and lets botocore's `before-send` handlers
(moto's mock, stubs) answer first, as botocore does.
"""

from __future__ import annotations

import json
import random
import time
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import urllib3
from botocore.awsrequest import AWSPreparedRequest
from botocore.compat import HTTPHeaders
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.httpsession import get_cert_path

from broker.aws.clients import credentials_of
from broker.aws.sigv4 import Signer

CONTENT_TYPE = "application/x-amz-json-1.0"
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


class _Retryable(Exception):
    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _http_headers(headers: dict[str, str]) -> HTTPHeaders:
    message = HTTPHeaders()
    for name, value in headers.items():
        message[name] = value
    return message


class LeanJsonClient:
    """A boto3 client's interface (`client.get_item(TableName=…, Key=…)`), its calls
    sent as the service's JSON protocol."""

    target_prefix = ""  # X-Amz-Target: the prefix, then the operation's name

    def __init__(self, client: Any) -> None:
        """Takes the boto3 client's endpoint, region, credentials, timeouts, event
        handlers and operation names."""
        meta = client.meta
        self.service = meta.service_model.service_id.hyphenize()
        signing_name = meta.service_model.signing_name
        parts = urlsplit(meta.endpoint_url)
        self.host = parts.netloc
        self.path = parts.path or "/"
        self.url = f"{parts.scheme}://{parts.netloc}{self.path}"
        self.signer = Signer(credentials_of(client), meta.region_name, signing_name)
        config = meta.config
        self.events = meta.events
        self.pool = urllib3.PoolManager(
            maxsize=max(config.max_pool_connections, 32), retries=False,
            timeout=urllib3.Timeout(connect=config.connect_timeout, read=config.read_timeout),
            ca_certs=get_cert_path(True) if parts.scheme == "https" else None)
        self._operations: dict[str, str] = dict(meta.method_to_api_mapping)

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        operations = self.__dict__.get("_operations", {})
        if name not in operations:
            raise AttributeError(name)
        operation = operations[name]
        return lambda **params: self.call(operation, params)

    def close(self) -> None:
        self.pool.clear()

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One operation, retried on throttling, 5xx and broken connections."""
        body = json.dumps(params, separators=(",", ":")).encode()
        for attempt in range(ATTEMPTS):
            try:
                status, headers, data = self._send(operation, body)
                return self._answer(operation, status, headers, data, attempt)
            except _Retryable as failed:
                if attempt == ATTEMPTS - 1:
                    raise failed.error from None
                # Full jitter, so callers refused together do not retry together.
                time.sleep(random.uniform(0, min(0.05 * 2 ** attempt, 1.0)))  # noqa: S311
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, operation: str, body: bytes) -> tuple[int, Any, bytes]:
        headers = self.signer.sign_headers(
            "POST", self.host, self.path,
            {"content-type": CONTENT_TYPE, "x-amz-target": self.target_prefix + operation}, body)
        request = AWSPreparedRequest("POST", self.url, _http_headers(headers), body,
                                     stream_output=False)
        _, mocked = self.events.emit_until_response(
            f"before-send.{self.service}.{operation}", request=request)
        if mocked is not None:
            return mocked.status_code, mocked.headers, mocked.content
        try:
            reply = self.pool.request("POST", self.url, body=body, headers=headers,
                                      preload_content=True, redirect=False)
        except urllib3.exceptions.NewConnectionError as exc:
            raise _Retryable(EndpointConnectionError(endpoint_url=self.url, error=exc)) from exc
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise _Retryable(ReadTimeoutError(endpoint_url=self.url, error=exc)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Retryable(ConnectionClosedError(endpoint_url=self.url)) from exc
        return reply.status, reply.headers, reply.data

    def _answer(self, operation: str, status: int, headers: Any, data: bytes,
                attempt: int) -> dict[str, Any]:
        expected = headers.get("x-amz-crc32")
        if expected is not None and int(expected) != zlib.crc32(data):
            raise _Retryable(ConnectionClosedError(endpoint_url=self.url))  # damaged on the way
        try:
            parsed: dict[str, Any] = json.loads(data) if data else {}
        except ValueError:
            parsed = {}
        metadata = {"HTTPStatusCode": status, "HTTPHeaders": dict(headers),
                    "RetryAttempts": attempt}
        if status < 300:
            parsed["ResponseMetadata"] = metadata
            return parsed
        code = self._error_code(parsed, headers) or str(status)
        message = str(parsed.pop("message", parsed.pop("Message", "")))
        response: Any = {**parsed, "Error": {"Code": code, "Message": message},
                         "ResponseMetadata": metadata}
        error = ClientError(response, operation)
        if code in RETRYABLE_CODES or status in RETRYABLE_STATUS:
            raise _Retryable(error)
        raise error

    def _error_code(self, parsed: dict[str, Any], headers: Any) -> str:
        return str(parsed.pop("__type", "") or headers.get("x-amzn-errortype", "")
                   ).rsplit("#", 1)[-1].split(":")[0]


class LeanDynamoDB(LeanJsonClient):
    """The records' DynamoDB calls."""

    target_prefix = "DynamoDB_20120810."


class LeanSqs(LeanJsonClient):
    """The worker's queue calls: receive, delete, change visibility."""

    target_prefix = "AmazonSQS."

    def _error_code(self, parsed: dict[str, Any], headers: Any) -> str:
        # SQS names its errors as its older query protocol did (botocore reads them so):
        # "AWS.SimpleQueueService.NonExistentQueue;Sender".
        legacy = str(headers.get("x-amzn-query-error", "")).split(";")[0]
        code = super()._error_code(parsed, headers)
        return legacy or code
