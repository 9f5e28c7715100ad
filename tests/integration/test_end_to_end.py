"""Uploads over real HTTP, the multipart POST sent exactly as a browser sends it."""

from __future__ import annotations

import hashlib
import io
import json
import time
from typing import Any

import pytest
import requests

from tests.integration.conftest import Running
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

pytestmark = pytest.mark.integration
MIB = 1024 * 1024


def ask(running: Running, user: str, **body: Any) -> requests.Response:
    return requests.post(f"{running.url}/v1/uploads", json=body, headers=auth(user), timeout=30)


def post_to_storage(upload: dict[str, Any], filename: str, data: bytes,
                    content_type: str) -> requests.Response:
    # requests writes `data` fields before `files`: the policy fields first, the file last.
    return requests.post(upload["url"], data=upload["fields"],
                         files={"file": (filename, data, content_type)}, timeout=30)


def upload(running: Running, user: str, profile: str, filename: str, content_type: str,
           data: bytes, declared_size: int | None = None) -> dict[str, Any]:
    created = ask(running, user, profile=profile, filename=filename, content_type=content_type,
                  size=len(data) if declared_size is None else declared_size)
    assert created.status_code == 201, created.text
    stored = post_to_storage(created.json()["upload"], filename, data, content_type)
    assert stored.status_code == 201, stored.text
    return settle(running.url, user, created.json()["id"])


def test_a_public_avatar_is_served_reencoded_without_its_metadata(running: Running) -> None:
    png = png_with_metadata(64, 48)
    record = upload(running, "alice", "avatar", "me.png", "image/png", png)
    assert record["status"] == "ready"
    assert record["content_type"] == "image/png"
    served = requests.get(record["url"], timeout=30)
    assert served.status_code == 200
    assert same_picture(served.content, png)
    assert b"Software" not in served.content  # the original's text chunk is gone
    assert record["sha256"] == hashlib.sha256(png).hexdigest()
    renditions = record["served"].pop("renditions")
    assert record["served"] == {"size": len(served.content), "rewritten": True,
                                "sha256": hashlib.sha256(served.content).hexdigest(),
                                "content_type": "image/png"}
    # Renditions of the same picture, each served: the squares cut as large as it allows.
    assert [(r["width"], r["height"]) for r in renditions] == [(48, 48), (48, 48), (64, 48)]
    for rendition in renditions:
        thumb = requests.get(rendition["url"], timeout=30)
        assert thumb.headers["Content-Type"] == rendition["format"] == "image/webp"
        assert len(thumb.content) == rendition["size"]
    assert served.headers["Content-Type"] == "image/png"
    redirect = requests.get(f"{running.url}/v1/uploads/{record['id']}/download",
                            headers=auth("alice"), allow_redirects=False, timeout=30)
    assert redirect.status_code == 302
    assert redirect.headers["Location"] == record["url"]


def png_with_metadata(width: int, height: int) -> bytes:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "PhoneCam 3.1")
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 90, 200)).save(out, "PNG", pnginfo=info)
    assert b"Software" in out.getvalue()
    return out.getvalue()


def test_a_private_document_downloads_only_for_its_owner(running: Running) -> None:
    pdf = pdf_bytes()
    record = upload(running, "alice", "document", "Quarterly report.pdf", "application/pdf",
                    pdf)
    assert record["status"] == "ready"
    assert record["url"] is None
    download = f"{running.url}/v1/uploads/{record['id']}/download"
    hop = requests.get(download, headers=auth("alice"), allow_redirects=False, timeout=30)
    assert hop.status_code == 302
    fetched = requests.get(hop.headers["Location"], timeout=30)
    assert fetched.status_code == 200
    assert fetched.content == pdf
    assert fetched.headers["Content-Disposition"].startswith("attachment;")
    assert "Quarterly report.pdf" in fetched.headers["Content-Disposition"]
    for url in (download, f"{running.url}/v1/uploads/{record['id']}"):
        refused = requests.get(url, headers=auth("bob"), allow_redirects=False, timeout=30)
        assert refused.status_code == 404
    private_key = hop.headers["Location"].split("?")[0]
    assert requests.get(private_key, timeout=30).status_code == 403  # unsigned: refused


def test_html_declared_as_png_is_rejected_with_type_mismatch(running: Running) -> None:
    record = upload(running, "alice", "avatar", "x.png", "image/png", HTML_AS_PNG)
    assert record["status"] == "rejected"
    assert record["reason"]["code"] == "type_mismatch"
    assert record["reason"]["message"]
    assert record["url"] is None


def test_a_50_mib_avatar_is_refused_before_any_upload(running: Running) -> None:
    refused = ask(running, "alice", profile="avatar", filename="big.png",
                  content_type="image/png", size=50 * MIB)
    assert refused.status_code == 422
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "too_large"


def test_a_body_larger_than_declared_is_caught_by_the_validator(running: Running) -> None:
    # The emulator stores what the policy forbids; the validator must not trust it.
    png = png_bytes()
    record = upload(running, "alice", "avatar", "me.png", "image/png", png + b"\0" * 4096,
                    declared_size=len(png))
    assert record["status"] == "rejected"
    assert record["reason"]["code"] == "size_mismatch"


def test_the_broker_never_receives_file_bytes(running: Running) -> None:
    big = png_bytes(900, 900) + b"\0" * MIB
    upload(running, "alice", "avatar", "big.png", "image/png", big)
    assert max(running.requests.sizes) < 4096


def test_a_redelivered_event_changes_nothing(running: Running) -> None:
    record = upload(running, "alice", "avatar", "me.png", "image/png", png_bytes())
    clients = running.stack.clients
    assert clients is not None
    incoming_key = f"incoming/{record['id']}"
    event = {"Records": [{"eventName": "ObjectCreated:Post", "s3": {
        "bucket": {"name": running.settings.incoming_bucket},
        "object": {"key": incoming_key.replace("/", "%2F"), "size": record["size"]}}}]}
    clients.sqs.send_message(QueueUrl=running.settings.queue_url or "",
                             MessageBody=json.dumps(event))
    time.sleep(2.5)
    again = settle(running.url, "alice", record["id"])
    assert again == record


def test_listing_and_deleting(running: Running) -> None:
    record = upload(running, "carol", "avatar", "c.png", "image/png", png_bytes())
    listing = requests.get(f"{running.url}/v1/uploads", headers=auth("carol"), timeout=30)
    assert [u["id"] for u in listing.json()["items"]] == [record["id"]]
    gone = requests.delete(f"{running.url}/v1/uploads/{record['id']}", headers=auth("carol"),
                           timeout=30)
    assert gone.status_code == 204
    assert requests.get(record["url"], timeout=30).status_code in (403, 404)
    listing = requests.get(f"{running.url}/v1/uploads", headers=auth("carol"), timeout=30)
    assert listing.json()["items"] == []


@pytest.mark.parametrize("delay", OVERWRITE_DELAYS, ids=overwrite_delay_name)
def test_an_overwritten_upload_leaves_nothing_in_incoming(running: Running,
                                                          delay: float | None) -> None:
    status, left = overwrite_trial(running.url, running.stack.clients.s3,
                                   running.settings.incoming_bucket, delay, user="overwriter")
    assert status in ("ready", "rejected")
    assert left == []
