"""The upload page in a real browser: pick, drop, progress, verdicts, links, downloads."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.browser.conftest import screenshot
from tests.integration.conftest import Running
from tests.samples import HTML_AS_PNG, SECRET, auth, pdf_bytes, png_bytes, same_picture

pytestmark = pytest.mark.browser
SETTLED = ".bu-item[data-state=ready], .bu-item[data-state=rejected], .bu-item[data-state=error]"


def open_page(page: Any, running: Running, user: str, profile: str) -> None:
    from broker.domain.auth import issue_token

    page.goto(f"{running.url}/")
    page.fill("#token", issue_token(SECRET.encode(), user, 600))
    page.select_option("#profile", profile)


def settle(page: Any, count: int) -> list[Any]:
    page.wait_for_function(f"document.querySelectorAll({SETTLED!r}).length >= {count}",
                           timeout=30_000)
    return page.query_selector_all(".bu-item")


def file_(name: str, mime: str, data: bytes) -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data}


def test_picked_files_show_progress_and_their_verdicts(page: Any, running: Running) -> None:
    open_page(page, running, "alice", "avatar")
    status_reads: list[str] = []
    page.on("request", lambda request: status_reads.append(request.url)
            if "/v1/uploads/up_" in request.url else None)
    png = png_bytes(400, 300) + b""  # a real image
    page.set_input_files(".bu-input", [file_("me.png", "image/png", png),
                                       file_("x.png", "image/png", HTML_AS_PNG)])
    items = settle(page, 2)
    states = {i.query_selector(".bu-name").inner_text(): i for i in items}
    ready, rejected = states["me.png"], states["x.png"]
    assert ready.get_attribute("data-state") == "ready"
    # Set only by XHR upload progress events, so the bar really followed the upload.
    assert ready.get_attribute("data-progress") == "100"
    assert rejected.get_attribute("data-state") == "rejected"
    assert rejected.get_attribute("data-reason") == "type_mismatch"
    assert "The file is an HTML page, not a PNG image." in rejected.inner_text()
    # The verdicts came by long poll: a few held requests, no polling loop.
    assert status_reads
    assert all(url.endswith("?wait=20") for url in status_reads)
    assert len(status_reads) <= 6  # two files, at most pending → processing → settled
    # The caller's storage, refreshed after each verdict (no quota set: no limits shown).
    page.wait_for_function("/\\d+ files?$/.test(document.querySelector('.bu-usage').textContent)")
    usage = page.inner_text(".bu-usage")
    assert usage.startswith("Stored: ")
    assert " of " not in usage
    screenshot(page, "uploader-ready-and-rejected")
    link = ready.query_selector("a").get_attribute("href")
    assert same_picture(requests.get(link, timeout=30).content, png)  # served re-encoded


def test_dropped_files_upload_too(page: Any, running: Running) -> None:
    open_page(page, running, "alice", "avatar")
    png = png_bytes(20, 20)
    page.evaluate(
        """([bytes, name]) => {
            const file = new File([new Uint8Array(bytes)], name, {type: "image/png"});
            const data = new DataTransfer();
            data.items.add(file);
            const zone = document.querySelector(".bu-zone");
            zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: data, bubbles: true}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
        }""",
        [list(png), "dropped.png"],
    )
    (item,) = settle(page, 1)
    assert item.get_attribute("data-state") == "ready"
    assert item.query_selector(".bu-name").inner_text() == "dropped.png"


def test_the_drop_zone_opens_the_picker_from_the_keyboard(page: Any, running: Running) -> None:
    from playwright.sync_api import expect

    open_page(page, running, "alice", "avatar")
    zone = page.locator(".bu-zone")
    zone.focus()
    expect(zone).to_be_focused()
    with page.expect_file_chooser() as chooser:
        zone.press("Enter")
    chooser.value.set_files([file_("key.png", "image/png", png_bytes())])
    (item,) = settle(page, 1)
    assert item.get_attribute("data-state") == "ready"


def test_a_private_file_downloads_with_the_same_bytes(page: Any, running: Running) -> None:
    open_page(page, running, "alice", "document")
    pdf = pdf_bytes()
    page.set_input_files(".bu-input", [file_("report.pdf", "application/pdf", pdf)])
    (item,) = settle(page, 1)
    assert item.get_attribute("data-state") == "ready"
    screenshot(page, "uploader-private-ready")
    with page.expect_download() as download:
        item.query_selector("a.bu-download").click()
    assert download.value.suggested_filename == "report.pdf"
    with open(download.value.path(), "rb") as saved:
        assert saved.read() == pdf


def test_refusals_are_shown_in_plain_words(page: Any, running: Running) -> None:
    open_page(page, running, "alice", "avatar")
    page.set_input_files(".bu-input", [file_("cv.pdf", "application/pdf", pdf_bytes())])
    (item,) = settle(page, 1)
    assert item.get_attribute("data-state") == "error"
    assert "PDF documents are not accepted for avatar uploads; accepted: PNG, JPEG, WebP, " \
        "GIF, HEIC, HEIF and AVIF images." in item.inner_text()
    page.fill("#token", "not-a-token")
    page.set_input_files(".bu-input", [file_("me.png", "image/png", png_bytes())])
    items = settle(page, 2)
    assert "token is not valid" in items[1].inner_text()
    screenshot(page, "uploader-refusals")


def test_the_page_lists_the_callers_uploads_with_thumbnails_and_delete(
        page: Any, running: Running) -> None:
    open_page(page, running, "library-user", "avatar")
    page.set_input_files(".bu-input", [file_("first.png", "image/png", png_bytes(40, 30)),
                                       file_("second.png", "image/png", png_bytes(30, 40))])
    settle(page, 2)
    # Each file just uploaded has its row, with its link, and is not listed twice.
    assert all(i.query_selector("a.bu-open") for i in page.query_selector_all(".bu-item"))
    page.wait_for_function("document.querySelector('.bu-usage').textContent.endsWith('2 files')")
    assert page.query_selector_all(".bu-upload") == []
    open_page(page, running, "library-user", "avatar")  # a later visit lists them
    page.dispatch_event("#token", "change")  # as leaving the field does: list this user's
    page.wait_for_function("document.querySelectorAll('.bu-upload').length === 2")
    assert all(i.query_selector("a.bu-open") for i in page.query_selector_all(".bu-upload"))
    names = [n.inner_text() for n in page.query_selector_all(".bu-upload .bu-name")]
    assert sorted(names) == ["first.png", "second.png"]  # newest first, by the API
    # Each ready image shows a thumbnail drawn from the delivered file (the listing
    # shown may be the one asked for after the first verdict: wait for the second's).
    page.wait_for_function("[...document.querySelectorAll('img.bu-thumb')]"
                           ".filter((i) => i.complete && i.naturalWidth > 0).length === 2")
    thumbs = page.query_selector_all("img.bu-thumb")
    assert len(thumbs) == 2
    assert all("/uploads-public/" in (t.get_attribute("src") or "") for t in thumbs)
    # ... its smallest rendition, not the whole picture.
    assert all((t.get_attribute("src") or "").endswith("-c64x64.webp") for t in thumbs)
    assert all(s.inner_text().endswith("bytes") or "KiB" in s.inner_text()
               for s in page.query_selector_all(".bu-upload .bu-size"))

    first = page.locator(".bu-upload").first
    gone_id = first.get_attribute("data-id")
    first.locator(".bu-delete").click()
    page.wait_for_function("document.querySelectorAll('.bu-upload').length === 1")
    assert page.locator(".bu-upload").first.get_attribute("data-id") != gone_id
    assert requests.get(f"{running.url}/v1/uploads/{gone_id}", headers=auth("library-user"),
                        timeout=30).status_code == 404


def test_an_upload_that_failed_on_the_network_can_be_retried(page: Any,
                                                              running: Running) -> None:
    open_page(page, running, "retry-user", "avatar")
    dropped = []

    def drop_the_first_send(route: Any) -> None:
        if route.request.method == "POST" and not dropped:
            dropped.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route(f"{running.settings.endpoint_for('s3')}/**", drop_the_first_send)
    page.set_input_files(".bu-input", [file_("flaky.png", "image/png", png_bytes(16, 16))])
    (item,) = settle(page, 1)
    assert item.get_attribute("data-state") == "error"
    assert "Network error" in item.inner_text()
    item.query_selector(".bu-retry").click()
    page.wait_for_selector(".bu-item[data-state=ready]", timeout=30_000)
    assert dropped  # the first attempt really failed on the way to storage
