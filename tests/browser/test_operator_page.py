"""The operator's page, in a real browser (and axe-core): an operator signs in, sees why a file was
refused, and releases it; anyone else finds nothing there (404)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from broker.aws.clients import AwsClients
from broker.compose import Parts, compose
from broker.domain.auth import issue_token
from broker.settings import Settings
from broker.web import create_app
from tests.browser.conftest import screenshot, serious
from tests.integration.conftest import free_port, serving
from tests.samples import SECRET
from tests.unit.test_quarantine import a_false_positive, refused

pytestmark = pytest.mark.browser


@pytest.fixture
def console(settings: Settings, aws: AwsClients) -> Iterator[tuple[Parts, str]]:
    parts = compose(settings.model_copy(update={"operators": ("carol",)}), aws)
    port = free_port()
    with serving(create_app(parts=parts), port):
        yield parts, f"http://127.0.0.1:{port}"


def sign_in(page: Any, url: str, user: str) -> Any:
    page.goto(f"{url}/operator")
    page.fill("#token", issue_token(SECRET.encode(), user, 600))
    with page.expect_navigation():
        page.click("button[type=submit]")
    return page


def test_an_operator_releases_a_false_positive_from_the_page(
        page: Any, console: tuple[Parts, str], aws: AwsClients, axe: str) -> None:
    parts, url = console
    upload_id = refused(parts, aws, a_false_positive(), name="holiday.jpg")
    sign_in(page, url, "carol")
    item = page.wait_for_selector(f"[id='{upload_id}']", timeout=30_000)
    assert "polyglot: The file hides other content" in item.inner_text()
    assert "markup or code in the JPEG metadata" in item.inner_text()
    screenshot(page, "operator-quarantine")
    page.add_script_tag(path=axe)
    found = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert serious(found["violations"]) == []  # no serious or critical accessibility fault
    page.fill(f"[id='{upload_id}'] input", "a camera's test comment, checked by hand")
    page.click(f"[id='{upload_id}'] button:text('Release')")
    page.wait_for_selector("#summary:text('The quarantine is empty.')", timeout=30_000)
    record = parts.records.get(upload_id)
    assert record is not None
    assert (record.status, record.reviewed_by) == ("ready", "operator:carol")


def test_someone_who_is_not_an_operator_finds_nothing_there(
        page: Any, console: tuple[Parts, str]) -> None:
    _, url = console
    page.goto(f"{url}/operator")
    page.fill("#token", issue_token(SECRET.encode(), "alice", 600))
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    assert navigation.value.status == 404
    assert page.goto(f"{url}/v1/operator/quarantine").status == 404
