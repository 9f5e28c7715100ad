"""The embedded emulator keeps answering, however much it logs."""

from __future__ import annotations

import http.client

import boto3
import pytest
import requests
from botocore.credentials import Credentials

from broker.aws.sigv4 import Signer
from broker.devstack.emulator import EmbeddedEmulator

pytestmark = pytest.mark.integration
# moto logs a traceback for a request it fails on (a GetItem naming no table): about
# 4 KiB each. (An operation it does not know it now answers 404, without one.)
FAILING_REQUEST = {"X-Amz-Target": "DynamoDB_20120810.GetItem",
                     "Authorization": "AWS4-HMAC-SHA256 Credential=a/20261201/us-east-1/"
                                      "dynamodb/aws4_request, SignedHeaders=host, Signature=x"}


def test_the_emulator_answers_after_logging_more_than_a_pipe_holds() -> None:
    with EmbeddedEmulator() as emulator:
        for _ in range(200):  # some 400 KiB of tracebacks, six times a pipe's buffer
            answer = requests.post(f"{emulator.endpoint}/", data=b"{}", timeout=30,
                                   headers=FAILING_REQUEST)
            assert answer.status_code == 500
        s3 = boto3.client("s3", endpoint_url=emulator.endpoint, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
        s3.create_bucket(Bucket="still-answering")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["still-answering"]


def test_a_connection_stays_open_after_an_answer_without_a_body() -> None:
    # waitress closed it after every 204 (each verdict's DELETE): a new connection each.
    with EmbeddedEmulator() as emulator:
        s3 = boto3.client("s3", endpoint_url=emulator.endpoint, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
        s3.create_bucket(Bucket="kept-alive")
        for key in ("a", "b"):
            s3.put_object(Bucket="kept-alive", Key=key, Body=b"bytes")
        signer = Signer(Credentials("local", "local"), "us-east-1", "s3")
        host = f"{emulator.host}:{emulator.port}"

        def signed(method: str, path: str, **more: str) -> dict[str, str]:
            return signer.sign_headers(method, host, path, dict(more), b"")

        connection = http.client.HTTPConnection(emulator.host, emulator.port, timeout=30)
        connection.request("DELETE", "/kept-alive/a", headers=signed("DELETE", "/kept-alive/a"))
        deleted = connection.getresponse()
        deleted.read()
        assert (deleted.status, deleted.getheader("Connection")) == (204, None)
        assert not deleted.will_close
        kept = connection.sock
        connection.request("GET", "/kept-alive", headers=signed("GET", "/kept-alive"))
        listed = connection.getresponse()
        assert listed.status == 200
        assert b"<Key>b</Key>" in listed.read()
        assert connection.sock is kept  # the same connection answered both
        connection.request("DELETE", "/kept-alive/b",
                           headers=signed("DELETE", "/kept-alive/b", connection="close"))
        closing = connection.getresponse()
        closing.read()
        assert (closing.status, closing.will_close) == (204, True)  # asked, so closed
        connection.close()
