"""The HTTP push receiver (Ceph RGW, MinIO): token required, same processing as SQS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.test import Client

from broker.aws.clients import AwsClients
from broker.compose import compose
from broker.runtimes.push_receiver import PushReceiver
from broker.settings import Settings
from broker.validator.judge import Validator
from tests.samples import HTML_AS_PNG, load_event, png_bytes, store_upload

TOKEN = "push-token-0123456789abcdef"


@pytest.fixture
def receiver(validator: Validator) -> Client:
    return Client(PushReceiver(validator, TOKEN))


def rgw_notification(upload_id: str) -> str:
    """An RGW push body: the S3 notification shape, key URL-encoded."""
    event = load_event("s3_object_created.json")
    event["Records"][0]["eventSource"] = "ceph:s3"
    event["Records"][0]["s3"]["object"]["key"] = f"incoming%2F{upload_id}"
    return json.dumps(event)


def status_of(app: Flask, upload_id: str) -> str:
    return str(app.extensions["broker"].uploads.get("alice", upload_id).status)


def test_a_pushed_notification_with_the_token_in_the_path_is_processed(
    app: Flask, aws: AwsClients, receiver: Client
) -> None:
    good = store_upload(app, aws, png_bytes())
    reply = receiver.post(f"/events/{TOKEN}", data=rgw_notification(good))
    assert reply.status_code == 200
    assert reply.json == {"outcomes": ["accepted"]}
    assert status_of(app, good) == "ready"


def test_a_bearer_token_works_too(app: Flask, aws: AwsClients, receiver: Client) -> None:
    spoofed = store_upload(app, aws, HTML_AS_PNG)
    reply = receiver.post("/events", data=rgw_notification(spoofed),
                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.json == {"outcomes": ["rejected"]}


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/events", {}), ("/events/wrong-token-0000000000", {}),
     ("/events", {"Authorization": "Bearer nope"}), (f"/events/{TOKEN[:-1]}", {})],
)
def test_anything_without_the_token_is_refused_and_changes_nothing(
    app: Flask, aws: AwsClients, receiver: Client, path: str, headers: dict[str, str]
) -> None:
    upload_id = store_upload(app, aws, png_bytes())
    reply = receiver.post(path, data=rgw_notification(upload_id), headers=headers)
    assert reply.status_code == 401
    assert status_of(app, upload_id) == "pending"


def test_the_test_event_and_garbage(receiver: Client) -> None:
    test_event = json.dumps(load_event("s3_test_event.json"))
    assert receiver.post(f"/events/{TOKEN}", data=test_event).json == {"outcomes": []}
    assert receiver.post(f"/events/{TOKEN}", data="{broken").status_code == 400
    assert receiver.post(f"/events/{TOKEN}", data='{"Records": 1}').status_code == 400
    assert receiver.post(f"/events/{TOKEN}", data=b"x" * (2 * 1024 * 1024)).status_code == 413
    assert receiver.get(f"/events/{TOKEN}").status_code == 405
    assert receiver.post("/elsewhere").status_code == 404


def test_a_storage_failure_asks_the_store_to_deliver_again(
    app: Flask, aws: AwsClients, settings: Settings, tmp_path: Path
) -> None:
    from broker.domain.inspection.scanner import ClamdScanner

    upload_id = store_upload(app, aws, png_bytes())
    down = compose(settings, aws, scanner=ClamdScanner(f"unix://{tmp_path}/none.sock")).validator
    reply = Client(PushReceiver(down, TOKEN)).post(f"/events/{TOKEN}",
                                                    data=rgw_notification(upload_id))
    assert reply.status_code == 503
    assert status_of(app, upload_id) == "processing"


def test_a_short_token_is_refused_at_start(validator: Validator) -> None:
    with pytest.raises(ValueError, match="at least 16"):
        PushReceiver(validator, "short")


def test_the_receiver_says_whether_it_is_ready_and_shows_its_metrics(
        validator: Validator, receiver: Client) -> None:
    ready = receiver.get("/readyz")
    assert ready.status_code == 200
    assert json.loads(ready.data)["checks"] == {"storage": "ok", "records": "ok"}
    assert b"broker_verdicts_total" in receiver.get("/metrics").data

    class Unreachable:
        def __getattr__(self, name: str) -> object:
            def fail(**kwargs: object) -> None:
                from botocore.exceptions import EndpointConnectionError

                raise EndpointConnectionError(endpoint_url="http://records.invalid")
            return fail

    validator.records.client = Unreachable()  # type: ignore[attr-defined]
    down = receiver.get("/readyz")
    assert down.status_code == 503
    assert json.loads(down.data)["checks"]["records"] != "ok"
