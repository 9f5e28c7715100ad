"""Presigned PUTs (for Uppy's signRequest) and CORS for apps on other origins."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from flask.testing import FlaskClient

from broker.aws.clients import AwsClients
from broker.settings import Settings
from broker.validator.events import ObjectRef
from broker.validator.judge import Validator
from broker.web import create_app
from tests.samples import auth, png_bytes

BODY = {"profile": "avatar", "filename": "me.png", "content_type": "image/png", "size": 100,
        "method": "PUT"}


def test_a_put_url_signs_key_type_and_length(client: FlaskClient) -> None:
    reply = client.post("/v1/uploads", json=BODY, headers=auth("alice")).get_json()
    upload = reply["upload"]
    assert upload["method"] == "PUT"
    assert upload["fields"] == {}
    assert upload["headers"] == {"Content-Type": "image/png"}
    url = urlparse(upload["url"])
    query = parse_qs(url.query)
    assert url.path.endswith(f"/incoming/{reply['id']}")
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]
    assert query["X-Amz-Expires"] == ["300"]


def test_a_put_upload_needs_no_upload_id_metadata(client: FlaskClient, aws: AwsClients,
                                                  validator: Validator) -> None:
    png = png_bytes()
    upload_id = client.post("/v1/uploads", json=BODY | {"size": len(png)},
                            headers=auth("alice")).get_json()["id"]
    aws.s3.put_object(Bucket="uploads-incoming", Key=f"incoming/{upload_id}", Body=png,
                      ContentType="image/png")
    assert validator.process(ObjectRef("uploads-incoming", f"incoming/{upload_id}")) \
        == "accepted"


def cors_client(settings: Settings, aws: AwsClients) -> Any:
    configured = settings.model_copy(update={"allowed_origins": ("https://app.example.test",)})
    return create_app(configured.model_dump(), clients=aws).test_client()


def test_allowed_origins_may_call_the_api_with_tokens_or_cookies(settings: Settings,
                                                                  aws: AwsClients) -> None:
    client = cors_client(settings, aws)
    preflight = client.options("/v1/uploads", headers={
        "Origin": "https://app.example.test", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.test"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    reply = client.post("/v1/uploads", json=BODY, headers=auth("alice") | {
        "Origin": "https://app.example.test"})
    assert reply.status_code == 201
    assert reply.headers["Access-Control-Allow-Origin"] == "https://app.example.test"
    # An allowed origin may send the session cookie (the embedded uploader's cookie mode).
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"


def test_other_origins_get_no_cors_headers(settings: Settings, aws: AwsClients) -> None:
    client = cors_client(settings, aws)
    preflight = client.options("/v1/uploads", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Credentials" not in preflight.headers
