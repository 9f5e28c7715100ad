"""Large files in parts on a real S3 (Ceph RGW): storage refuses every part that is not
the one signed (longer, shorter, other content), the broker refuses to complete what
is not the plan, and a valid upload reaches `ready` and is served byte for byte."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from broker.devstack.stack import DevStack
from broker.storage.part_plans import MIB
from broker.web import create_app
from tests.conformance.conftest import Rgw
from tests.integration.conftest import free_port, serving
from tests.parts_client import PartsUpload, start_in_parts
from tests.samples import SECRET, settle

pytestmark = pytest.mark.conformance
PART = 5 * MIB
INCOMING = "rgwparts-incoming"


@pytest.fixture(scope="module")
def stack(rgw: Rgw) -> Iterator[tuple[str, DevStack]]:
    port = free_port()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", rgw.access_key)
        env.setenv("AWS_SECRET_ACCESS_KEY", rgw.secret_key)
        stack = DevStack(broker_origin=f"http://127.0.0.1:{port}", overrides={
            "jwt_secret": SECRET, "s3_endpoint_url": rgw.endpoint, "events": "http",
            "incoming_bucket": INCOMING, "public_bucket": "rgwparts-public",
            "private_bucket": "rgwparts-private", "multipart_part_size": PART,
            # RGW 16 verifies a signed payload hash, not S3's checksum header.
            "part_checksum": "content-sha256"})
        try:  # the emulator's process is stopped however the start or the tests end
            settings = stack.start()
            with serving(create_app(settings.model_dump(), clients=stack.clients),
                         port) as base:
                yield base, stack
        finally:
            stack.stop()


def text(size: int, seed: int) -> bytes:
    line = f"line {seed}: a large plain text document sent in parts to a real S3\n".encode()
    return (line * (size // len(line) + 1))[:size]


def stored_parts(upload: PartsUpload) -> list[tuple[int, int]]:
    return [(p["part_number"], p["size"]) for p in upload.stored().json()["parts"]]


def test_rgw_refuses_parts_longer_shorter_or_other_than_signed(
        stack: tuple[str, DevStack]) -> None:
    broker, _ = stack
    data = text(11 * MIB, seed=1)
    upload = start_in_parts(broker, "rgw-parts-ann", len(data))
    signed = upload.sign([1, 3], data)
    part = upload.part(data, 1)
    for body in (part + b"x", part[:-1]):  # another length than signed
        refused = upload.put(signed[1], body)
        assert refused.status_code == 403, refused.text
        assert "SignatureDoesNotMatch" in refused.text
    tampered = b"X" + part[1:]  # the signed length, other content
    refused = upload.put(signed[1], tampered)
    assert refused.status_code == 400, refused.text
    assert "XAmzContentSHA256Mismatch" in refused.text
    unhashed = upload.put({"url": signed[3]["url"], "headers": {}}, upload.part(data, 3))
    assert unhashed.status_code in (400, 403)  # the signed hash header left out
    assert stored_parts(upload) == []  # storage kept none of them
    assert upload.put(signed[1], part).status_code == 200
    assert stored_parts(upload) == [(1, PART)]


def test_rgw_upload_completes_only_as_planned_then_is_served_byte_for_byte(
        stack: tuple[str, DevStack]) -> None:
    broker, dev = stack
    data = text(12 * MIB + 7, seed=2)
    upload = start_in_parts(broker, "rgw-parts-bea", len(data))
    etags = upload.send(data, [1, 3])
    refused = upload.complete()
    assert refused.status_code == 422
    assert refused.json()["code"] == "parts_missing"
    # A part of another size put there outside the broker's URLs (with the store's own
    # keys): the broker will not complete it.
    assert dev.clients is not None
    dev.clients.s3.upload_part(Bucket=INCOMING, Key=f"incoming/{upload.id}",
                               UploadId=_multipart_id(dev, upload), PartNumber=2,
                               Body=upload.part(data, 2)[:-1])
    refused = upload.complete()
    assert refused.status_code == 422
    assert refused.json()["code"] == "part_size_mismatch"
    etags |= upload.send(data, [2])  # the part again, as signed
    done = upload.complete(etags)
    assert done.status_code == 200, done.text
    record = settle(broker, "rgw-parts-bea", upload.id, timeout=90)
    assert record["status"] == "ready", record
    assert requests.get(record["download_url"], timeout=60).content == data


def _multipart_id(dev: DevStack, upload: PartsUpload) -> str:
    assert dev.clients is not None
    listed = dev.clients.s3.list_multipart_uploads(Bucket=INCOMING,
                                                   Prefix=f"incoming/{upload.id}")
    return str(listed["Uploads"][0]["UploadId"])
