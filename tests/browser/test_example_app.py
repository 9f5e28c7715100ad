"""The example app (examples/flask_app) in Chromium, as its users would use it: two people
sign in, upload an avatar and a document through the extension, see them ready, download
the document byte for byte; the other person's link answers 404."""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from broker.devstack.stack import SHARED_FOR_APPS, DevStack
from tests.browser.conftest import screenshot
from tests.integration.conftest import free_port, serving
from tests.samples import pdf_bytes, png_bytes

pytestmark = pytest.mark.browser
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flask_app" / "app.py"


def example_app(config: dict[str, Any]) -> Flask:
    spec = importlib.util.spec_from_file_location("example_flask_app", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app: Flask = module.create_app(config)
    return app


class Heard(logging.Handler):
    """What the example app logs, as its settle signal handler writes it."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


HEARD = Heard()


@pytest.fixture(scope="module")
def example() -> Iterator[str]:
    """The stack (emulator, validator) and the example app on an origin of its own,
    configured as `make example` configures it: the stack's shared settings."""
    stack = DevStack(emulator_port=free_port(), broker_origin="http://127.0.0.1:1")
    try:
        settings = stack.start()
        config: dict[str, Any] = {"EXAMPLE_SECRET_KEY": "example"}
        for name in SHARED_FOR_APPS:
            value = getattr(settings, name)
            if value is not None:
                plain = value.get_secret_value() if hasattr(value, "get_secret_value") \
                    else value
                config[f"BROKER_{name.upper()}"] = plain
        port = free_port()
        app = example_app(config)
        app.logger.addHandler(HEARD)
        with serving(app, port):
            yield f"http://127.0.0.1:{port}"
    finally:
        stack.stop()


def sign_in(page: Any, origin: str, name: str) -> None:
    page.goto(f"{origin}/")  # signed out: sent to the sign-in form
    page.fill("#name", name)
    page.click("button[type=submit]")
    page.wait_for_selector("h1")
    assert page.inner_text("h1") == name


def upload(page: Any, index: int, name: str, mime: str, data: bytes) -> None:
    """Choose a file in the page's `index`th uploader; the page reloads once it is ready."""
    with page.expect_navigation(timeout=60_000):
        page.locator(".bu-input").nth(index).set_input_files(
            [{"name": name, "mimeType": mime, "buffer": data}])


def test_two_people_upload_see_download_and_cannot_reach_each_others_files(
        browser: Any, example: str) -> None:
    alice = browser.new_context(accept_downloads=True)
    page = alice.new_page()
    sign_in(page, example, "alice")
    upload(page, 0, "me.png", "image/png", png_bytes(200, 200))
    avatar = page.wait_for_selector("img.avatar")
    assert avatar.evaluate("img => img.complete && img.naturalWidth") == 200
    document = pdf_bytes()
    upload(page, 1, "report.pdf", "application/pdf", document)
    link = page.wait_for_selector(".documents a")
    assert link.inner_text() == "report.pdf"
    screenshot(page, "example-app-profile")
    with page.expect_download() as download:
        link.click()
    assert Path(download.value.path()).read_bytes() == document
    href = link.get_attribute("href")
    alice.close()
    # The app heard both verdicts by its signal, in its own process.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not {"alice's me.png: upload.ready",
                                              "alice's report.pdf: upload.ready"
                                              } <= set(HEARD.lines):
        time.sleep(0.1)
    assert {"alice's me.png: upload.ready", "alice's report.pdf: upload.ready"} \
        <= set(HEARD.lines)

    bob = browser.new_context()
    other = bob.new_page()
    sign_in(other, example, "bob")
    assert other.query_selector("img.avatar") is None
    assert other.query_selector_all(".documents a") == []
    answer = other.request.get(f"{example}{href}", max_redirects=0)
    assert answer.status == 404
    bob.close()
    # Signed out, the link asks for a sign-in and gives nothing away.
    assert requests.get(f"{example}{href}", timeout=30, allow_redirects=False
                        ).status_code == 401
