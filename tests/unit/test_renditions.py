"""Renditions at the verdict, as an app sees them: listed under `served.renditions` with
links that serve them, removed with the upload, and backfilled when a profile changes.
A HEIC photo served as JPEG says so in the record and the API."""

from __future__ import annotations

import dataclasses
import io
from urllib.parse import urlparse

import pytest
from flask import Flask
from PIL import Image

from broker.aws.clients import AwsClients
from broker.domain.profiles import Profiles, Rendition
from broker.domain.records import served_keys
from broker.validator.judge import Validator
from broker.validator.renditions import backfill, backfill_all
from tests.pictures import icc_profile, phone_heic, photo, saved
from tests.samples import auth
from tests.unit.test_validator import Stage

PUBLIC = "uploads-public"


@pytest.fixture
def stage(app: Flask, aws: AwsClients, validator: Validator) -> Stage:
    return Stage(app, aws, validator)


def _view(stage: Stage, upload_id: str) -> dict[str, object]:
    reply = stage.app.test_client().get(f"/v1/uploads/{upload_id}", headers=auth("alice"))
    assert reply.status_code == 200
    view: dict[str, object] = reply.get_json()
    return view


def _fetched(stage: Stage, url: str) -> tuple[bytes, str]:
    key = "/".join(urlparse(url).path.strip("/").split("/")[-2:])
    stored = stage.aws.s3.get_object(Bucket=PUBLIC, Key=key)
    return stored["Body"].read(), stored["ContentType"]


def test_an_avatar_is_served_with_its_renditions_listed_smallest_first(stage: Stage) -> None:
    record = stage.upload(saved(photo(1600, 1200), "JPEG", quality=92), filename="me.jpg",
                          content_type="image/jpeg")
    assert stage.process(record) == "accepted"
    served = _view(stage, record.id)["served"]
    assert isinstance(served, dict)
    renditions = served["renditions"]
    assert [(r["width"], r["height"], r["format"]) for r in renditions] == [
        (64, 64, "image/webp"), (256, 256, "image/webp"), (1024, 768, "image/webp")]
    for rendition in renditions:
        data, content_type = _fetched(stage, rendition["url"])
        assert content_type == "image/webp"
        assert len(data) == rendition["size"]
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == (rendition["width"], rendition["height"])


def test_deleting_an_upload_removes_its_renditions(stage: Stage) -> None:
    record = stage.upload(saved(photo(400, 300), "PNG"))
    assert stage.process(record) == "accepted"
    ready = stage.reread(record)
    assert len(served_keys(ready)) == 4
    assert sorted(stage.keys(PUBLIC, f"{record.id}/")) == sorted(served_keys(ready))
    reply = stage.app.test_client().delete(f"/v1/uploads/{record.id}", headers=auth("alice"))
    assert reply.status_code == 204
    assert stage.keys(PUBLIC, f"{record.id}/") == []


def test_a_heic_photo_is_served_as_jpeg_and_says_so(stage: Stage) -> None:
    heic = phone_heic(photo(300, 200), 6, icc_profile("Display P3"))
    record = stage.upload(heic, filename="IMG_0042.HEIC", content_type="image/heic")
    assert stage.process(record) == "accepted"
    view = _view(stage, record.id)
    assert view["content_type"] == "image/heic"  # what was uploaded
    served = view["served"]
    assert isinstance(served, dict)
    assert served["content_type"] == "image/jpeg"  # what is served
    assert served["rewritten"] is True
    assert isinstance(view["url"], str)
    assert view["url"].endswith(".jpg")
    key = stage.reread(record).stored_key or ""
    stored = stage.aws.s3.get_object(Bucket=PUBLIC, Key=key)
    assert stored["ContentType"] == "image/jpeg"
    assert stored["ContentDisposition"] == 'inline; filename="IMG_0042.jpg"'
    with Image.open(stored["Body"]) as image:
        assert image.size == (200, 300)  # upright


def test_changed_renditions_are_backfilled_and_the_old_ones_removed(stage: Stage) -> None:
    records = [stage.upload(saved(photo(600, 400, seed=n), "PNG")) for n in range(3)]
    for record in records:
        assert stage.process(record) == "accepted"
    before = {r.id: set(served_keys(stage.reread(r))) for r in records}
    avatar = stage.validator.profiles.get("avatar")
    changed = avatar.model_copy(update={"renditions": (
        Rendition(width=128, height=128, fit="crop", formats=("avif", "jpeg")),)})
    validator = dataclasses.replace(stage.validator, profiles=Profiles({"avatar": changed}))
    everything = [stage.reread(r) for r in records]
    progress: list[int] = []
    counts = backfill_all(validator, everything, rate=1000,
                          progress=lambda done, _counts: progress.append(done))
    assert counts == {"made": 3}
    assert progress == [1, 2, 3]
    for record in records:
        now = stage.reread(record)
        listed = _view(stage, record.id)["served"]["renditions"]  # type: ignore[index]
        assert [(r["width"], r["format"]) for r in listed] == [
            (128, "image/avif"), (128, "image/jpeg")]
        keys = set(stage.keys(PUBLIC, f"{record.id}/"))
        assert keys == set(served_keys(now))
        assert now.stored_key in keys
        assert not (before[record.id] - {now.stored_key}) & keys  # the old ones are gone
    assert backfill(validator, stage.reread(records[0])) == "current"  # again: no work
