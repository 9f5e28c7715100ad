"""Sample files and tokens, made in code so every test says what it feeds the product."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

from broker.domain.auth import issue_token

SECRET = "test-secret-" + "x" * 40
EVENTS = Path(__file__).parent / "events"


def auth(user: str, ttl: int = 600) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET.encode(), user, ttl)}"}


def png_bytes(width: int = 32, height: int = 32) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def same_picture(a: bytes, b: bytes) -> bool:
    """Whether two image files hold the same pixels (a re-encoded copy does)."""
    with Image.open(io.BytesIO(a)) as first, Image.open(io.BytesIO(b)) as second:
        return first.convert("RGBA").tobytes() == second.convert("RGBA").tobytes()


def pdf_bytes() -> bytes:
    """A real one-page PDF, as Pillow writes it."""
    out = io.BytesIO()
    Image.new("RGB", (60, 80), "white").save(out, "PDF")
    return out.getvalue()


HTML_AS_PNG = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script>" \
    + b"</body></html>\n" * 8


def load_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


class BytesSource:
    """An object held in memory, readable the three ways the inspection reads storage."""

    def __init__(self, data: bytes, chunk_size: int = 64 * 1024) -> None:
        self.data = data
        self.chunk_size = chunk_size

    @property
    def size(self) -> int:
        return len(self.data)

    def head(self, length: int) -> bytes:
        return self.data[:length]

    def open(self) -> io.BytesIO:
        return io.BytesIO(self.data)

    def chunks(self) -> list[bytes]:
        step = self.chunk_size
        return [self.data[i:i + step] for i in range(0, len(self.data), step)]


def store_upload(app: Any, aws: Any, data: bytes, *, profile: str = "avatar",
                 filename: str = "me.png", content_type: str = "image/png",
                 owner: str = "alice") -> str:
    """Create an upload through the broker and store its bytes as the browser would."""
    record = app.extensions["broker"].uploads.create(
        owner, profile, filename, content_type, len(data)).record
    aws.s3.put_object(Bucket="uploads-incoming", Key=record.incoming_key, Body=data,
                      Metadata={"upload-id": record.id})
    return str(record.id)


def send_upload(broker: str, user: str, data: bytes, *, profile: str = "avatar",
                filename: str = "me.png", content_type: str = "image/png") -> str:
    """Ask the broker over HTTP for an upload and send the file to the store as a
    browser does (fields first, the file last); the upload's id."""
    import requests

    created = requests.post(f"{broker}/v1/uploads", headers=auth(user), timeout=30, json={
        "profile": profile, "filename": filename, "content_type": content_type,
        "size": len(data)})
    assert created.status_code == 201, created.text
    post = created.json()["upload"]
    stored = requests.post(post["url"], data=post["fields"], timeout=30,
                           files={"file": (filename, data, content_type)})
    assert stored.status_code in (200, 201, 204), stored.text
    return str(created.json()["id"])


def settle(broker: str, user: str, upload_id: str | None = None,
           timeout: float = 60) -> dict[str, Any]:
    """Poll the API until the upload (or, without an id, the user's newest) settles."""
    import time

    import requests

    deadline = time.monotonic() + timeout
    record: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if upload_id:
            record = requests.get(f"{broker}/v1/uploads/{upload_id}", headers=auth(user),
                                  timeout=30).json()
        else:
            items = requests.get(f"{broker}/v1/uploads", headers=auth(user),
                                 timeout=30).json()["items"]
            record = items[0] if items else {"status": "pending"}
        if record["status"] not in ("pending", "processing"):
            return record
        time.sleep(0.1)
    raise AssertionError(f"the upload never settled: {record}")


# When a second file is posted at an upload's key: right after, soon after, after the
# verdict (None).
OVERWRITE_DELAYS = [0, 0.01, 0.05, None]


def overwrite_delay_name(delay: float | None) -> str:
    return "after the verdict" if delay is None else f"{int(delay * 1000)} ms after"


def overwrite_trial(broker: str, s3: Any, bucket: str, delay: float | None,
                    user: str = "alice") -> tuple[str, list[str]]:
    """Upload a PNG, then post another file at its key with the same form `delay` seconds
    after (None: after the verdict). The upload's final status, and what is left at the
    key once both events had time to be judged (nothing, when all is well)."""
    import time

    import requests

    png = png_bytes()
    created = requests.post(f"{broker}/v1/uploads", headers=auth(user), timeout=30, json={
        "profile": "avatar", "filename": "me.png", "content_type": "image/png",
        "size": len(png)}).json()
    post = created["upload"]

    def send(data: bytes) -> None:
        answer = requests.post(post["url"], data=post["fields"], timeout=30,
                               files={"file": ("me.png", data, "image/png")})
        assert answer.status_code in (200, 201, 204), answer.text

    send(png)
    if delay is not None:
        time.sleep(delay)
        send(HTML_AS_PNG[:len(png)].ljust(len(png), b" "))  # the declared size, other bytes
    status = settle(broker, user, created["id"])["status"]
    if delay is None:
        send(HTML_AS_PNG[:len(png)].ljust(len(png), b" "))
    key = post["fields"]["key"]
    deadline = time.monotonic() + 30
    while True:
        listed = s3.list_object_versions(Bucket=bucket, Prefix=key)
        left = [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == key]
        if not left or time.monotonic() > deadline:
            return status, left
        time.sleep(0.2)
