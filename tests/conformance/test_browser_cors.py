"""A browser can upload to RGW only from an origin in the bucket's CORS rules.

The uploader's XHR listens to upload progress, so the browser must ask RGW
first (a preflight); RGW answers it only for the broker's origin. A page from
any other origin cannot send the file, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from werkzeug.wrappers import Response

from tests.conformance.conftest import Rgw
from tests.integration.conftest import free_port, serving
from tests.samples import auth, png_bytes

pytestmark = [pytest.mark.conformance, pytest.mark.browser]

SENDER = """<!doctype html><html><body><script>
  window.send = (upload, bytes) => new Promise((resolve) => {
    const form = new FormData();
    Object.entries(upload.fields).forEach(([k, v]) => form.append(k, v));
    form.append("file", new Blob([new Uint8Array(bytes)], {type: "image/png"}), "a.png");
    const xhr = new XMLHttpRequest();
    xhr.upload.onprogress = () => {};  // as the uploader does: this makes it preflighted
    xhr.open("POST", upload.url);
    xhr.onload = () => resolve("HTTP " + xhr.status);
    xhr.onerror = () => resolve("network error");
    xhr.send(form);
  });
</script></body></html>"""


@pytest.fixture(scope="module")
def foreign_origin() -> Iterator[str]:
    with serving(Response(SENDER, mimetype="text/html"), free_port()) as origin:
        yield origin


def presigned(broker: str, png: bytes) -> dict[str, Any]:
    created = requests.post(f"{broker}/v1/uploads", headers=auth("cors-tester"), timeout=30, json={
        "profile": "avatar", "filename": "c.png", "content_type": "image/png",
        "size": len(png)})
    assert created.status_code == 201
    upload: dict[str, Any] = created.json()["upload"]
    return upload


def stored(rgw: Rgw, key: str) -> bool:
    s3 = boto3.client("s3", endpoint_url=rgw.endpoint, aws_access_key_id=rgw.access_key,
                      aws_secret_access_key=rgw.secret_key, region_name="us-east-1",
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    try:
        s3.head_object(Bucket="rgw-incoming", Key=key)
    except s3.exceptions.ClientError:
        return False
    return True


def test_a_foreign_origin_cannot_upload_but_the_broker_origin_can(
    page: Any, rgw: Rgw, broker_on_rgw: str, foreign_origin: str
) -> None:
    png = png_bytes()
    upload = presigned(broker_on_rgw, png)
    page.goto(f"{foreign_origin}/")
    assert page.evaluate("([u, b]) => window.send(u, b)", [upload, list(png)]) \
        == "network error"
    assert not stored(rgw, upload["fields"]["key"])

    page.goto(f"{broker_on_rgw}/")  # the allowed origin runs the same request
    page.add_script_tag(content=SENDER.split("<script>")[1].split("</script>")[0])
    assert page.evaluate("([u, b]) => window.send(u, b)", [upload, list(png)]) == "HTTP 201"
