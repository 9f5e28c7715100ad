"""The Django and FastAPI webhook receivers of docs/examples verify what the broker's
own signer sends: a genuine event is taken once however often it comes, a forged or
altered one is refused."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from broker.domain.webhooks.signing import signature_header
from broker.settings import parse_webhook_secret

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
SECRET = "whsec_" + "c2VjcmV0LWZvci10aGUtcmVjZWl2ZXJzLXRlc3Rz"
BODY = json.dumps({"type": "upload.ready", "timestamp": "2026-12-04T00:00:00Z",
                   "data": {"id": "up_signed", "owner": "frank",
                            "url": "https://cdn.example.com/x.png"}})

Post = Callable[[str, dict[str, str]], int]


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def signed(message_id: str, body: str = BODY) -> dict[str, str]:
    """The headers the broker's deliverer sends with `body`."""
    stamp = int(time.time())
    return {"webhook-id": message_id, "webhook-timestamp": str(stamp),
            "webhook-signature": signature_header([parse_webhook_secret(SECRET)], message_id,
                                                  stamp, body.encode()),
            "Content-Type": "application/json"}


def check(post: Post, events: Callable[[], list[dict[str, Any]]]) -> None:
    headers = signed("msg_receiver_1")
    forged = dict(headers, **{"webhook-signature": "v1,bm90IGEgc2lnbmF0dXJl"})
    assert post(BODY, forged) == 400
    assert post(BODY.replace("frank", "mallory"), headers) == 400
    assert post(BODY, headers) == 204
    assert post(BODY, headers) == 204  # the broker's retry of a delivery it did not hear of
    assert events() == [{"type": "upload.ready", "id": "up_signed", "owner": "frank",
                         "url": "https://cdn.example.com/x.png"}]


def test_the_fastapi_receiver_takes_a_genuine_event_once() -> None:
    from fastapi.testclient import TestClient

    app = load("webhook_receiver_fastapi").create_app(SECRET)
    with TestClient(app) as client:
        check(lambda body, headers: client.post("/webhooks", content=body,
                                                headers=headers).status_code,
              lambda: list(app.state.events))


def test_the_django_receiver_takes_a_genuine_event_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import django
    from django.conf import settings
    from django.test import Client

    if not settings.configured:
        settings.configure(SECRET_KEY="receiver-tests", ALLOWED_HOSTS=["testserver"],
                           ROOT_URLCONF=__name__, DEBUG=False)
        django.setup()
    monkeypatch.setenv("BROKER_WEBHOOK_SECRET", SECRET)
    receiver = load("webhook_receiver_django")
    global urlpatterns
    from django.urls import clear_url_caches, path

    urlpatterns = [path("webhooks", receiver.receive)]
    clear_url_caches()
    client = Client()
    check(lambda body, headers: client.post(
        "/webhooks", data=body, content_type="application/json",
        headers={k: v for k, v in headers.items() if k != "Content-Type"}).status_code,
        lambda: list(receiver.EVENTS))


urlpatterns: list[Any] = []  # the Django test's URLconf, set by the test
