"""The attack suite: every class of hostile request gets a 4xx problem with a stable code,
and changes nothing. Several samples per class, because an attacker has many."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import Client

from broker.common import clock
from broker.runtimes.push_receiver import PushReceiver
from broker.validator.judge import Validator
from tests.samples import SECRET, auth

GOOD_UPLOAD = {"profile": "avatar", "filename": "me.png", "content_type": "image/png",
               "size": 1000}


def problem_of(reply: Any, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.get_data(as_text=True)
    assert reply.mimetype == "application/problem+json"
    body: dict[str, Any] = reply.get_json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys()
    return body


def nothing_created(client: FlaskClient, user: str = "alice") -> bool:
    return client.get("/v1/uploads", headers=auth(user)).get_json()["items"] == []


def nested(depth: int, opener: str, closer: str, leaf: str = "1") -> str:
    return opener * depth + leaf + closer * depth


@pytest.mark.parametrize("body", [
    nested(100_000, "[", "]"),
    '{"profile": ' + nested(50_000, '{"a":', "}") + "}",
    '{"profile": "avatar", "filename": ' + nested(40, "[", "]") + "}",
    nested(5_000, '[{"x":', "}]"),
], ids=["arrays", "objects", "moderately-deep-field", "mixed"])
def test_deeply_nested_json_is_a_400(client: FlaskClient, body: str) -> None:
    reply = client.post("/v1/uploads", data=body, content_type="application/json",
                        headers=auth("alice"))
    assert problem_of(reply, 400)["code"] == "malformed_json"
    assert nothing_created(client)


# Arabic-Indic, Extended Arabic-Indic, Devanagari and fullwidth digits; a superscript.
OTHER_DIGITS = ["\u0661\u0660", "\u06f1\u06f0", "\u0967\u0966", "\uff11\uff10", "\u00b2"]


@pytest.mark.parametrize("digits", [*OTHER_DIGITS, "10\u0660", "1_0", " 10", "10 ", "+10",
                                    "9" * 40])
def test_numbers_in_other_scripts_are_refused_in_the_query(client: FlaskClient,
                                                           digits: str) -> None:
    reply = client.get("/v1/uploads", query_string={"limit": digits}, headers=auth("alice"))
    assert problem_of(reply, 422)["code"] == "invalid_limit"


@pytest.mark.parametrize("digits", [*OTHER_DIGITS, "1e3", "-5", "9" * 40])
def test_numbers_in_other_scripts_are_refused_in_companion_metadata(
        client: FlaskClient, digits: str) -> None:
    reply = client.get("/s3/params", headers=auth("alice"), query_string={
        "filename": "me.png", "type": "image/png", "metadata[profile]": "avatar",
        "metadata[size]": digits})
    assert problem_of(reply, 422)["code"] == "validation_error"
    assert nothing_created(client)


def signed(**claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


# Collected minutes before the tests run (the whole suite in between): an hour of margin.
NOW = int(clock.now().timestamp()) + 3600


@pytest.mark.parametrize("claims", [
    {"sub": "alice", "exp": 2**62},
    {"sub": "alice", "exp": 10**18},
    {"sub": "alice", "exp": 1e300},
    {"sub": "alice", "exp": NOW + 10 * 365 * 24 * 3600},
    {"sub": "a" * 256, "exp": NOW + 60},
    {"sub": "a" * 100_000, "exp": NOW + 60},
    {"sub": "alice\x00bob", "exp": NOW + 60},
    {"sub": "alice\n", "exp": NOW + 60},
    {"sub": 12345, "exp": NOW + 60},
    {"sub": ["alice"], "exp": NOW + 60},
], ids=["exp-2^62", "exp-1e18", "exp-float-1e300", "exp-10-years", "sub-256", "sub-100k",
        "sub-nul", "sub-newline", "sub-number", "sub-list"])
def test_validly_signed_tokens_with_absurd_claims_are_refused(
        client: FlaskClient, claims: dict[str, Any]) -> None:
    for method, path in (("post", "/v1/uploads"), ("get", "/v1/uploads"),
                         ("post", "/v1/session")):
        reply = getattr(client, method)(path, json=GOOD_UPLOAD, headers=signed(**claims))
        assert problem_of(reply, 401)["code"] == "invalid_token"


def test_the_longest_allowed_subject_works(client: FlaskClient) -> None:
    headers = signed(sub="a" * 255, exp=NOW + 60)
    assert client.post("/v1/uploads", json=GOOD_UPLOAD, headers=headers).status_code == 201


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize("cursor", [
    cursor_of({"id": "up_x"}),
    cursor_of({"id": "up_x", "listed_owner": "bob", "created_key": "2026-01-01T00:00:00Z#up_x"}),
    cursor_of({"id": "up_x", "listed_owner": "alice", "created_key": "whatever"}),
    cursor_of({"id": "up_x", "listed_owner": "alice",
               "created_key": "2026-01-01T00:00:00Z#up_x", "extra": "1"}),
    cursor_of({"id": 1, "listed_owner": "alice", "created_key": "x#1"}),
    cursor_of(["id", "listed_owner"]),
    cursor_of("a string"),
    base64.urlsafe_b64encode(nested(10_000, "[", "]").encode()).decode(),
], ids=["too-few-keys", "another-owner", "bad-sort-key", "extra-key", "non-string",
        "list", "string", "deeply-nested"])
def test_a_cursor_that_decodes_to_the_wrong_shape_is_a_422(client: FlaskClient,
                                                          cursor: str) -> None:
    client.post("/v1/uploads", json=GOOD_UPLOAD, headers=auth("alice"))
    reply = client.get("/v1/uploads", query_string={"cursor": cursor}, headers=auth("alice"))
    assert problem_of(reply, 422)["code"] == "invalid_cursor"


TOKEN = "push-token-0123456789abcdef"


@pytest.mark.parametrize("body", [
    b"[]", b"null", b"42", b'"Records"', b'{"Records": {}}', b'{"Records": [1]}',
    b'{"Records": [null]}', b'{"Records": [{"eventName": "ObjectCreated:Put", "s3": []}]}',
    b'{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": 5}, '
    b'"object": {"key": "incoming/x"}}}]}',
    b'{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, '
    b'"object": {"key": 7}}}]}',
    b'{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, '
    b'"object": {"key": "k", "size": "huge"}}}]}',
    nested(100_000, "[", "]").encode(),
    b"\xff\xfe\x00garbage", b"{", b"",
], ids=lambda b: b[:24].decode("latin-1"))
def test_the_push_receiver_answers_400_json_to_any_malformed_body(
        validator: Validator, body: bytes) -> None:
    receiver = Client(PushReceiver(validator, TOKEN))
    reply = receiver.post(f"/events/{TOKEN}", data=body)
    assert reply.status_code == 400, reply.get_data(as_text=True)
    assert reply.mimetype == "application/json"
    assert "error" in json.loads(reply.get_data())


class Unreachable:
    """A client whose every call fails below HTTP: a reset, a timeout, no route."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def fail(**kwargs: Any) -> Any:
            raise self.error
        return fail


SDK_FAULTS = [
    EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
    ConnectionClosedError(endpoint_url="http://127.0.0.1:1"),
]


@pytest.mark.parametrize("error", SDK_FAULTS, ids=lambda e: type(e).__name__)
def test_an_sdk_fault_below_http_is_a_503_with_retry_after(
        app: Flask, error: Exception) -> None:
    uploads = app.extensions["broker"].uploads
    uploads.records.client = Unreachable(error)
    client = app.test_client()
    for reply in (client.post("/v1/uploads", json=GOOD_UPLOAD, headers=auth("alice")),
                  client.get("/v1/uploads", headers=auth("alice"))):
        assert problem_of(reply, 503)["code"] == "storage_unavailable"
        assert reply.headers["Retry-After"].isdigit()


@pytest.mark.parametrize("error", SDK_FAULTS, ids=lambda e: type(e).__name__)
def test_an_sdk_fault_in_the_validator_is_an_outage_to_retry(
        validator: Validator, error: Exception) -> None:
    from broker.common.errors import StorageError
    from broker.storage import Storage
    from broker.validator.events import ObjectRef

    faulty = Validator(validator.settings, validator.profiles, validator.records,
                       Storage(Unreachable(error)), validator.scanner)  # type: ignore[arg-type]
    with pytest.raises(StorageError):
        faulty.process(ObjectRef("uploads-incoming", "incoming/up_" + "0" * 32))


def test_a_failed_upload_of_a_rewritten_file_is_an_outage_to_retry(aws: Any) -> None:
    from broker.common.errors import StorageError
    from broker.storage import Delivery, Storage

    delivery = Delivery("image/png", "inline", "public")
    failing = Storage(aws.s3)
    with pytest.raises(StorageError):  # boto3 wraps this one in S3UploadFailedError
        failing.upload(iter([b"x"]), "no-such-bucket", "k", delivery, {})


@pytest.mark.parametrize("claims", [
    {"sub": "alice", "exp": NOW + 60, "nbf": 2**62},
    {"sub": "alice", "exp": NOW + 60, "iat": 2**62},
    {"sub": "alice", "exp": NOW + 60, "nbf": "soon"},
    {"sub": "alice", "exp": "later"},
    {"sub": "alice", "exp": None},
], ids=["nbf-far", "iat-far", "nbf-text", "exp-text", "exp-null"])
def test_tokens_with_absurd_times_are_refused(client: FlaskClient,
                                              claims: dict[str, Any]) -> None:
    reply = client.get("/v1/uploads", headers=signed(**claims))
    assert problem_of(reply, 401)["code"] in ("invalid_token", "token_expired")


def test_no_credentials_to_sign_with_is_a_503(app: Flask, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    from botocore.exceptions import NoCredentialsError

    s3 = app.extensions["broker"].uploads.s3

    def no_credentials(*args: Any, **kwargs: Any) -> Any:
        raise NoCredentialsError

    monkeypatch.setattr(s3, "generate_presigned_post", no_credentials)
    reply = app.test_client().post("/v1/uploads", json=GOOD_UPLOAD, headers=auth("alice"))
    assert problem_of(reply, 503)["code"] == "storage_unavailable"


def test_an_oversized_body_is_refused_before_it_is_read(client: FlaskClient) -> None:
    body = b'{"profile": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    reply = client.post("/v1/uploads", data=body, content_type="application/json",
                        headers=auth("alice"))
    assert problem_of(reply, 413)["code"] == "request_entity_too_large"
    assert nothing_created(client)


def test_readiness_says_ready_when_storage_and_records_answer(client: FlaskClient) -> None:
    reply = client.get("/readyz")
    assert reply.status_code == 200
    assert reply.get_json() == {"status": "ready",
                                "checks": {"storage": "ok", "records": "ok"}}


@pytest.mark.parametrize("service", ["storage", "records"])
def test_readiness_names_the_service_that_does_not_answer(app: Flask, service: str) -> None:
    uploads = app.extensions["broker"].uploads
    down = Unreachable(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    if service == "storage":
        uploads.storage.client = down
    else:
        uploads.records.client = down
    reply = app.test_client().get("/readyz")
    assert reply.status_code == 503
    body = reply.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"][service].startswith("unreachable")
    assert [v for k, v in body["checks"].items() if k != service] == ["ok"]
