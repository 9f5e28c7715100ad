"""Ceph RGW enforces every condition of the broker's presigned POST.

moto stores whatever it is sent; a real S3 must refuse each forbidden variant.
The table of what RGW answered is written to tests/artifacts/conformance.md.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from broker.domain.presign import PostSigner, PresignedUpload, presign_put
from tests.conformance.conftest import Rgw

pytestmark = pytest.mark.conformance
BUCKET = "conformance-incoming"
DATA = b"\x89PNG\r\n\x1a\n" + b"\0" * 92  # 100 bytes
ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "conformance.md"
RESULTS: list[tuple[str, int, str]] = []


@pytest.fixture(scope="module")
def s3(rgw: Rgw) -> Any:
    client = boto3.client(
        "s3", endpoint_url=rgw.endpoint, aws_access_key_id=rgw.access_key,
        aws_secret_access_key=rgw.secret_key, region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module", autouse=True)
def write_table() -> Iterator[None]:
    yield
    ARTIFACT.parent.mkdir(exist_ok=True)
    rows = [f"| {case} | {status} | {code or '-'} |" for case, status, code in RESULTS]
    ARTIFACT.write_text("| POST | status | S3 error code |\n|---|---|---|\n"
                        + "\n".join(rows) + "\n")


def presigned(s3: Any, key: str = "incoming/up_conformance", ttl: int = 300) -> PresignedUpload:
    return PostSigner(s3).presign_post(bucket=BUCKET, key=key, upload_id="up_conformance",
                        content_type="image/png", min_size=len(DATA), max_size=len(DATA),
                        ttl=ttl)


def send(post: PresignedUpload, fields: dict[str, str], data: bytes = DATA,
         content_type: str = "image/png") -> tuple[int, str]:
    reply = requests.post(post.url, data=fields, files={"file": ("a.png", data, content_type)},
                          timeout=30)
    code = reply.text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in reply.text else ""
    return reply.status_code, code


def tampered_policy(fields: dict[str, str]) -> dict[str, str]:
    policy = json.loads(base64.b64decode(fields["policy"]))
    for condition in policy["conditions"]:
        if isinstance(condition, list) and condition[0] == "content-length-range":
            condition[2] = 10 * 1024 * 1024
    return {**fields, "policy": base64.b64encode(json.dumps(policy).encode()).decode()}


def without(name: str) -> Callable[[dict[str, str]], dict[str, str]]:
    return lambda fields: {k: v for k, v in fields.items() if k != name}


def replaced(name: str, value: str) -> Callable[[dict[str, str]], dict[str, str]]:
    return lambda fields: {**fields, name: value}


REFUSED: list[tuple[str, Callable[[dict[str, str]], dict[str, str]], bytes]] = [
    ("a body larger than declared", dict, DATA + b"\0"),
    ("a body smaller than declared", dict, DATA[:-1]),
    ("another Content-Type", replaced("Content-Type", "text/html"), DATA),
    ("another key", replaced("key", "incoming/up_somebody_else"), DATA),
    ("a tampered policy (size range widened)", tampered_policy, DATA),
    ("a tampered signature", replaced("x-amz-signature", "0" * 64), DATA),
    ("an extra field not in the policy", replaced("x-amz-meta-role", "admin"), DATA),
    ("a changed upload-id metadata", replaced("x-amz-meta-upload-id", "up_other"), DATA),
    ("a missing upload-id metadata", without("x-amz-meta-upload-id"), DATA),
    ("another success_action_status", replaced("success_action_status", "200"), DATA),
]


@pytest.mark.parametrize(("case", "change", "data"), REFUSED, ids=[r[0] for r in REFUSED])
def test_rgw_refuses_what_the_policy_forbids(s3: Any, case: str,
                                             change: Callable[[dict[str, str]], dict[str, str]],
                                             data: bytes) -> None:
    post = presigned(s3)
    status, code = send(post, change(dict(post.fields)), data)
    RESULTS.append((case, status, code))
    assert status in (400, 403), (status, code)
    assert code
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="incoming/up_somebody")


def test_rgw_refuses_an_expired_policy(s3: Any) -> None:
    post = presigned(s3, key="incoming/up_late", ttl=1)
    time.sleep(2.5)
    status, code = send(post, dict(post.fields))
    RESULTS.append(("an expired policy", status, code))
    assert status == 403
    assert code == "AccessDenied"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="incoming/up_late")


def test_rgw_stores_the_valid_post_exactly(s3: Any) -> None:
    post = presigned(s3, key="incoming/up_valid")
    status, code = send(post, dict(post.fields))
    RESULTS.append(("the valid POST", status, code))
    assert status == 201
    stored = s3.get_object(Bucket=BUCKET, Key="incoming/up_valid")
    assert stored["Body"].read() == DATA
    assert stored["ContentType"] == "image/png"
    assert stored["Metadata"]["upload-id"] == "up_conformance"


def put(s3: Any, key: str, data: bytes, content_type: str = "image/png",
        ttl: int = 300) -> tuple[int, str]:
    upload = presign_put(s3, bucket=BUCKET, key=key, content_type="image/png", size=len(DATA),
                         ttl=ttl)
    if ttl == 1:
        time.sleep(2.5)
    reply = requests.put(upload.url, data=data, headers={"Content-Type": content_type},
                         timeout=30)
    code = reply.text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in reply.text else ""
    return reply.status_code, code


PUT_REFUSED = [
    ("PUT: a body larger than signed", DATA + b"\0", "image/png", 300),
    ("PUT: a body smaller than signed", DATA[:-1], "image/png", 300),
    ("PUT: another Content-Type", DATA, "text/html", 300),
    ("PUT: an expired URL", DATA, "image/png", 1),
]


@pytest.mark.parametrize(("case", "data", "content_type", "ttl"), PUT_REFUSED,
                         ids=[r[0] for r in PUT_REFUSED])
def test_rgw_refuses_what_a_presigned_put_does_not_cover(
    s3: Any, case: str, data: bytes, content_type: str, ttl: int
) -> None:
    key = f"incoming/up_put_{len(RESULTS)}"
    status, code = put(s3, key, data, content_type, ttl)
    RESULTS.append((case, status, code))
    assert status == 403, (status, code)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=key)


def test_rgw_stores_the_valid_put(s3: Any) -> None:
    status, code = put(s3, "incoming/up_put_valid", DATA)
    RESULTS.append(("PUT: the valid upload", status, code))
    assert status == 200
    assert s3.get_object(Bucket=BUCKET, Key="incoming/up_put_valid")["Body"].read() == DATA
