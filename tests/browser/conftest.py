"""Browser tests: the stack on loopback (the browser fixtures live in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.conftest import running  # noqa: F401  (the stack, for these tests)

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
