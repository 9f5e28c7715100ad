"""Live status without a polling loop: `GET /v1/uploads/{id}?wait=N` answers as soon
as the status changes (or at the limit), on the whole stack over real HTTP."""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.integration.conftest import Running
from tests.samples import auth, png_bytes, send_upload

pytestmark = pytest.mark.integration


def long_poll(running: Running, upload_id: str, wait: int, user: str
              ) -> tuple[dict[str, object], float]:
    started = time.monotonic()
    reply = requests.get(f"{running.url}/v1/uploads/{upload_id}", params={"wait": wait},
                         headers=auth(user), timeout=wait + 30)
    assert reply.status_code == 200, reply.text
    return reply.json(), time.monotonic() - started


def test_a_waiting_request_learns_the_verdict_without_polling(running: Running) -> None:
    upload_id = send_upload(running.url, "long-poll", png_bytes())
    seen = []
    deadline = time.monotonic() + 30
    while not seen or seen[-1] in ("pending", "processing"):
        record, _ = long_poll(running, upload_id, 20, "long-poll")
        seen.append(str(record["status"]))
        assert time.monotonic() < deadline
    assert seen[-1] == "ready"
    assert len(seen) <= 3  # one answer per change at most: pending, processing, ready


def test_a_settled_upload_is_answered_at_once(running: Running) -> None:
    upload_id = send_upload(running.url, "long-poll", png_bytes())
    while long_poll(running, upload_id, 20, "long-poll")[0]["status"] != "ready":
        pass
    record, took = long_poll(running, upload_id, 20, "long-poll")
    assert record["status"] == "ready"
    assert took < 5  # not held for the 20 seconds asked


def test_an_unchanged_upload_is_answered_at_the_limit(running: Running) -> None:
    created = requests.post(f"{running.url}/v1/uploads", headers=auth("long-poll"),
                            timeout=30, json={"profile": "avatar", "filename": "a.png",
                                              "content_type": "image/png", "size": 10})
    record, took = long_poll(running, created.json()["id"], 1, "long-poll")
    assert record["status"] == "pending"  # nothing was sent
    assert took >= 1


@pytest.mark.parametrize("wait", ["26", "-1", "soon", "1.5", ""])
def test_a_wait_out_of_range_is_refused_by_name(running: Running, wait: str) -> None:
    created = requests.post(f"{running.url}/v1/uploads", headers=auth("long-poll"),
                            timeout=30, json={"profile": "avatar", "filename": "a.png",
                                              "content_type": "image/png", "size": 10})
    reply = requests.get(f"{running.url}/v1/uploads/{created.json()['id']}",
                         params={"wait": wait}, headers=auth("long-poll"), timeout=30)
    assert reply.status_code == 422
    assert reply.json()["code"] == "invalid_wait"


def test_waiting_on_someone_elses_upload_is_not_found_at_once(running: Running) -> None:
    upload_id = send_upload(running.url, "long-poll", png_bytes())
    started = time.monotonic()
    reply = requests.get(f"{running.url}/v1/uploads/{upload_id}", params={"wait": 20},
                         headers=auth("mallory"), timeout=30)
    assert reply.status_code == 404
    assert time.monotonic() - started < 5


def events_of(running: Running, upload_id: str, user: str) -> list[dict[str, object]]:
    """Read the server-sent event stream to its end, as EventSource would."""
    events = []
    with requests.get(f"{running.url}/v1/uploads/{upload_id}/events", headers=auth(user),
                      stream=True, timeout=60) as reply:
        assert reply.status_code == 200
        assert reply.headers["Content-Type"].startswith("text/event-stream")
        for line in reply.iter_lines(decode_unicode=True):
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    return events


def test_the_event_stream_sends_each_change_until_the_verdict(running: Running) -> None:
    upload_id = send_upload(running.url, "event-stream", png_bytes())
    events = events_of(running, upload_id, "event-stream")
    statuses = [e["status"] for e in events]
    assert statuses[-1] == "ready"  # the stream ends once settled
    assert len(statuses) == len(set(statuses))  # each state once, in order
    assert set(statuses) <= {"pending", "processing", "ready"}
    assert events[-1]["url"]


def test_the_event_stream_of_someone_elses_upload_is_not_found(running: Running) -> None:
    upload_id = send_upload(running.url, "event-stream", png_bytes())
    reply = requests.get(f"{running.url}/v1/uploads/{upload_id}/events",
                         headers=auth("mallory"), timeout=30)
    assert reply.status_code == 404
    assert reply.headers["Content-Type"] == "application/problem+json"
