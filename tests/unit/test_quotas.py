"""Storage quotas per user: counted when an upload becomes ready, released when it is
deleted, checked at the presign and again, atomically, at the verdict."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from broker.aws.clients import AwsClients
from broker.compose import compose
from broker.domain.profiles import load_profiles
from broker.domain.quotas import Quota
from broker.domain.records import served_keys
from broker.settings import Settings
from broker.web import create_app
from tests.samples import auth, png_bytes
from tests.unit.test_validator import Stage


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return settings.model_copy(update={"quota_files": 2, "quota_bytes": 1_000_000})


@pytest.fixture
def stage(limited: Settings, aws: AwsClients) -> Stage:
    app: Flask = create_app(limited.model_dump(), clients=aws)
    return Stage(app, aws, compose(limited, aws).validator)


def presign(client: FlaskClient, size: int = 100) -> Any:
    return client.post("/v1/uploads", headers=auth("alice"), json={
        "profile": "avatar", "filename": "a.png", "content_type": "image/png", "size": size})


def test_usage_counts_ready_files_and_a_full_quota_refuses_the_presign(stage: Stage) -> None:
    client = stage.app.test_client()
    assert client.get("/v1/usage", headers=auth("alice")).json == {
        "bytes": 0, "files": 0, "quota": {"bytes": 1_000_000, "files": 2}}
    records = [stage.upload(png_bytes(10 + n, 10)) for n in range(2)]
    assert [stage.process(r) for r in records] == ["accepted", "accepted"]
    served = sum(stage.reread(r).served_size or 0 for r in records)
    assert client.get("/v1/usage", headers=auth("alice")).json["bytes"] == served  # type: ignore[index]

    refused = presign(client)
    assert refused.status_code == 422
    assert refused.json["code"] == "quota_exceeded"
    assert "2 of 2 files" in refused.json["detail"]
    assert presign(client.application.test_client()).status_code == 422
    # Someone else's quota is their own.
    assert client.post("/v1/uploads", headers=auth("bob"), json={
        "profile": "avatar", "filename": "a.png", "content_type": "image/png",
        "size": 100}).status_code == 201

    # Deleting a file gives its room back.
    assert client.delete(f"/v1/uploads/{records[0].id}", headers=auth("alice")
                         ).status_code == 204
    assert client.get("/v1/usage", headers=auth("alice")).json["files"] == 1  # type: ignore[index]
    assert presign(client).status_code == 201


def test_a_presign_larger_than_the_room_left_is_refused(stage: Stage) -> None:
    assert presign(stage.app.test_client(), size=1_000_001).json["code"] in (
        "quota_exceeded", "too_large")
    big = stage.app.test_client().post("/v1/uploads", headers=auth("alice"), json={
        "profile": "document", "filename": "a.pdf", "content_type": "application/pdf",
        "size": 2_000_000})
    assert (big.status_code, big.json["code"]) == (422, "quota_exceeded")


def test_uploads_in_flight_together_cannot_overshoot_at_the_verdict(stage: Stage) -> None:
    # Three presigned while the quota had room for them all; two files fit.
    records = [stage.upload(png_bytes(20 + n, 20)) for n in range(3)]
    outcomes = [stage.process(r) for r in records]
    assert sorted(outcomes) == ["accepted", "accepted", "rejected"]
    over = stage.reread(records[outcomes.index("rejected")])
    assert over.reason_code == "quota_exceeded"
    assert over.stored_key is None
    # Nothing of it was published: the public bucket holds the two accepted files only.
    public = stage.keys(stage.validator.settings.public_bucket)
    assert sorted(public) == sorted(key for r in records for key in served_keys(stage.reread(r))
                                    if stage.reread(r).status == "ready")
    assert stage.app.test_client().get("/v1/usage", headers=auth("alice")).json["files"] == 2  # type: ignore[index]


def test_a_profile_may_hold_its_uploads_to_a_quota_of_its_own(tmp_path: Any) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[avatar]\nvisibility = "public"\nmax_size = "1 MiB"\n'
                    'quota_files = 1\ntypes = {"image/png" = ["png"]}\n')
    (avatar,) = list(load_profiles(path))
    assert avatar.quota(Quota(bytes=500, files=10)) == Quota(bytes=500, files=1)
