"""The whole pipeline with storage on Ceph RGW and events by HTTP push.

Broker and records as usual (records in the emulator); the browser's POST goes to
RGW, RGW pushes the notification to the validator's receiver, the validator
reads and promotes within RGW.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.samples import (
    HTML_AS_PNG,
    OVERWRITE_DELAYS,
    auth,
    overwrite_delay_name,
    overwrite_trial,
    pdf_bytes,
    png_bytes,
    same_picture,
    settle,
)

pytestmark = pytest.mark.conformance


def upload(broker: str, profile: str, filename: str, content_type: str,
           data: bytes) -> dict[str, Any]:
    created = requests.post(f"{broker}/v1/uploads", headers=auth("alice"), timeout=30, json={
        "profile": profile, "filename": filename, "content_type": content_type,
        "size": len(data)})
    assert created.status_code == 201, created.text
    post = created.json()["upload"]
    assert post["url"].startswith("http://127.0.0.1:")  # RGW, not the broker
    stored = requests.post(post["url"], data=post["fields"],
                           files={"file": (filename, data, content_type)}, timeout=30)
    assert stored.status_code == 201, stored.text
    return settle(broker, "alice", created.json()["id"])


def test_an_avatar_reaches_ready_and_is_served_by_rgw(broker_on_rgw: str) -> None:
    png = png_bytes(48, 48)
    record = upload(broker_on_rgw, "avatar", "me.png", "image/png", png)
    assert record["status"] == "ready"
    served = requests.get(record["url"], timeout=30)
    assert served.status_code == 200
    assert same_picture(served.content, png)  # public images are served re-encoded
    assert served.headers["Content-Type"] == "image/png"


def test_a_private_document_downloads_through_a_presigned_rgw_get(broker_on_rgw: str) -> None:
    pdf = pdf_bytes()
    record = upload(broker_on_rgw, "document", "report.pdf", "application/pdf", pdf)
    assert record["status"] == "ready"
    fetched = requests.get(record["download_url"], timeout=30)
    assert fetched.content == pdf
    assert fetched.headers["Content-Disposition"].startswith("attachment;")
    assert requests.get(record["download_url"].split("?")[0], timeout=30).status_code == 403


def test_a_spoofed_file_is_rejected_on_rgw(broker_on_rgw: str) -> None:
    record = upload(broker_on_rgw, "avatar", "x.png", "image/png", HTML_AS_PNG)
    assert record["status"] == "rejected"
    assert record["reason"]["code"] == "type_mismatch"


@pytest.mark.parametrize("delay", OVERWRITE_DELAYS, ids=overwrite_delay_name)
def test_an_overwritten_upload_leaves_nothing_in_incoming_on_rgw(
        broker_on_rgw: str, rgw: Any, delay: float | None) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=rgw.endpoint, aws_access_key_id=rgw.access_key,
                      aws_secret_access_key=rgw.secret_key, region_name="us-east-1")
    status, left = overwrite_trial(broker_on_rgw, s3, "rgw-incoming", delay)
    assert status in ("ready", "rejected")
    assert left == []
