"""Uppy Companion's /s3/params, as Uppy 6's AwsS3 plugin calls it."""

from __future__ import annotations

import base64
import json

import pytest
from flask.testing import FlaskClient

from tests.samples import auth

QUERY = "filename=me.png&type=image%2Fpng&metadata%5Bprofile%5D=avatar&metadata%5Bname%5D=me.png"


def test_params_answer_like_companion_with_a_slash_terminated_url(client: FlaskClient) -> None:
    reply = client.get(f"/s3/params?{QUERY}", headers=auth("alice"))
    assert reply.status_code == 200
    body = reply.get_json()
    assert body["method"] == "POST"
    assert body["url"].endswith("/")
    assert body["fields"]["key"].startswith("incoming/up_")
    assert body["expires"] == 300
    conditions = json.loads(base64.b64decode(body["fields"]["policy"]))["conditions"]
    # No size from Uppy: the profile's range bounds the POST; the validator checks the rest.
    assert ["content-length-range", 1, 5 * 1024 * 1024] in conditions
    listing = client.get("/v1/uploads", headers=auth("alice")).get_json()["items"]
    assert listing[0]["filename"] == "me.png"
    assert listing[0]["size"] is None


def test_a_declared_size_is_pinned(client: FlaskClient) -> None:
    body = client.get(f"/s3/params?{QUERY}&metadata%5Bsize%5D=1234",
                      headers=auth("alice")).get_json()
    conditions = json.loads(base64.b64decode(body["fields"]["policy"]))["conditions"]
    assert ["content-length-range", 1234, 1234] in conditions


def test_the_session_cookie_authenticates_uppy(client: FlaskClient) -> None:
    assert client.get(f"/s3/params?{QUERY}").status_code == 401
    client.post("/v1/session", headers=auth("alice"))
    # What a browser sends with Uppy's same-origin fetch.
    assert client.get(f"/s3/params?{QUERY}",
                      headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "same-site", "Origin": "https://sibling.example.test"},
    {"Origin": "null"},
    {},  # a request that shows no origin at all
], ids=["cross-site", "cross-site-with-origin", "same-site-sibling", "opaque-origin",
        "no-evidence"])
def test_a_cross_site_get_with_the_cookie_creates_nothing(
        client: FlaskClient, headers: dict[str, str]) -> None:
    client.post("/v1/session", headers=auth("alice"))
    reply = client.get(f"/s3/params?{QUERY}", headers=headers)
    assert reply.status_code == 403
    assert reply.json is not None
    assert reply.json["code"] == "origin_not_allowed"
    listing = client.get("/v1/uploads", headers=auth("alice")).json
    assert listing is not None
    assert listing["items"] == []


def test_what_the_profile_refuses_is_refused(client: FlaskClient) -> None:
    for query, code in [
        ("filename=a.html&type=text%2Fhtml&metadata%5Bprofile%5D=avatar", "type_not_allowed"),
        ("filename=me.png&type=image%2Fpng", "unknown_profile"),
        ("filename=me.png&type=image%2Fpng&metadata%5Bprofile%5D=avatar"
         "&metadata%5Bsize%5D=99999999", "too_large"),
        (f"{QUERY}&metadata%5Bsize%5D=big", "validation_error"),
    ]:
        reply = client.get(f"/s3/params?{query}", headers=auth("alice"))
        assert reply.status_code == 422
        assert reply.get_json()["code"] == code


def test_cross_site_requests_do_not_use_up_the_users_rate_limit(client: FlaskClient) -> None:
    client.post("/v1/session", headers=auth("alice"))
    for _ in range(80):  # more than the default 60 a minute
        assert client.get(f"/s3/params?{QUERY}",
                          headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.get(f"/s3/params?{QUERY}",
                      headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_multipart_calls_with_the_session_cookie_from_another_site_are_refused(
        client: FlaskClient) -> None:
    client.post("/v1/session", headers=auth("alice"))
    start = {"filename": "big.txt", "type": "text/plain", "metadata": {"profile": "document"}}
    refused = client.post("/s3/multipart", json=start,
                          headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    created = client.post("/s3/multipart", json=start, headers={"Origin": "http://localhost"})
    assert created.status_code == 200, created.get_json()
    key, upload_id = created.get_json()["key"], created.get_json()["uploadId"]
    for path in (f"/s3/multipart/{upload_id}/1?key={key}",
                 f"/s3/multipart/{upload_id}/batch?key={key}&partNumbers=1,2"):
        assert client.get(path, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        assert client.get(path, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert client.delete(f"/s3/multipart/{upload_id}?key={key}",
                         headers={"Origin": "https://evil.example"}).status_code == 403
