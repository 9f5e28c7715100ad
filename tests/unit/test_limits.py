"""Abuse limits: a burst of presign requests and a pile of unfinished uploads both get 429."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from broker.aws.clients import AwsClients
from broker.common import clock
from broker.settings import Settings
from broker.web import create_app
from tests.samples import auth

BODY = {"profile": "avatar", "filename": "a.png", "content_type": "image/png", "size": 100}


def limited_client(settings: Settings, aws: AwsClients, **limits: Any) -> FlaskClient:
    return create_app(settings.model_dump() | limits, clients=aws).test_client()


def test_a_burst_of_presign_requests_gets_429_with_retry_after(
    settings: Settings, aws: AwsClients
) -> None:
    client = limited_client(settings, aws, upload_rate_limit="5/minute")
    alice = auth("alice")
    statuses = [client.post("/v1/uploads", json=BODY, headers=alice).status_code
                for _ in range(8)]
    assert statuses == [201] * 5 + [429] * 3
    refused = client.post("/v1/uploads", json=BODY, headers=alice)
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Limits are per user, and reading is not limited.
    assert client.post("/v1/uploads", json=BODY, headers=auth("bob")).status_code == 201
    assert client.get("/v1/uploads", headers=alice).status_code == 200


def test_successful_responses_carry_no_retry_after(settings: Settings,
                                                   aws: AwsClients) -> None:
    client = limited_client(settings, aws)
    assert "Retry-After" not in client.post("/v1/uploads", json=BODY,
                                             headers=auth("alice")).headers


def test_too_many_unfinished_uploads_get_429_until_one_lapses(
    settings: Settings, aws: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = limited_client(settings, aws, max_pending_uploads=3)
    alice = auth("alice")
    for _ in range(3):
        assert client.post("/v1/uploads", json=BODY, headers=alice).status_code == 201
    refused = client.post("/v1/uploads", json=BODY, headers=alice)
    assert refused.status_code == 429
    assert refused.get_json()["code"] == "too_many_pending"
    assert 1 <= int(refused.headers["Retry-After"]) <= settings.presign_ttl + 1
    assert client.post("/v1/uploads", json=BODY, headers=auth("bob")).status_code == 201
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(minutes=6))
    assert client.post("/v1/uploads", json=BODY, headers=alice).status_code == 201


def test_uploads_that_received_their_file_stop_counting(
    settings: Settings, aws: AwsClients
) -> None:
    app = create_app(settings.model_dump() | {"max_pending_uploads": 1}, clients=aws)
    client = app.test_client()
    alice = auth("alice")
    first = client.post("/v1/uploads", json=BODY, headers=alice).get_json()["id"]
    assert client.post("/v1/uploads", json=BODY, headers=alice).status_code == 429
    records = app.extensions["broker"].uploads.records
    pending = records.get(first)
    records.transition(pending, "processing", allowed_from=("pending",))
    assert client.post("/v1/uploads", json=BODY, headers=alice).status_code == 201
