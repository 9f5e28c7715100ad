"""The LocalStack init hook provisions, on LocalStack's own Python, the names infra/ uses."""

from __future__ import annotations

import os
import subprocess

import boto3
import pytest
from botocore.config import Config

from infra.stages import LOCALSTACK_ACCOUNT, STAGES
from tests.integration.conftest import free_port
from tests.localstack.conftest import LOCALSTACK_PYTHON, ROOT

pytestmark = pytest.mark.localstack


def test_the_hook_provisions_the_stage_names(localstack: str) -> None:
    from moto.server import ThreadedMotoServer

    records = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    # LocalStack's DynamoDB would download Java first: see docs/operations/localstack.md
    records.start()
    host, port = records.get_host_and_port()
    try:
        env = {"PATH": os.environ["PATH"], "LOCALSTACK_ENDPOINT": localstack,
               "UPLOAD_BROKER_STAGE": "dev", "AWS_ACCESS_KEY_ID": "test",
               "AWS_SECRET_ACCESS_KEY": "test",
               "BROKER_DYNAMODB_ENDPOINT_URL": f"http://{host}:{port}"}
        reply = subprocess.run([str(LOCALSTACK_PYTHON),
                                str(ROOT / "localstack" / "provision_hook.py")],
                               env=env, capture_output=True, text=True, timeout=120,
                               check=False)
        assert reply.returncode == 0, reply.stderr[-2000:]
        names = STAGES["dev"].names(LOCALSTACK_ACCOUNT)
        assert f"export BROKER_INCOMING_BUCKET='{names.incoming_bucket}'" in reply.stdout
        s3 = boto3.client("s3", endpoint_url=localstack, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test",
                          config=Config(s3={"addressing_style": "path"}))
        buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert {names.incoming_bucket, names.public_bucket, names.private_bucket} <= buckets
        sqs = boto3.client("sqs", endpoint_url=localstack, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        assert sqs.get_queue_url(QueueName=names.queue)["QueueUrl"].endswith(names.queue)
    finally:
        records.stop()
