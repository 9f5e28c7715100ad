"""A removed public file stops being served: the CDN (the emulator's CloudFront) is told
to forget exactly its paths, in batches, and apps hear every URL that served it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from broker.aws.clients import AwsClients
from broker.common import clock
from broker.compose import Parts, compose
from broker.domain.records import served_keys
from broker.settings import Settings
from broker.validator.events import ObjectRef
from broker.web import create_app
from tests.samples import auth, pdf_bytes, png_bytes

INCOMING = "uploads-incoming"


def _distribution(aws: AwsClients) -> str:
    origin = {"Id": "public", "DomainName": "uploads-public.s3.amazonaws.com",
              "S3OriginConfig": {"OriginAccessIdentity": ""}}
    config = {"CallerReference": "tests", "Comment": "", "Enabled": True,
              "Origins": {"Quantity": 1, "Items": [origin]},
              "DefaultCacheBehavior": {"TargetOriginId": "public",
                                       "ViewerProtocolPolicy": "redirect-to-https",
                                       "MinTTL": 0}}
    return str(aws.cloudfront.create_distribution(DistributionConfig=config)
               ["Distribution"]["Id"])


@pytest.fixture
def parts(settings: Settings, aws: AwsClients) -> Parts:
    with_cdn = settings.model_copy(update={"cloudfront_distribution_id": _distribution(aws)})
    return compose(with_cdn, aws)


@pytest.fixture
def client(parts: Parts) -> Iterator[FlaskClient]:
    return create_app(parts=parts).test_client()


def ready_upload(parts: Parts, aws: AwsClients, profile: str = "avatar") -> Any:
    data, name, kind = (png_bytes(), "me.png", "image/png") if profile == "avatar" else \
        (pdf_bytes(), "a.pdf", "application/pdf")
    record = parts.uploads.create("alice", profile, name, kind, len(data)).record
    aws.s3.put_object(Bucket=INCOMING, Key=record.incoming_key, Body=data,
                      Metadata={"upload-id": record.id})
    assert parts.validator.process(ObjectRef(INCOMING, record.incoming_key)) == "accepted"
    ready = parts.records.get(record.id)
    assert ready is not None
    return ready


def invalidated_paths(aws: AwsClients, parts: Parts) -> list[list[str]]:
    distribution = parts.settings.cloudfront_distribution_id
    listed = aws.cloudfront.list_invalidations(DistributionId=distribution)
    return [aws.cloudfront.get_invalidation(DistributionId=distribution, Id=item["Id"])
            ["Invalidation"]["InvalidationBatch"]["Paths"].get("Items", [])
            for item in listed["InvalidationList"].get("Items", [])]


def test_a_deleted_public_upload_is_invalidated_at_the_cdn_exactly(
        parts: Parts, aws: AwsClients, client: FlaskClient) -> None:
    upload = ready_upload(parts, aws)
    assert client.delete(f"/v1/uploads/{upload.id}", headers=auth("alice")).status_code == 204
    assert parts.cdn_purger is not None
    assert parts.cdn_purger.purge_due() == [f"/{upload.id}/*"]
    assert invalidated_paths(aws, parts) == [[f"/{upload.id}/*"]]
    assert parts.cdn_purger.purge_due() == []  # told once
    assert len(invalidated_paths(aws, parts)) == 1


def test_removals_in_a_burst_share_one_invalidation_and_private_ones_none(
        parts: Parts, aws: AwsClients, client: FlaskClient) -> None:
    first, second = ready_upload(parts, aws), ready_upload(parts, aws)
    private = ready_upload(parts, aws, profile="document")
    for upload in (first, second, private):
        assert client.delete(f"/v1/uploads/{upload.id}",
                             headers=auth("alice")).status_code == 204
    assert parts.cdn_purger is not None
    assert parts.cdn_purger.purge_due() == sorted([f"/{first.id}/*", f"/{second.id}/*"])
    assert invalidated_paths(aws, parts) == [sorted([f"/{first.id}/*", f"/{second.id}/*"])]


def test_a_cdn_that_fails_is_told_again_later(
        parts: Parts, aws: AwsClients, client: FlaskClient) -> None:
    upload = ready_upload(parts, aws)
    assert client.delete(f"/v1/uploads/{upload.id}", headers=auth("alice")).status_code == 204
    purger = parts.cdn_purger
    assert purger is not None
    working = purger.invalidate

    def down(paths: list[str], reference: str) -> None:
        raise ConnectionError("the CDN's API did not answer")

    purger.invalidate = down
    assert purger.purge_due() == []
    purger.invalidate = working
    assert purger.purge_due() == []  # not due yet: it backs off
    later = clock.now() + timedelta(seconds=30)
    assert purger.purge_due(later) == [f"/{upload.id}/*"]
    assert invalidated_paths(aws, parts) == [[f"/{upload.id}/*"]]


def test_the_deleted_event_names_every_url_that_served_the_upload(
        parts: Parts, aws: AwsClients, client: FlaskClient) -> None:
    upload = ready_upload(parts, aws)
    served = client.get(f"/v1/uploads/{upload.id}", headers=auth("alice")).json["url"]
    assert client.delete(f"/v1/uploads/{upload.id}", headers=auth("alice")).status_code == 204
    deleted = parts.records.get(upload.id)
    assert deleted is not None
    removed = parts.render(deleted)["removed_urls"]
    assert removed[0] == served  # the file, then each of its renditions
    assert removed == [parts.settings.public_url_for(k) for k in served_keys(deleted)]
    assert len(removed) > 1  # the renditions' too
    assert "removed_urls" not in parts.render(ready_upload(parts, aws))
