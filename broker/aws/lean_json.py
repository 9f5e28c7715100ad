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
import zlib
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError, ConnectionClosedError

from broker.aws.lean_http import (
    LeanConnection,
    Retryable,
    response_metadata,
    retryable,
    with_retries,
)

CONTENT_TYPE = "application/x-amz-json-1.0"


class LeanJsonClient:
    """A boto3 client's interface (`client.get_item(TableName=…, Key=…)`), its calls
    sent as the service's JSON protocol."""

    target_prefix = ""  # X-Amz-Target: the prefix, then the operation's name

    def __init__(self, client: Any) -> None:
        """Takes the boto3 client's endpoint, region, credentials, timeouts, event
        handlers and operation names."""
        self.connection = LeanConnection(client)
        self._path = self.connection.path or "/"
        self._operations: dict[str, str] = dict(client.meta.method_to_api_mapping)

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        operations = self.__dict__.get("_operations", {})
        if name not in operations:
            raise AttributeError(name)
        operation = operations[name]
        return lambda **params: self.call(operation, params)

    def close(self) -> None:
        self.connection.close()

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One operation, retried on throttling, 5xx and broken connections."""
        body = json.dumps(params, separators=(",", ":")).encode()
        headers = {"content-type": CONTENT_TYPE, "x-amz-target": self.target_prefix + operation}

        def attempt(number: int) -> dict[str, Any]:
            answer = self.connection.send(operation, "POST", self._path, headers, body)
            return self._answer(operation, answer.status, answer.headers, answer.data, number)

        return with_retries(attempt)

    def _answer(self, operation: str, status: int, headers: Any, data: bytes,
                attempt: int) -> dict[str, Any]:
        expected = headers.get("x-amz-crc32")
        if expected is not None and int(expected) != zlib.crc32(data):
            raise Retryable(ConnectionClosedError(  # damaged on the way
                endpoint_url=self.connection.url(self._path)))
        try:
            parsed: dict[str, Any] = json.loads(data) if data else {}
        except ValueError:
            parsed = {}
        metadata = response_metadata(status, headers, attempt)
        if status < 300:
            parsed["ResponseMetadata"] = metadata
            return parsed
        code = self._error_code(parsed, headers) or str(status)
        message = str(parsed.pop("message", parsed.pop("Message", "")))
        response: Any = {**parsed, "Error": {"Code": code, "Message": message},
                         "ResponseMetadata": metadata}
        error = ClientError(response, operation)
        if retryable(code, status):
            raise Retryable(error)
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
