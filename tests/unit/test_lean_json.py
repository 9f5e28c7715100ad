"""The hot path's DynamoDB and SQS clients answer as botocore does: over a real HTTP
server that plays DynamoDB (results, error codes and cancellation reasons, retries of
throttling, 5xx and cut connections and not of refusals, one kept-alive connection),
and against the emulated queue beside botocore (messages, and the same error codes)."""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from broker.aws.clients import AwsClients
from broker.aws.lean_json import LeanDynamoDB, LeanSqs

OK = (200, {"Item": {"id": {"S": "up_1"}, "size": {"N": "12"}}})
THROTTLED = (400, {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                   "message": "Rate exceeded"})
UNAVAILABLE = (503, {"__type": "com.amazonaws.dynamodb.v20120810#ServiceUnavailable"})
CONDITION = (400, {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                   "message": "The conditional request failed"})
CANCELLED = (400, {"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                   "Message": "Transaction cancelled",
                   "CancellationReasons": [{"Code": "None"},
                                           {"Code": "ConditionalCheckFailed"}]})
CUT = (0, {})  # the connection is closed without an answer
BAD_CRC = (-200, OK[1])  # an answer whose checksum does not match its body


class Script(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.requests: list[dict[str, Any]] = []
        self.connections = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # headers and body in one segment: no delayed-ACK stalls
    server: Script

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append({"target": self.headers["X-Amz-Target"],
                                     "authorization": self.headers["Authorization"],
                                     "body": json.loads(body)})
        status, answer = self.server.answers.pop(0) if self.server.answers else OK
        if status == 0:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        data = json.dumps(answer).encode()
        crc = zlib.crc32(data) + (1 if status < 0 else 0)
        self.send_response(abs(status))
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amz-crc32", str(crc))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def script() -> Iterator[Script]:
    server = Script()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def lean(script: Script) -> Iterator[LeanDynamoDB]:
    port = script.server_address[1]
    client = LeanDynamoDB(boto3.client("dynamodb", region_name="us-east-1",
                                       endpoint_url=f"http://127.0.0.1:{port}"))
    yield client
    client.close()


def test_a_call_sends_boto3s_parameters_and_returns_the_answer(
        lean: LeanDynamoDB, script: Script) -> None:
    reply = lean.get_item(TableName="uploads", Key={"id": {"S": "up_1"}}, ConsistentRead=True)
    assert reply["Item"] == OK[1]["Item"]
    assert reply["ResponseMetadata"]["HTTPStatusCode"] == 200
    sent = script.requests[0]
    assert sent["target"] == "DynamoDB_20120810.GetItem"
    assert sent["body"] == {"TableName": "uploads", "Key": {"id": {"S": "up_1"}},
                            "ConsistentRead": True}
    assert sent["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")


def test_calls_share_one_kept_alive_connection(lean: LeanDynamoDB, script: Script) -> None:
    for _ in range(20):
        lean.get_item(TableName="uploads", Key={"id": {"S": "up_1"}})
    assert script.connections == 1


@pytest.mark.parametrize("fault", [THROTTLED, UNAVAILABLE, CUT, BAD_CRC],
                         ids=["throttled", "503", "cut", "damaged"])
def test_passing_faults_are_retried(lean: LeanDynamoDB, script: Script,
                                    fault: tuple[int, dict[str, Any]]) -> None:
    script.answers = [fault, fault]
    assert lean.get_item(TableName="uploads", Key={"id": {"S": "up_1"}})["Item"]
    assert len(script.requests) == 3


def test_a_lasting_fault_ends_in_botocores_error(lean: LeanDynamoDB, script: Script) -> None:
    script.answers = [UNAVAILABLE] * 4
    with pytest.raises(ClientError) as raised:
        lean.get_item(TableName="uploads", Key={"id": {"S": "up_1"}})
    assert raised.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    script.answers = [CUT] * 4
    with pytest.raises(ConnectionClosedError):
        lean.get_item(TableName="uploads", Key={"id": {"S": "up_1"}})


def test_refusals_are_not_retried_and_keep_their_code(lean: LeanDynamoDB,
                                                      script: Script) -> None:
    script.answers = [CONDITION]
    with pytest.raises(ClientError) as raised:
        lean.put_item(TableName="uploads", Item={"id": {"S": "up_1"}})
    assert raised.value.response["Error"] == {"Code": "ConditionalCheckFailedException",
                                              "Message": "The conditional request failed"}
    script.answers = [CANCELLED]
    with pytest.raises(ClientError) as raised:
        lean.transact_write_items(TransactItems=[])
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert raised.value.response["CancellationReasons"] == CANCELLED[1]["CancellationReasons"]
    assert len(script.requests) == 2


def test_no_store_listening_is_a_connection_error() -> None:
    lean = LeanDynamoDB(boto3.client("dynamodb", region_name="us-east-1",
                                     endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(EndpointConnectionError):
        lean.get_item(TableName="uploads", Key={"id": {"S": "up_1"}})


def test_an_unknown_operation_is_an_attribute_error(lean: LeanDynamoDB) -> None:
    with pytest.raises(AttributeError):
        lean.no_such_operation  # noqa: B018 - the lookup is what is tested


def test_the_queue_calls_answer_as_botocores(aws: AwsClients, queue_url: str) -> None:
    lean = LeanSqs(aws.sqs)
    for old in aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0).get("Messages", []):
        aws.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=old["ReceiptHandle"])
    for body in ("one", "two", "three"):
        aws.sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    received = lean.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                    WaitTimeSeconds=0, VisibilityTimeout=30)["Messages"]
    assert sorted(m["Body"] for m in received) == ["one", "three", "two"]
    lean.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
        {"Id": "0", "ReceiptHandle": received[0]["ReceiptHandle"], "VisibilityTimeout": 0}])
    for message in received[1:]:
        lean.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    left = aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                   WaitTimeSeconds=0).get("Messages", [])
    assert [m["Body"] for m in left] == [received[0]["Body"]]  # handed back, not deleted


@pytest.mark.parametrize("call", ["missing queue", "bad receipt"])
def test_queue_errors_keep_botocores_codes(aws: AwsClients, queue_url: str,
                                           call: str) -> None:
    params: dict[str, Any] = {"QueueUrl": queue_url, "ReceiptHandle": "not-a-receipt"}
    if call == "missing queue":
        params["QueueUrl"] = queue_url.rsplit("/", 1)[0] + "/no-such-queue"
    codes = []
    for client in (aws.sqs, LeanSqs(aws.sqs)):
        with pytest.raises(ClientError) as raised:
            client.delete_message(**params)
        codes.append(raised.value.response["Error"]["Code"])
    assert codes[0] == codes[1], codes
