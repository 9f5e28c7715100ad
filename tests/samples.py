"""Sample files and tokens, made in code so every test says what it feeds the product."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

from broker.auth import issue_token

SECRET = "test-secret-" + "x" * 40
EVENTS = Path(__file__).parent / "events"


def auth(user: str, ttl: int = 600) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET.encode(), user, ttl)}"}


def png_bytes(width: int = 32, height: int = 32) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


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
