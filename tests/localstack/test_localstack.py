"""An upload end to end with LocalStack's runtime (host mode, no Docker) as the store.

Storage and the event queue are LocalStack's; the records stay in the embedded
emulator, because LocalStack's DynamoDB downloads a Java runtime and DynamoDB
Local on first use, which a machine without internet access cannot do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from broker.aws.clients import make_clients
from broker.compose import compose
from broker.provision import ensure_table, provision_queue, provision_storage
from broker.runtimes.sqs_worker import run_worker
from broker.settings import load_settings
from broker.web import create_app
from tests.integration.conftest import free_port, serving
from tests.samples import HTML_AS_PNG, SECRET, auth, png_bytes, same_picture, settle

pytestmark = pytest.mark.localstack


@pytest.fixture(scope="module")
def broker_on_localstack(localstack: str) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    records = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    records.start()
    host, port = records.get_host_and_port()
    broker_port = free_port()
    origin = f"http://127.0.0.1:{broker_port}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "test")
        env.setenv("AWS_SECRET_ACCESS_KEY", "test")
        settings = load_settings(
            jwt_secret=SECRET, s3_endpoint_url=localstack, sqs_endpoint_url=localstack,
            dynamodb_endpoint_url=f"http://{host}:{port}", incoming_bucket="ls-incoming",
            public_bucket="ls-public", private_bucket="ls-private")
        clients = make_clients(settings)
        provision_storage(clients, settings, [origin], serve_public_bucket=True)
        settings = settings.model_copy(
            update={"queue_url": provision_queue(clients, settings, "ls-events")})
        ensure_table(clients, settings.table)
        stop = threading.Event()
        assert settings.queue_url is not None
        worker = threading.Thread(target=run_worker, daemon=True, kwargs={"wait_seconds": 1},
                                  args=(compose(settings, clients).validator, clients.sqs,
                                        settings.queue_url, stop))
        worker.start()
        try:
            with serving(create_app(settings.model_dump(), clients=clients), broker_port):
                yield origin
        finally:
            stop.set()
            records.stop()


def ask(broker: str, data: bytes, filename: str = "me.png") -> dict[str, Any]:
    reply = requests.post(f"{broker}/v1/uploads", headers=auth("ls-user"), timeout=30, json={
        "profile": "avatar", "filename": filename, "content_type": "image/png",
        "size": len(data)})
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_an_upload_through_localstack_becomes_ready(broker_on_localstack: str,
                                                    localstack: str) -> None:
    png = png_bytes(40, 40)
    created = ask(broker_on_localstack, png)
    post = created["upload"]
    assert post["url"].startswith(localstack)
    stored = requests.post(post["url"], data=post["fields"],
                           files={"file": ("me.png", png, "image/png")}, timeout=30)
    assert stored.status_code == 201, stored.text
    record = settle(broker_on_localstack, "ls-user", created["id"])
    assert record["status"] == "ready"
    assert same_picture(requests.get(record["url"], timeout=30).content, png)  # re-encoded


def test_a_spoofed_file_is_rejected_and_an_oversized_body_refused(
        broker_on_localstack: str) -> None:
    created = ask(broker_on_localstack, HTML_AS_PNG, "x.png")
    post = created["upload"]
    requests.post(post["url"], data=post["fields"],
                  files={"file": ("x.png", HTML_AS_PNG, "image/png")}, timeout=30)
    rejected = settle(broker_on_localstack, "ls-user", created["id"])
    assert rejected["reason"]["code"] == "type_mismatch"
    png = png_bytes()
    post = ask(broker_on_localstack, png)["upload"]
    refused = requests.post(post["url"], data=post["fields"],
                            files={"file": ("me.png", png + b"\0" * 64, "image/png")},
                            timeout=30)
    assert refused.status_code == 400  # LocalStack enforces the policy's conditions
