"""Uppy 6, unchanged, uploads through the broker with its AwsS3 plugin.

The real `uppy` bundle from npm (installed here at test time, never committed)
runs in a page on the broker's origin; `companionEndpoint` points at the broker,
whose `/s3/params` answers as Companion does, authenticated by the session cookie.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import require_system
from tests.integration.conftest import Running
from tests.npm import npm_available, npm_install
from tests.samples import SECRET, png_bytes, same_picture, settle

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
UPPY_VERSION = "6.0.1"
CACHE = ROOT / ".cache" / "uppy"
BUNDLE = CACHE / "node_modules" / "uppy" / "dist" / "uppy.min.js"

PAGE = b"""<!doctype html><html><head><meta charset="utf-8">
<script src="/test/uppy.min.js"></script></head><body>
<script>
  window.uploadWithUppy = async (bytes, token) => {
    // Same-origin pages sign in once; Uppy's own fetches then carry the cookie.
    await fetch("/v1/session", {method: "POST", headers: {Authorization: "Bearer " + token}});
    const uppy = new Uppy.Uppy({meta: {profile: "avatar"}})
      .use(Uppy.AwsS3, {companionEndpoint: "", shouldUseMultipart: false});
    uppy.addFile({name: "from-uppy.png", type: "image/png",
                  data: new Blob([new Uint8Array(bytes)], {type: "image/png"})});
    const result = await uppy.upload();
    return {ok: result.successful.length,
            failed: result.failed.map((f) => String(f.error)),
            location: result.successful.length ? result.successful[0].uploadURL : null};
  };
</script></body></html>"""


@pytest.fixture(scope="session")
def uppy_bundle() -> bytes:
    require_system("npm", npm_available(), "apt-get install nodejs npm")
    npm_install("uppy", "uppy", UPPY_VERSION)
    return BUNDLE.read_bytes()


def open_uppy_page(page: Any, running: Running, bundle: bytes, path: str, html: bytes) -> None:
    """Serve the Uppy bundle and a test page from the broker's origin, and open it."""
    running.pages.pages["/test/uppy.min.js"] = (bundle, "text/javascript")
    running.pages.pages[path] = (html, "text/html")
    page.goto(f"{running.url}{path}")


def test_uppy_uploads_through_companion_endpoint(page: Any, running: Running,
                                                 uppy_bundle: bytes) -> None:
    from broker.domain.auth import issue_token

    open_uppy_page(page, running, uppy_bundle, "/test/uppy.html", PAGE)
    png = png_bytes(30, 30)
    result = page.evaluate("([bytes, token]) => window.uploadWithUppy(bytes, token)",
                           [list(png), issue_token(SECRET.encode(), "uppy-user", 600)])
    assert result["failed"] == []
    assert result["ok"] == 1
    assert "/incoming/up_" in result["location"]
    newest = settle(running.url, "uppy-user")
    assert newest["filename"] == "from-uppy.png"
    assert newest["status"] == "ready"
    assert same_picture(requests.get(newest["url"], timeout=30).content, png)


SIGN_REQUEST_PAGE = b"""<!doctype html><html><head><meta charset="utf-8">
<script src="/test/uppy.min.js"></script></head><body>
<script>
  // The glue an app writes for signRequest: Uppy asks to sign a PUT for a key; the
  // app asks the broker for a presigned PUT for that file, with its bearer token.
  window.uploadWithSignRequest = async (bytes, token, broker) => {
    const files = new Map();
    const uppy = new Uppy.Uppy({meta: {profile: "avatar"}}).use(Uppy.AwsS3, {
      shouldUseMultipart: false,
      generateObjectKey: (file) => { files.set(file.id, file); return file.id; },
      signRequest: async ({key}) => {
        const file = files.get(key);
        const reply = await fetch(broker + "/v1/uploads", {
          method: "POST",
          headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"},
          body: JSON.stringify({profile: file.meta.profile, filename: file.name,
                                content_type: file.type, size: file.size, method: "PUT"}),
        });
        const created = await reply.json();
        if (!reply.ok) throw new Error(created.detail);
        return {url: created.upload.url};
      },
    });
    uppy.addFile({name: "signed.png", type: "image/png",
                  data: new Blob([new Uint8Array(bytes)], {type: "image/png"})});
    const result = await uppy.upload();
    return {ok: result.successful.length, failed: result.failed.map((f) => String(f.error))};
  };
</script></body></html>"""


def test_uppy_uploads_through_sign_request_glue(page: Any, running: Running,
                                                uppy_bundle: bytes) -> None:
    from broker.domain.auth import issue_token

    open_uppy_page(page, running, uppy_bundle, "/test/sign-request.html", SIGN_REQUEST_PAGE)
    png = png_bytes(24, 24)
    result = page.evaluate(
        "([bytes, token, broker]) => window.uploadWithSignRequest(bytes, token, broker)",
        [list(png), issue_token(SECRET.encode(), "signer", 600), running.url])
    assert result == {"ok": 1, "failed": []}
    newest = settle(running.url, "signer")
    assert newest["filename"] == "signed.png"
    assert newest["status"] == "ready"
