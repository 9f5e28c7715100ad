"""The widget as people meet it: no serious or critical accessibility violation (axe-core),
names that wrap between words on a phone, and screenshots at 360 and 1280 px wide in
light and dark schemes (tests/artifacts/screenshots/widget-*.png)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot, serious
from tests.browser.test_uploader import file_, open_page, settle
from tests.integration.conftest import Running
from tests.samples import HTML_AS_PNG, pdf_bytes, png_bytes

pytestmark = pytest.mark.browser
LONG_NAME = "holiday photos from the summer of twenty-twenty-six, the good ones.png"


@pytest.fixture
def filled(page: Any, running: Running) -> Any:
    """The page with a ready picture, a ready document, a refusal and a rejection."""
    open_page(page, running, "look-user", "avatar")
    page.set_input_files(".bu-input", [file_(LONG_NAME, "image/png", png_bytes(60, 40)),
                                       file_("not-a-picture.png", "image/png", HTML_AS_PNG),
                                       file_("cv.pdf", "application/pdf", pdf_bytes())])
    settle(page, 3)
    page.select_option("#profile", "document")
    page.set_input_files(".bu-input", [file_("report.pdf", "application/pdf", pdf_bytes())])
    settle(page, 4)
    return page


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_violation_in_either_scheme(
        filled: Any, axe: str, scheme: str) -> None:
    filled.emulate_media(color_scheme=scheme)
    filled.add_script_tag(path=axe)
    result = filled.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert serious(result["violations"]) == []


@pytest.mark.parametrize("width", [360, 1280])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_at_phone_and_desktop_widths(filled: Any, width: int, scheme: str
                                                 ) -> None:
    filled.set_viewport_size({"width": width, "height": 900})
    filled.emulate_media(color_scheme=scheme)
    path = screenshot(filled, f"widget-{width}-{scheme}")
    assert path.stat().st_size > 10_000
    # Nothing wider than the screen, and the long name wraps between its words.
    assert filled.evaluate("document.documentElement.scrollWidth") <= width
    lines = filled.evaluate(
        """(name) => [...document.querySelectorAll('.bu-name')]
             .filter((n) => n.textContent === name)
             .map((n) => { const range = document.createRange(); range.selectNodeContents(n);
                           return [...range.getClientRects()].map((r) => Math.round(r.top)); })""",
        LONG_NAME)
    assert lines
    rows = {top for rects in lines for top in rects}
    if width == 360:
        assert len(rows) > 1  # wrapped, at spaces (no word is wider than its cell here)
