"""The embedded emulator keeps answering, however much it logs."""

from __future__ import annotations

import boto3
import pytest
import requests

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
