"""API v1 as a client sees it: statuses, bodies and problem codes."""

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from broker.aws.clients import AwsClients
from tests.samples import auth, png_bytes

MIB = 1024 * 1024


def create(client: FlaskClient, user: str = "alice", headers: dict[str, str] | None = None,
           **body: Any) -> Any:
    payload = {"profile": "avatar", "filename": "me.png", "content_type": "image/png",
               "size": 1234} | body
    return client.post("/v1/uploads", json=payload, headers=headers or auth(user))


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["code"] == code
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body


def test_create_answers_201_with_a_pending_upload_and_a_post(client: FlaskClient) -> None:
    response = create(client)
    assert response.status_code == 201
    body = response.get_json()
    assert body["id"].startswith("up_")
    assert body["status"] == "pending"
    assert body["profile"] == "avatar"
    assert body["upload"]["method"] == "POST"
    assert body["upload"]["url"]
    assert response.headers["Location"] == f"/v1/uploads/{body['id']}"


def test_behind_a_path_prefix_the_location_keeps_the_prefix(client: FlaskClient) -> None:
    response = client.post("/v1/uploads", headers=auth("alice"),
                           environ_overrides={"SCRIPT_NAME": "/files"},
                           json={"profile": "avatar", "filename": "me.png",
                                 "content_type": "image/png", "size": 1234})
    assert response.status_code == 201
    assert response.headers["Location"] == f"/files/v1/uploads/{response.get_json()['id']}"


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("/../", "upload.png"), ("\u202e\u200f", "upload.png"), ("..\\..\\me.png", "me.png"),
     ("CON.png", "_CON.png"), ("shell.php.png", "shell.php.png")],
)
def test_filenames_are_stored_clean(client: FlaskClient, raw: str, stored: str) -> None:
    upload_id = create(client, filename=raw).get_json()["id"]
    record = client.get(f"/v1/uploads/{upload_id}", headers=auth("alice")).get_json()
    assert record["filename"] == stored


def test_a_new_upload_reads_back_as_pending(client: FlaskClient) -> None:
    upload_id = create(client, filename="My Photo.png").get_json()["id"]
    record = client.get(f"/v1/uploads/{upload_id}", headers=auth("alice")).get_json()
    assert record["status"] == "pending"
    assert record["filename"] == "My Photo.png"
    assert record["visibility"] == "public"
    assert record["url"] is None
    assert record["download_url"] is None
    assert record["reason"] is None
    assert record["size"] == 1234


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"profile": "banner"}, "unknown_profile"),
        ({"content_type": "text/html"}, "type_not_allowed"),
        ({"filename": "me.exe"}, "extension_not_allowed"),
        ({"size": 50 * MIB}, "too_large"),
        ({"size": 0}, "empty"),
        ({"filename": "   "}, "invalid_filename"),
        ({"filename": "photo.jpg.php"}, "extension_not_allowed"),
        ({"filename": "photo.png\u202egpj.exe"}, "extension_not_allowed"),
    ],
)
def test_refused_uploads_get_422_with_a_code(client: FlaskClient, body: dict[str, Any],
                                              code: str) -> None:
    assert_problem(create(client, **body), 422, code)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"size": -1}, "size"),
        ({"size": "12"}, "size"),
        ({"size": True}, "size"),
        ({"profile": ""}, "profile"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_malformed_fields_get_422_naming_the_field(client: FlaskClient, body: dict[str, Any],
                                                    field: str) -> None:
    problem = assert_problem(create(client, **body), 422, "validation_error")
    assert field in [e["field"] for e in problem["errors"]]


def test_a_missing_field_is_named(client: FlaskClient) -> None:
    response = client.post("/v1/uploads", json={"profile": "avatar"}, headers=auth("alice"))
    fields = [e["field"] for e in assert_problem(response, 422, "validation_error")["errors"]]
    assert {"filename", "content_type", "size"} <= set(fields)


def test_malformed_json_is_400(client: FlaskClient) -> None:
    response = client.post("/v1/uploads", data="{not json", headers=auth("alice"),
                           content_type="application/json")
    assert_problem(response, 400, "malformed_json")


def test_a_json_array_is_400(client: FlaskClient) -> None:
    response = client.post("/v1/uploads", json=[1, 2], headers=auth("alice"))
    assert_problem(response, 400, "malformed_json")


def test_a_form_body_is_415(client: FlaskClient) -> None:
    response = client.post("/v1/uploads", data={"profile": "avatar"}, headers=auth("alice"))
    assert_problem(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_token"),
        ({"Authorization": "Basic YWxpY2U6eA=="}, "invalid_token"),
        ({"Authorization": "Bearer nonsense"}, "invalid_token"),
        (auth("alice", ttl=-300), "token_expired"),
    ],
)
def test_calls_without_a_valid_token_get_401(client: FlaskClient, headers: dict[str, str],
                                              code: str) -> None:
    for response in (
        client.post("/v1/uploads", json={}, headers=headers),
        client.get("/v1/uploads", headers=headers),
        client.get("/v1/uploads/up_" + "0" * 32, headers=headers),
    ):
        assert_problem(response, 401, code)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_another_owners_upload_is_404_never_403(client: FlaskClient) -> None:
    upload_id = create(client, "alice").get_json()["id"]
    for response in (
        client.get(f"/v1/uploads/{upload_id}", headers=auth("bob")),
        client.get(f"/v1/uploads/{upload_id}/download", headers=auth("bob")),
        client.delete(f"/v1/uploads/{upload_id}", headers=auth("bob")),
    ):
        assert_problem(response, 404, "not_found")
    assert client.get(f"/v1/uploads/{upload_id}", headers=auth("alice")).status_code == 200


@pytest.mark.parametrize("upload_id", ["up_" + "0" * 32, "nope", "..%2F..%2Fetc"])
def test_unknown_ids_are_404(client: FlaskClient, upload_id: str) -> None:
    assert_problem(client.get(f"/v1/uploads/{upload_id}", headers=auth("alice")), 404,
                   "not_found")


def test_download_before_ready_is_409(client: FlaskClient) -> None:
    upload_id = create(client).get_json()["id"]
    response = client.get(f"/v1/uploads/{upload_id}/download", headers=auth("alice"))
    assert assert_problem(response, 409, "not_ready")["upload_status"] == "pending"


def test_listing_is_the_callers_own_newest_first_and_paginated(client: FlaskClient,
                                                               monkeypatch: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from broker.common import clock

    alice = auth("alice")  # minted before the clock is turned
    real_now = clock.now
    start = datetime.now(UTC) - timedelta(minutes=30)
    ids = []
    for minute in range(5):
        monkeypatch.setattr(clock, "now", lambda m=minute: start + timedelta(minutes=m))
        ids.append(create(client, headers=alice, filename=f"p{minute}.png").get_json()["id"])
    create(client, "bob")
    monkeypatch.setattr(clock, "now", real_now)

    first = client.get("/v1/uploads?limit=2", headers=auth("alice")).get_json()
    assert [u["id"] for u in first["items"]] == ids[::-1][:2]
    seen = [u["id"] for u in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get(f"/v1/uploads?limit=2&cursor={cursor}", headers=auth("alice"))
        seen += [u["id"] for u in page.get_json()["items"]]
        cursor = page.get_json()["next_cursor"]
    assert seen == ids[::-1]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "cursor=%%%",
                                   "cursor=eyJ4IjogMX0="])
def test_bad_listing_parameters_are_422(client: FlaskClient, query: str) -> None:
    response = client.get(f"/v1/uploads?{query}", headers=auth("alice"))
    assert response.status_code == 422
    assert response.get_json()["code"] in {"invalid_limit", "invalid_cursor"}


def test_delete_removes_the_upload_from_reads_and_listings(client: FlaskClient,
                                                           aws: AwsClients) -> None:
    upload_id = create(client).get_json()["id"]
    aws.s3.put_object(Bucket="uploads-incoming", Key=f"incoming/{upload_id}", Body=b"x")
    assert client.delete(f"/v1/uploads/{upload_id}", headers=auth("alice")).status_code == 204
    assert client.get(f"/v1/uploads/{upload_id}", headers=auth("alice")).status_code == 404
    assert client.get("/v1/uploads", headers=auth("alice")).get_json()["items"] == []
    assert "Contents" not in aws.s3.list_objects_v2(Bucket="uploads-incoming",
                                                      Prefix="incoming/")
    assert client.delete(f"/v1/uploads/{upload_id}", headers=auth("alice")).status_code == 404


def test_profiles_are_public_and_list_their_limits(client: FlaskClient) -> None:
    profiles = {p["name"]: p for p in client.get("/v1/profiles").get_json()["profiles"]}
    assert profiles["avatar"]["max_size"] == 5 * MIB
    assert profiles["avatar"]["types"]["image/jpeg"] == ["jpg", "jpeg"]
    assert profiles["document"]["visibility"] == "private"


def test_health_openapi_and_page(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert {"/v1/uploads", "/v1/uploads/{upload_id}", "/v1/uploads/{upload_id}/download",
            "/v1/profiles", "/v1/session"} <= document["paths"].keys()
    assert "CreateUpload" in document["components"]["schemas"]
    page = client.get("/")
    assert page.status_code == 200
    assert b'id="uploads"' in page.data
    assert b"video: private, up to 10 GiB" in page.data  # each profile's limit, readable
    assert b"avatar: public, up to 5 MiB" in page.data
    with client.get("/static/uploader.js") as script:
        assert script.status_code == 200


def test_unknown_routes_and_methods_are_problems_too(client: FlaskClient) -> None:
    assert_problem(client.get("/v2/nothing"), 404, "not_found")
    response = client.put("/v1/uploads", headers=auth("alice"))
    assert_problem(response, 405, "method_not_allowed")


def test_a_session_cookie_authenticates_same_origin_calls(client: FlaskClient) -> None:
    response = client.post("/v1/session", headers=auth("alice"))
    assert response.status_code == 201
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" in cookie  # not local development
    assert client.get("/v1/uploads").status_code == 200
    body = {"profile": "avatar", "filename": "a.png", "content_type": "image/png", "size": 9}
    same_origin = client.post("/v1/uploads", json=body, headers={"Origin": "http://localhost"})
    assert same_origin.status_code == 201
    foreign = client.post("/v1/uploads", json=body, headers={"Origin": "https://evil.test"})
    assert_problem(foreign, 403, "origin_not_allowed")
    no_origin = client.post("/v1/uploads", json=body)
    assert_problem(no_origin, 403, "origin_not_allowed")
    assert client.delete("/v1/session").status_code == 204
    assert_problem(client.get("/v1/uploads"), 401, "missing_token")


def test_storage_outage_is_503_with_retry_after(client: FlaskClient, aws: AwsClients) -> None:
    aws.dynamodb.delete_table(TableName="uploads")
    response = create(client)
    assert_problem(response, 503, "storage_unavailable")
    assert response.headers["Retry-After"]


def test_a_png_is_small_enough_for_the_avatar_profile() -> None:
    assert len(png_bytes()) < 5 * MIB


def test_a_long_poll_wakes_for_a_change_landing_between_its_read_and_its_wait(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from broker.domain.records import changes

    monkeypatch.setattr(changes, "RECHECK", 40.0)  # the first re-read after 5 s
    uploads = app.extensions["broker"].uploads
    record = uploads.create("alice", "avatar", "a.png", "image/png", 10).record
    real_get, reads = type(uploads).get, []

    def get_then_judged(self: Any, owner: str, upload_id: str) -> Any:
        seen = real_get(self, owner, upload_id)
        if not reads:  # the verdict lands just after the waiter's first read
            self.records.transition(record, "processing", allowed_from=("pending",))
        reads.append(seen.status)
        return seen

    monkeypatch.setattr(type(uploads), "get", get_then_judged)
    started = time.monotonic()
    assert uploads.wait_for_change("alice", record.id, 10).status == "processing"
    assert time.monotonic() - started < 1  # woken, not found at the next re-check


def test_a_long_poll_sees_a_change_made_by_another_process(
        app: Flask, aws: AwsClients, monkeypatch: pytest.MonkeyPatch) -> None:
    """No wake-up comes from a validator elsewhere: the waiter re-reads the record, soon
    at first (an eighth of the re-check interval), then less often."""
    import threading
    import time

    from broker.domain.records import changes

    monkeypatch.setattr(changes, "RECHECK", 8.0)  # re-reads after 1, 3, 7, 15 s
    uploads = app.extensions["broker"].uploads
    record = uploads.create("alice", "avatar", "a.png", "image/png", 10).record
    monkeypatch.setattr(changes, "changed", lambda upload_id: None)  # as in another process
    threading.Timer(0.3, lambda: uploads.records.transition(
        record, "processing", allowed_from=("pending",))).start()
    started = time.monotonic()
    seen = uploads.wait_for_change("alice", record.id, 10)
    assert seen.status == "processing"
    assert time.monotonic() - started < 4  # at the first re-read, not after the 8 s


@pytest.mark.parametrize(("filename", "told", "taken_as"), [
    ("IMG_4242.HEIC", "application/octet-stream", "image/heic"),  # Chromium on Linux
    ("photo.heif", "application/octet-stream", "image/heif"),
    ("cat.avif", "application/octet-stream", "image/avif"),
    ("me.jpeg", "Application/Octet-Stream", "image/jpeg"),
])
def test_a_file_whose_type_the_browser_cannot_tell_is_taken_by_its_extension(
        client: FlaskClient, filename: str, told: str, taken_as: str) -> None:
    reply = client.post("/v1/uploads", headers=auth("alice"), json={
        "profile": "avatar", "filename": filename, "content_type": told, "size": 1000})
    assert reply.status_code == 201, reply.get_json()
    upload_id = reply.get_json()["id"]
    view = client.get(f"/v1/uploads/{upload_id}", headers=auth("alice")).get_json()
    assert view["declared_content_type"] == taken_as


def test_an_untold_type_with_an_unknown_extension_is_still_refused(
        client: FlaskClient) -> None:
    reply = client.post("/v1/uploads", headers=auth("alice"), json={
        "profile": "avatar", "filename": "setup.exe",
        "content_type": "application/octet-stream", "size": 1000})
    assert reply.status_code == 422
    assert reply.get_json()["code"] == "type_not_allowed"
