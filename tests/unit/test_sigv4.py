"""The hot-path signers sign exactly as botocore does, byte for byte, at the same moment:
request headers for DynamoDB's JSON protocol and S3 POST policies, with and without a
session token, across a change of day and of credentials."""

from __future__ import annotations

import datetime
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import NoCredentialsError

from broker.aws.sigv4 import Signer
from broker.domain.presign import PostSigner

MOMENTS = [datetime.datetime(2026, 12, 1, 16, 11, 19), datetime.datetime(2026, 12, 1, 23, 59, 59),
           datetime.datetime(2026, 12, 2, 0, 0, 1)]  # the last is a new day: a new key


def _freeze(monkeypatch: pytest.MonkeyPatch, moment: datetime.datetime) -> float:
    for module in ("botocore.auth", "botocore.signers"):
        monkeypatch.setattr(f"{module}.get_current_datetime", lambda: moment)
    return moment.replace(tzinfo=datetime.UTC).timestamp()


@pytest.mark.parametrize("token", [None, "session-token/with+odd=chars"])
def test_request_headers_match_botocore(monkeypatch: pytest.MonkeyPatch,
                                        token: str | None) -> None:
    credentials = Credentials("AKIDEXAMPLE", "secret/key+example", token)
    signer = Signer(credentials, "eu-west-3", "dynamodb")
    body = b'{"TableName":"uploads","Key":{"id":{"S":"up_1"}}}'
    for moment in MOMENTS:
        now = _freeze(monkeypatch, moment)
        ours = signer.sign_headers("POST", "dynamodb.eu-west-3.amazonaws.com", "/", {
            "content-type": "application/x-amz-json-1.0",
            "x-amz-target": "DynamoDB_20120810.GetItem"}, body, now=now)
        theirs = AWSRequest("POST", "https://dynamodb.eu-west-3.amazonaws.com/", data=body,
                            headers={"Content-Type": "application/x-amz-json-1.0",
                                     "X-Amz-Target": "DynamoDB_20120810.GetItem",
                                     "Host": "dynamodb.eu-west-3.amazonaws.com"})
        SigV4Auth(credentials, "dynamodb", "eu-west-3").add_auth(theirs)
        assert ours["authorization"] == theirs.headers["Authorization"]
        assert ours["x-amz-date"] == theirs.headers["X-Amz-Date"]
        assert ours.get("x-amz-security-token") == theirs.headers.get("X-Amz-Security-Token")


def test_a_changed_secret_is_used_at_once() -> None:
    credentials = Credentials("AKID", "first-secret")
    signer = Signer(credentials, "us-east-1", "dynamodb")
    first = signer.sign_headers("POST", "h", "/", {}, b"", now=1.8e9)
    credentials.secret_key = "rotated-secret"  # as refreshing credentials do
    second = signer.sign_headers("POST", "h", "/", {}, b"", now=1.8e9)
    assert first["authorization"] != second["authorization"]


def test_no_credentials_is_botocores_error() -> None:
    with pytest.raises(NoCredentialsError):
        Signer(None, "us-east-1", "s3").stamp()


def _s3(token: str | None, endpoint: str | None, style: str) -> Any:
    return boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint,
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="s3cr3t",
                        aws_session_token=token,
                        config=Config(signature_version="s3v4", s3={"addressing_style": style}))


@pytest.mark.parametrize(("token", "endpoint", "style"), [
    (None, None, "auto"), ("tok", None, "virtual"), (None, "http://127.0.0.1:7480", "path")])
def test_post_policy_matches_botocores_presigned_post(
        monkeypatch: pytest.MonkeyPatch, token: str | None, endpoint: str | None,
        style: str) -> None:
    client = _s3(token, endpoint, style)
    signer = PostSigner(client)
    for moment in MOMENTS:
        _freeze(monkeypatch, moment)
        monkeypatch.setattr("broker.aws.sigv4.time.time",
                            lambda m=moment: m.replace(tzinfo=datetime.UTC).timestamp())
        ours = signer.presign_post(bucket="uploads-incoming", key="incoming/up_1",
                                   upload_id="up_1", content_type="image/png", min_size=10,
                                   max_size=20, ttl=300)
        theirs = client.generate_presigned_post(
            Bucket="uploads-incoming", Key="incoming/up_1", ExpiresIn=300,
            Fields={"Content-Type": "image/png", "x-amz-meta-upload-id": "up_1",
                    "success_action_status": "201"},
            Conditions=[{"Content-Type": "image/png"}, {"x-amz-meta-upload-id": "up_1"},
                        {"success_action_status": "201"}, ["content-length-range", 10, 20]])
        assert ours.url == theirs["url"]
        assert ours.fields == theirs["fields"]


@pytest.mark.parametrize("style", ["path", "virtual"])
@pytest.mark.parametrize("token", [None, "session-token/with+odd=chars"])
def test_part_urls_match_botocore(monkeypatch: pytest.MonkeyPatch, style: str,
                                  token: str | None) -> None:
    """A presigned UploadPart pinning the part's length and checksum, as botocore signs it."""
    s3 = boto3.client("s3", region_name="eu-west-3", aws_access_key_id="AKIDEXAMPLE",
                      aws_secret_access_key="secret/key+example", aws_session_token=token,
                      config=Config(signature_version="s3v4", s3={"addressing_style": style}))
    signer = PostSigner(s3)
    for moment in MOMENTS:
        now = _freeze(monkeypatch, moment)
        params = {"Bucket": "uploads-incoming", "Key": "incoming/up_1", "PartNumber": 7,
                  "UploadId": "2~odd/upload+id=", "ContentLength": 5242880,
                  "ChecksumSHA256": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="}
        theirs = s3.generate_presigned_url("upload_part", Params=params, ExpiresIn=300)
        ours = signer.signer.presign_url(
            "PUT", signer.object_url("uploads-incoming", "incoming/up_1"),
            {"partNumber": "7", "uploadId": "2~odd/upload+id="},
            {"content-length": "5242880",
             "x-amz-checksum-sha256": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="},
            300, now=now)
        assert sorted(ours.split("?")[1].split("&")) == sorted(theirs.split("?")[1].split("&"))
        assert ours.split("?")[0] == theirs.split("?")[0]
