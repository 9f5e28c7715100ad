"""Large files in a real browser: the page's uploader sends a few hundred MiB in parts,
survives a reload mid-way by sending only what storage lacks, and Uppy 6, unchanged,
uploads a file above its multipart threshold through Companion's multipart calls."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from tests.browser.test_uppy import open_uppy_page, uppy_bundle  # noqa: F401  (fixture)
from tests.integration.conftest import Running
from tests.samples import SECRET, auth, settle
from tests.videos import box, tiny_mp4

pytestmark = pytest.mark.browser
MIB = 1024 * 1024


def large_video(folder: Path, size: int) -> tuple[Path, bytes]:
    """A structurally valid MP4 of about `size` bytes (its media is padding)."""
    data = tiny_mp4(boxes=[box(b"moov", box(b"mvhd", bytes(100))),
                           box(b"mdat", bytes(size))])
    path = folder / "holiday.mp4"
    path.write_bytes(data)
    return path, data


def part_number(url: str) -> int | None:
    found = parse_qs(urlparse(url).query).get("partNumber")
    return int(found[0]) if found else None


def held_parts(running: Running, user: str, upload_id: str) -> set[int]:
    """The parts storage holds, once parts cut off by a reload have landed or not."""
    import time

    seen: set[int] | None = None
    while True:
        now = {p["part_number"] for p in requests.get(
            f"{running.url}/v1/uploads/{upload_id}/parts", headers=auth(user),
            timeout=30).json()["parts"]}
        if now == seen:
            return now
        seen = now
        time.sleep(1)


def open_page(page: Any, running: Running, token: str) -> None:
    page.goto(f"{running.url}/")
    page.fill("#token", token)
    page.select_option("#profile", "video")


def test_the_uploader_resumes_after_a_reload_sending_only_the_missing_parts(
        page: Any, running: Running, tmp_path: Path) -> None:
    from broker.domain.auth import issue_token

    user = "large-files-ann"
    token = issue_token(SECRET.encode(), user, 900)
    path, data = large_video(tmp_path, 200 * MIB)
    sessions: list[list[int]] = [[]]
    page.on("requestfinished", lambda r: sessions[-1].append(part_number(r.url) or 0)
            if r.method == "PUT" and part_number(r.url) else None)
    open_page(page, running, token)
    page.set_input_files(".bu-input", str(path))
    page.wait_for_function("document.querySelector('.bu-item[data-parts]')", timeout=30_000)
    page.wait_for_function(  # a few parts in storage, then the page is reloaded
        "parseInt(document.querySelector('.bu-item').dataset.progress || '0') >= 20",
        timeout=60_000)
    page.reload()
    (upload,) = [u for u in requests.get(f"{running.url}/v1/uploads", headers=auth(user),
                                         timeout=30).json()["items"]]
    held = held_parts(running, user, upload["id"])
    assert held  # some parts made it before the reload
    sessions.append([])
    open_page(page, running, token)
    page.set_input_files(".bu-input", str(path))  # the same file again: it resumes
    page.wait_for_function("document.querySelector('.bu-item[data-state=ready], "
                           ".bu-item[data-state=rejected], .bu-item[data-state=error]')",
                           timeout=180_000)
    item = page.query_selector(".bu-item")
    assert item.get_attribute("data-state") == "ready", item.inner_text()
    count = int(item.get_attribute("data-parts"))
    assert count == -(-len(data) // (8 * MIB))  # in the broker's 8 MiB parts
    assert int(item.get_attribute("data-resumed-with")) == len(held)
    resent = sessions[-1]
    assert sorted(resent) == sorted(set(range(1, count + 1)) - held)  # only what was missing
    record = settle(running.url, user, upload["id"])
    assert record["status"] == "ready"
    assert record["size"] == len(data)
    assert record["sha256"] == hashlib.sha256(data).hexdigest()


def test_pause_keeps_the_parts_sent_and_cancel_removes_the_upload(
        page: Any, running: Running, tmp_path: Path) -> None:
    from broker.domain.auth import issue_token

    user = "large-files-bo"
    path, _ = large_video(tmp_path, 120 * MIB)
    open_page(page, running, issue_token(SECRET.encode(), user, 900))
    page.set_input_files(".bu-input", str(path))
    page.wait_for_function(
        "parseInt(document.querySelector('.bu-item').dataset.progress || '0') >= 10",
        timeout=60_000)
    page.click(".bu-pause")
    page.wait_for_selector(".bu-item[data-state=paused]")
    (upload,) = requests.get(f"{running.url}/v1/uploads", headers=auth(user),
                             timeout=30).json()["items"]
    assert upload["status"] == "pending"
    page.click(".bu-resume")
    page.wait_for_function(
        "parseInt((document.querySelector('.bu-item') || {dataset: {}}).dataset.progress"
        " || '0') >= 30", timeout=60_000)
    page.click(".bu-cancel")
    page.wait_for_selector(".bu-item[data-state=cancelled]")
    page.wait_for_timeout(500)
    gone = requests.get(f"{running.url}/v1/uploads/{upload['id']}", headers=auth(user),
                        timeout=30)
    assert gone.status_code == 404


MULTIPART_PAGE = b"""<!doctype html><html><head><meta charset="utf-8">
<script src="/test/uppy.min.js"></script></head><body>
<input type="file" id="file">
<script>
  window.uploadLargeWithUppy = async (token) => {
    await fetch("/v1/session", {method: "POST", headers: {Authorization: "Bearer " + token}});
    const uppy = new Uppy.Uppy({meta: {profile: "video"}})
      .use(Uppy.AwsS3, {companionEndpoint: ""});  // Uppy's defaults: multipart over 100 MiB
    const file = document.getElementById("file").files[0];
    uppy.addFile({name: file.name, type: file.type, data: file});
    const result = await uppy.upload();
    return {ok: result.successful.length, failed: result.failed.map((f) => String(f.error))};
  };
</script></body></html>"""


def test_uppy_6_unchanged_uploads_a_large_file_in_parts(
        page: Any, running: Running, uppy_bundle: bytes, tmp_path: Path) -> None:  # noqa: F811
    from broker.domain.auth import issue_token

    user = "large-files-uppy"
    path, data = large_video(tmp_path, 110 * MIB)
    calls: list[str] = []
    page.on("request", lambda r: calls.append(f"{r.method} {urlparse(r.url).path}")
            if "/s3/multipart" in r.url else None)
    open_uppy_page(page, running, uppy_bundle, "/test/uppy-large.html", MULTIPART_PAGE)
    page.set_input_files("#file", str(path))
    result = page.evaluate("(token) => window.uploadLargeWithUppy(token)",
                           issue_token(SECRET.encode(), user, 900))
    assert result == {"ok": 1, "failed": []}
    assert any(c.startswith("POST /s3/multipart") for c in calls)
    assert any(c.endswith("/complete") for c in calls)
    newest = settle(running.url, user, timeout=120)
    assert newest["status"] == "ready", newest
    assert newest["size"] == len(data)
    assert newest["sha256"] == hashlib.sha256(data).hexdigest()
