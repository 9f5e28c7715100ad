"""The uploader embedded in a page of another origin (another port), in Chromium: with a
bearer token from a plain and from an async function, in cookie mode, and, from an
origin the broker does not allow, with a message that names the setting to change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from broker.devstack.stack import DevStack
from broker.web import create_app
from tests.integration.conftest import free_port, serving
from tests.samples import SECRET, png_bytes

pytestmark = pytest.mark.browser
SETTLED = ".bu-item[data-state=ready], .bu-item[data-state=rejected], .bu-item[data-state=error]"

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>An app</title>
<link rel="stylesheet" href="{broker}/static/uploader.css"></head>
<body><main><h1>An app elsewhere</h1><div id="uploads"></div></main>
<script src="{broker}/static/uploader.js"></script>
<script>
  const broker = {broker_json};
  const token = {token_json};
  {setup}
</script></body></html>"""

SETUPS = {
    # A token function as apps write them: a string now, or a promise of one.
    "sync": "BrokerUploader.mount(document.getElementById('uploads'), "
            "{broker, profile: 'avatar', token: () => token});",
    "async": "BrokerUploader.mount(document.getElementById('uploads'), {broker, "
             "profile: 'avatar', "
             "token: () => new Promise((r) => setTimeout(() => r(token), 50))});",
    # Cookie mode: the app trades the token for the broker's session cookie first.
    "cookie": "fetch(broker + '/v1/session', {method: 'POST', credentials: 'include', "
              "headers: {Authorization: 'Bearer ' + token}}).then(() => "
              "BrokerUploader.mount(document.getElementById('uploads'), "
              "{broker, profile: 'avatar'}));",
}


@dataclass
class Embedding:
    broker: str
    allowed: str  # an app origin the broker allows
    refused: str  # one it does not
    cookies: list[str]  # the API calls that arrived with a cookie


def noting_cookies(app: Any, cookies: list[str]) -> Any:
    def noted(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("HTTP_COOKIE") and environ.get("PATH_INFO", "").startswith("/v1/uploads"):
            cookies.append(environ["PATH_INFO"])
        return app(environ, start_response)
    return noted


def pages_app(broker: str, token: str) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        setup = SETUPS.get(environ.get("PATH_INFO", "").strip("/"))
        if setup is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no such page"]
        body = PAGE.format(broker=broker, broker_json=json.dumps(broker),
                           token_json=json.dumps(token), setup=setup).encode()
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [body]
    return app


@pytest.fixture(scope="module")
def embedding() -> Iterator[Embedding]:
    from broker.domain.auth import issue_token

    broker_port, allowed_port, refused_port = free_port(), free_port(), free_port()
    broker = f"http://127.0.0.1:{broker_port}"
    allowed = f"http://127.0.0.1:{allowed_port}"
    stack = DevStack(emulator_port=free_port(), broker_origin=broker,
                     overrides={"jwt_secret": SECRET, "allowed_origins": (allowed,)})
    try:
        settings = stack.start()
        pages = pages_app(broker, issue_token(SECRET.encode(), "embedder", 600))
        app = create_app(settings.model_dump(), clients=stack.clients)
        cookies: list[str] = []
        app.wsgi_app = noting_cookies(app.wsgi_app, cookies)  # type: ignore[method-assign]
        with serving(app, broker_port), serving(pages, allowed_port), \
                serving(pages, refused_port):
            yield Embedding(broker, allowed, f"http://127.0.0.1:{refused_port}", cookies)
    finally:
        stack.stop()


def upload_one(page: Any, url: str) -> Any:
    page.goto(url)
    page.wait_for_selector(".bu-input", state="attached")
    page.set_input_files(".bu-input", [{"name": "me.png", "mimeType": "image/png",
                                        "buffer": png_bytes(24, 24)}])
    page.wait_for_selector(SETTLED, timeout=60_000)
    return page.query_selector(".bu-item")


@pytest.mark.parametrize("mode", ["sync", "async", "cookie"])
def test_an_allowed_origin_uploads_with_a_token_or_the_cookie(
        page: Any, embedding: Embedding, mode: str) -> None:
    embedding.cookies.clear()
    item = upload_one(page, f"{embedding.allowed}/{mode}")
    assert item.get_attribute("data-state") == "ready", item.inner_text()
    # The cookie rides along only in cookie mode; a bearer call sends no credentials.
    assert bool(embedding.cookies) == (mode == "cookie")


def test_a_refused_origin_is_told_which_setting_to_change(
        page: Any, embedding: Embedding) -> None:
    item = upload_one(page, f"{embedding.refused}/sync")
    assert item.get_attribute("data-state") == "error"
    text = item.inner_text()
    assert f"did not answer this page ({embedding.refused})" in text
    assert "BROKER_ALLOWED_ORIGINS" in text
