"""The runnable examples of docs/examples/, run for real against the session's stack:
the app that integrates with the broker, the webhook receiver, the client that
uploads in parts and the page that embeds the uploader."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from standardwebhooks.webhooks import Webhook

from tests.docs.blocks import ROOT, all_blocks
from tests.docs.conftest import WEBHOOK_SECRET, Stack, load_example
from tests.docs.test_snippets import inline_scripts, node_check

EXAMPLES = ROOT / "docs" / "examples"


def png(tmp_path: Path, colour: str = "teal") -> bytes:
    path = tmp_path / f"{colour}.png"
    Image.new("RGB", (32, 32), colour).save(path)
    return path.read_bytes()


def upload(stack: Stack, token: str, data: bytes, *, profile: str = "avatar",
           filename: str = "me.png", content_type: str = "image/png") -> str:
    """Create an upload and post the file to storage, as a browser does; its id."""
    created = requests.post(f"{stack.url}/v1/uploads", timeout=30,
                            headers={"Authorization": f"Bearer {token}"},
                            json={"profile": profile, "filename": filename,
                                  "content_type": content_type, "size": len(data)})
    assert created.status_code == 201, created.text
    form = created.json()["upload"]
    stored = requests.post(form["url"], data=form["fields"], timeout=30,
                           files={"file": (filename, data, content_type)})
    assert stored.status_code == 201, stored.text
    upload_id: str = created.json()["id"]
    return upload_id


RECEIVERS = Path(__file__).with_name("test_receivers.py")  # the Django and FastAPI ones


def test_every_example_is_exercised_here_or_by_a_page() -> None:
    blocks, _ = all_blocks()
    quoted = {b.marker_value.split(":")[0] for b in blocks if b.marker == "snippet"}
    for example in sorted(EXAMPLES.iterdir()):
        name = f"docs/examples/{example.name}"
        assert name in quoted, f"{name} is quoted by no page"
        tests = Path(__file__).read_text() + RECEIVERS.read_text()
        assert example.stem.replace("-", "_") in tests, f"{name} is not tested here"


# -- app.py: an app that lets its users set an avatar through the broker ----------------

@pytest.fixture(scope="module")
def app_module() -> Any:
    return load_example("app.py")


def test_app_py_keeps_a_judged_avatar_of_its_own_user(stack: Stack, app_module: Any,
                                                      tmp_path: Path) -> None:
    app = app_module.create_app(stack.url, stack.secret())
    bob = app.test_client()
    assert bob.get("/upload-token").status_code == 401  # not signed in
    assert bob.post("/login", data={"user": "bob"}).status_code == 204
    token = bob.get("/upload-token").get_data(as_text=True)

    upload_id = upload(stack, token, png(tmp_path))  # the browser's part
    kept = bob.post("/avatar", json={"upload_id": upload_id})
    assert kept.status_code == 200, kept.get_data(as_text=True)
    avatar = kept.get_json()["avatar"]
    assert bob.get("/avatar").get_json() == {"avatar": avatar}
    served = requests.get(avatar, timeout=30)
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/png"

    carol = app.test_client()
    carol.post("/login", data={"user": "carol"})
    assert carol.post("/avatar", json={"upload_id": upload_id}).status_code == 404


def test_app_py_refuses_a_rejected_upload(stack: Stack, app_module: Any) -> None:
    app = app_module.create_app(stack.url, stack.secret())
    dave = app.test_client()
    dave.post("/login", data={"user": "dave"})
    token = dave.get("/upload-token").get_data(as_text=True)
    page_not_png = b"<!doctype html><html><body><script>alert(1)</script></body></html>\n"
    answer = dave.post("/avatar", json={"upload_id": upload(stack, token, page_not_png)})
    assert answer.status_code == 409
    assert answer.get_json()["reason"]["code"] == "type_mismatch"
    assert dave.get("/avatar").get_json() == {"avatar": None}


def test_app_py_page_mounts_the_uploader_the_broker_serves(stack: Stack, app_module: Any,
                                                          tmp_path: Path) -> None:
    app = app_module.create_app(stack.url, stack.secret())
    html = app.test_client().get("/").get_data(as_text=True)
    assert f'<script src="{stack.url}/static/uploader.js">' in html
    for source, suffix in inline_scripts(html):
        node_check(source, suffix, "docs/examples/app.py's page", tmp_path)
    script = requests.get(f"{stack.url}/static/uploader.js", timeout=30)
    assert script.status_code == 200
    assert "BrokerUploader" in script.text


# -- webhook_receiver.py: verified events, duplicates handled once ----------------------

def _events_for(stack: Stack, upload_id: str, within: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = [e for e in stack.receiver.config["EVENTS"] if e["id"] == upload_id]
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"no webhook for {upload_id} within {within} s")


def test_webhook_receiver_py_hears_each_verdict_verified(stack: Stack, tmp_path: Path) -> None:
    token = stack.token("erin")
    accepted = upload(stack, token, png(tmp_path, "orange"))
    refused = upload(stack, token, b"#!/bin/sh\necho hi\n", profile="document",
                     filename="notes.txt", content_type="text/plain")
    (ready,) = _events_for(stack, accepted)
    assert ready["type"] == "upload.ready"
    assert ready["owner"] == "erin"
    assert ready["url"].startswith("http://127.0.0.1:")
    (rejected,) = _events_for(stack, refused)
    assert rejected["type"] == "upload.rejected"


def test_webhook_receiver_py_refuses_forgeries_and_handles_a_redelivery_once(
        stack: Stack) -> None:
    body = json.dumps({"type": "upload.ready", "timestamp": "2026-12-04T00:00:00Z",
                       "data": {"id": "up_redelivered", "owner": "frank",
                                "url": "https://cdn.example.com/x.png"}})
    stamp = int(time.time())
    signature = Webhook(WEBHOOK_SECRET).sign("msg_docs_1", datetime.fromtimestamp(stamp, UTC),
                                             body)
    headers = {"webhook-id": "msg_docs_1", "webhook-timestamp": str(stamp),
               "webhook-signature": signature, "Content-Type": "application/json"}
    client = stack.receiver.test_client()
    forged = dict(headers, **{"webhook-signature": "v1,bm90IGEgc2lnbmF0dXJl"})
    assert client.post("/webhooks", data=body, headers=forged).status_code == 400
    altered = body.replace("frank", "mallory")
    assert client.post("/webhooks", data=altered, headers=headers).status_code == 400
    assert client.post("/webhooks", data=body, headers=headers).status_code == 204
    assert client.post("/webhooks", data=body, headers=headers).status_code == 204
    assert len([e for e in stack.receiver.config["EVENTS"]
                if e["id"] == "up_redelivered"]) == 1


def test_the_webhook_body_on_the_page_has_a_real_events_keys(stack: Stack,
                                                             tmp_path: Path) -> None:
    upload_id = upload(stack, stack.token("grace"), png(tmp_path, "navy"))
    _events_for(stack, upload_id)
    real = next(json.loads(b) for b in stack.recorder.bodies if upload_id.encode() in b)
    blocks, _ = all_blocks()
    (shown,) = [json.loads(b.body) for b in blocks
                if b.path == "docs/guides/webhooks.md" and b.tag == "json"]
    assert set(shown) == set(real)
    assert set(shown["data"]) == set(real["data"])
    assert set(shown["data"]["served"]) == set(real["data"]["served"])


# -- upload_in_parts.py: the protocol of large files ------------------------------------

def test_upload_in_parts_py_sends_a_file_in_parts_and_gets_its_verdict(
        stack: Stack, tmp_path: Path) -> None:
    client = load_example("upload_in_parts.py")
    path = tmp_path / "long.txt"
    path.write_text("a line of text in parts\n" * 400_000)  # 9.6 MB: two parts
    settled = client.upload_in_parts(stack.url, stack.token("heidi"), path, "document",
                                     "text/plain")
    assert settled["status"] == "ready", settled
    assert settled["size"] == path.stat().st_size


# -- embed.html: the page that mounts the uploader --------------------------------------

def test_embed_html_uses_only_options_the_uploader_reads(stack: Stack, tmp_path: Path) -> None:
    html = (EXAMPLES / "embed.html").read_text()
    scripts = inline_scripts(html)
    assert scripts
    for source, suffix in scripts:
        node_check(source, suffix, "docs/examples/embed.html", tmp_path)
    served = requests.get(f"{stack.url}/static/uploader.js", timeout=30)
    assert served.status_code == 200
    uploader = served.text
    assert "BrokerUploader" in uploader
    options = re.findall(r"^\s*(?://\s*)?(\w+):", scripts[0][0], flags=re.MULTILINE)
    assert {"broker", "profile", "token", "onSettled", "waitSeconds"} <= set(options)
    unread = [o for o in options if f"options.{o}" not in uploader]
    assert not unread, f"embed.html passes options uploader.js never reads: {unread}"
