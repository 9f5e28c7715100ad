"""The embedded emulator lists one object's versions without copying the rest of the
bucket (the validator lists once a verdict), and answers as moto did."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.s3.models import FakeKey, S3Backend

from broker.devstack.moto_mends import mend_version_listing

OTHERS = 60


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="incoming")
        client.put_bucket_versioning(Bucket="incoming",
                                     VersioningConfiguration={"Status": "Enabled"})
        for n in range(2):
            client.put_object(Bucket="incoming", Key="incoming/up_a", Body=f"v{n}".encode())
        client.delete_object(Bucket="incoming", Key="incoming/up_a")  # a delete marker
        client.put_object(Bucket="incoming", Key="incoming/up_a/part", Body=b"p")
        client.put_object(Bucket="incoming", Key="incoming/up_ab", Body=b"x")
        for n in range(OTHERS):
            client.put_object(Bucket="incoming", Key=f"incoming/other-{n}", Body=b"o" * 900)
        yield client


def _listing(s3: Any, **params: Any) -> dict[str, Any]:
    reply = s3.list_object_versions(Bucket="incoming", **params)
    return {part: [(v["Key"], v["VersionId"], v["IsLatest"]) for v in reply.get(part, [])]
            for part in ("Versions", "DeleteMarkers")} | {
        "CommonPrefixes": reply.get("CommonPrefixes", []),
        "NextKeyMarker": reply.get("NextKeyMarker")}


QUERIES = [{"Prefix": "incoming/up_a"}, {"Prefix": "incoming/up_a", "Delimiter": "/"},
           {"Prefix": "incoming/up_a", "MaxKeys": 2}, {"Prefix": "incoming/nothing"},
           {"Prefix": "incoming/other-1", "KeyMarker": "incoming/other-12"}, {}]


def test_a_listing_answers_as_moto_did_and_copies_only_what_is_under_its_prefix(
        s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    before = [_listing(s3, **query) for query in QUERIES]
    copies = []
    restore = FakeKey.__setstate__
    monkeypatch.setattr(FakeKey, "__setstate__",
                        lambda key, state: (copies.append(state["name"]), restore(key, state)))
    monkeypatch.setattr(S3Backend, "list_object_versions", S3Backend.list_object_versions)
    mend_version_listing()
    assert [_listing(s3, **query) for query in QUERIES] == before
    copies.clear()
    assert len(_listing(s3, Prefix="incoming/up_a")["Versions"]) == 4
    assert copies
    assert all(name.startswith("incoming/up_a") for name in copies), copies
