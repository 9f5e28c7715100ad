"""The Lambda entry point and the worker share one batch path; one bad record fails alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from broker.aws.clients import AwsClients
from broker.runtimes.sqs_worker import poll_once
from broker.settings import Settings
from broker.validator.judge import Validator
from lambdas.validator import handler as lambda_handler
from tests.samples import HTML_AS_PNG, load_event, png_bytes, store_upload


@pytest.fixture
def handler(aws: AwsClients, settings: Settings, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[Any]:
    """The real Lambda handler, configured from the environment as on AWS."""
    monkeypatch.setenv("BROKER_PUBLIC_BASE_URL", settings.public_base_url or "")
    lambda_handler._parts.cache_clear()
    yield lambda_handler.handler
    lambda_handler._parts.cache_clear()


def notification_for(upload_id: str) -> str:
    event = load_event("s3_object_created.json")
    event["Records"][0]["s3"]["object"]["key"] = f"incoming%2F{upload_id}"
    return json.dumps(event)


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {"Records": [
        {"messageId": f"m{i}", "receiptHandle": f"r{i}", "body": body, "eventSource": "aws:sqs",
         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:uploads-events"}
        for i, body in enumerate(bodies)
    ]}


def status_of(app: Flask, upload_id: str) -> str:
    return str(app.extensions["broker"].uploads.get("alice", upload_id).status)


def test_a_batch_reports_only_its_bad_message_as_failed(app: Flask, aws: AwsClients,
                                                        handler: Any) -> None:
    good = store_upload(app, aws, png_bytes())
    spoofed = store_upload(app, aws, HTML_AS_PNG)
    test_event = json.dumps(load_event("s3_test_event.json"))
    reply = handler(sqs_event(notification_for(good), "{broken", test_event,
                              notification_for(spoofed)))
    assert reply == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert status_of(app, good) == "ready"
    assert status_of(app, spoofed) == "rejected"


def test_a_storage_failure_fails_only_that_message(app: Flask, aws: AwsClients, handler: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    upload_id = store_upload(app, aws, png_bytes())
    other = store_upload(app, aws, png_bytes())
    from broker.storage import Storage

    real_fetch = Storage.fetch

    def unavailable_for_first(self: Storage, bucket: str, key: str, *version: Any) -> Any:
        if key.endswith(upload_id):
            from broker.common.errors import StorageError
            raise StorageError("503 Slow Down")
        return real_fetch(self, bucket, key, *version)

    monkeypatch.setattr(Storage, "fetch", unavailable_for_first)
    reply = handler(sqs_event(notification_for(upload_id), notification_for(other)))
    assert reply == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert status_of(app, upload_id) == "pending"
    assert status_of(app, other) == "ready"


def test_a_direct_s3_event_is_processed(app: Flask, aws: AwsClients, handler: Any) -> None:
    upload_id = store_upload(app, aws, png_bytes())
    reply = handler(json.loads(notification_for(upload_id)))
    assert reply == {"outcomes": ["accepted"]}


def test_the_worker_drains_the_queue_the_bucket_notifies(
    app: Flask, aws: AwsClients, validator: Validator, queue_url: str
) -> None:
    upload_id = store_upload(app, aws, png_bytes())
    seen = 0
    for _ in range(5):  # the first message is the s3:TestEvent
        seen += poll_once(validator, aws.sqs, queue_url, wait_seconds=0)
    assert seen >= 1
    assert status_of(app, upload_id) == "ready"
    attrs = aws.sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                            "ApproximateNumberOfMessagesNotVisible"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_the_worker_leaves_a_failed_message_for_a_retry(
    aws: AwsClients, validator: Validator, queue_url: str
) -> None:
    aws.sqs.purge_queue(QueueUrl=queue_url)
    aws.sqs.send_message(QueueUrl=queue_url, MessageBody="{broken")
    assert poll_once(validator, aws.sqs, queue_url, wait_seconds=0) == 1
    attrs = aws.sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_provisioning_again_resets_a_queue_changed_by_hand(
        aws: AwsClients, settings: Any, queue_url: str) -> None:
    from broker.provision import provision_queue

    aws.sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "3"})
    assert provision_queue(aws, settings, "uploads-events") == queue_url
    attributes = aws.sqs.get_queue_attributes(QueueUrl=queue_url,
                                              AttributeNames=["VisibilityTimeout"])
    assert attributes["Attributes"]["VisibilityTimeout"] == "60"


class ShortOnTime:
    """A Lambda context whose remaining time halves after the first message."""

    def __init__(self) -> None:
        self.calls = 0

    def get_remaining_time_in_millis(self) -> int:
        self.calls += 1
        return 900_000 if self.calls <= 1 else 300_000


def test_a_batch_short_on_time_hands_back_what_it_did_not_start(
        app: Flask, aws: AwsClients, queue_url: str, handler: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_QUEUE_URL", queue_url)
    lambda_handler._parts.cache_clear()
    aws.sqs.purge_queue(QueueUrl=queue_url)
    uploads = [store_upload(app, aws, png_bytes()) for _ in range(3)]  # each notifies
    received = aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       VisibilityTimeout=600)["Messages"]
    assert len(received) == len(uploads)
    event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
                          "body": m["Body"], "eventSource": "aws:sqs"} for m in received]}
    reply = handler(event, ShortOnTime())
    handed_back = {f["itemIdentifier"] for f in reply["batchItemFailures"]}
    assert handed_back == {m["MessageId"] for m in received[1:]}
    assert sorted(status_of(app, u) for u in uploads) == ["pending", "pending", "ready"]
    # Visible again at once, not after the 600 s the receive asked for.
    again = aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert {m["MessageId"] for m in again} == handed_back
