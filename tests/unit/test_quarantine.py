"""The quarantine, reviewed: operators list what was refused with its reason, fetch the
file through a short attachment link, release a false positive (served and audited) or
purge a true one; every verdict and action is in the audit log."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from broker.aws.clients import AwsClients
from broker.compose import Parts, compose
from broker.domain.records.outbox import AUDIT
from broker.settings import Settings
from broker.validator.events import ObjectRef
from broker.validator.quarantine import Quarantine
from tests import writers

INCOMING = "uploads-incoming"


@pytest.fixture
def parts(settings: Settings, aws: AwsClients) -> Parts:
    return compose(settings, aws)


def refused(parts: Parts, aws: AwsClients, data: bytes, name: str = "scan.jpg",
            kind: str = "image/jpeg", profile: str = "avatar", owner: str = "alice") -> str:
    record = parts.uploads.create(owner, profile, name, kind, len(data)).record
    aws.s3.put_object(Bucket=INCOMING, Key=record.incoming_key, Body=data,
                      Metadata={"upload-id": record.id})
    assert parts.validator.process(ObjectRef(INCOMING, record.incoming_key)) == "rejected"
    return str(record.id)


def a_false_positive() -> bytes:
    """A JPEG the rules refuse though it is harmless: markup-like bytes in a comment."""
    return writers.jpeg_with_app_segment(0xFE, b"<script>not really</script>")


def test_a_false_positive_released_by_an_operator_is_served_and_audited(
        parts: Parts, aws: AwsClients) -> None:
    upload_id = refused(parts, aws, a_false_positive())
    quarantine = Quarantine(parts.validator)
    listed = {r.id: r for r in quarantine.items()}
    assert listed[upload_id].reason_code == "polyglot"
    assert listed[upload_id].reason_detail == "markup or code in the JPEG metadata"

    link = quarantine.file_link(upload_id)
    assert "response-content-disposition=attachment" in link.replace("%3B", ";").lower()

    released = quarantine.release(upload_id, "ops:carol", "a scanner's test comment")
    assert released.status == "ready"
    assert (released.reviewed_by, released.review_note) == (
        "ops:carol", "released: a scanner's test comment")
    served = aws.s3.get_object(Bucket="uploads-public", Key=released.stored_key)
    assert served["ContentType"] == "image/jpeg"
    assert b"<script>" not in served["Body"].read()  # re-encoded, as an accepted avatar
    assert parts.records.usage("alice").files == 1
    assert aws.s3.list_objects_v2(Bucket=INCOMING, Prefix=f"quarantine/{upload_id}/"
                                  )["KeyCount"] == 0
    log = [(e.type, e.record().status, e.record().reviewed_by)
           for e in parts.records.webhooks(AUDIT, 100) if e.upload_id == upload_id]
    assert log == [("upload.rejected", "rejected", None),
                   ("upload.ready", "ready", "ops:carol")]
    # Append-only: an entry cannot be sent or re-dated as a webhook replay would.
    from broker.domain.webhooks.deliverer import Deliverer

    entry = next(e for e in parts.records.webhooks(AUDIT, 100) if e.upload_id == upload_id)
    assert not Deliverer(parts.records, parts.render, []).replay(entry.id)
    assert parts.records.get_webhook(entry.id) == entry


def test_a_true_positive_purged_leaves_no_file_and_an_audited_record(
        parts: Parts, aws: AwsClients) -> None:
    upload_id = refused(parts, aws, a_false_positive())
    quarantine = Quarantine(parts.validator)
    purged = quarantine.purge(upload_id, "ops:dave")
    assert (purged.status, purged.reviewed_by, purged.review_note) == (
        "rejected", "ops:dave", "purged")
    versions = aws.s3.list_object_versions(Bucket=INCOMING, Prefix=f"quarantine/{upload_id}/")
    assert not versions.get("Versions")
    assert not versions.get("DeleteMarkers")
    assert [e.type for e in parts.records.webhooks(AUDIT, 100)
            if e.upload_id == upload_id] == ["upload.rejected", "upload.reviewed"]
    from broker.common.errors import NotFound

    with pytest.raises(NotFound, match="no quarantined file"):
        quarantine.file_link(upload_id)


def test_the_command_line_reviews_and_exports_the_audit_log(
        parts: Parts, aws: AwsClients, capsys: pytest.CaptureFixture[str]) -> None:
    from broker.cli import main

    upload_id = refused(parts, aws, a_false_positive())
    capsys.readouterr()
    assert main(["quarantine", "list"]) == 0
    assert upload_id in capsys.readouterr().out
    assert main(["quarantine", "link", upload_id]) == 0
    link = capsys.readouterr().out.strip()
    assert requests.get(link, timeout=30).status_code in (200, 403)  # moto: not served
    assert main(["quarantine", "release", upload_id, "--reason", "false positive",
                 "--operator", "ops:erin"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "ready"
    assert main(["quarantine", "purge", upload_id]) == 1  # no longer in the quarantine
    assert "no refused or withdrawn upload" in capsys.readouterr().err
    assert main(["audit", "export"]) == 0
    lines: list[dict[str, Any]] = [json.loads(line)
                                   for line in capsys.readouterr().out.splitlines()]
    mine = [(e["event"], e["actor"], e["note"]) for e in lines if e["upload_id"] == upload_id]
    assert mine == [("upload.rejected", "broker", None),
                    ("upload.ready", "ops:erin", "released: false positive")]


@pytest.fixture
def operated(settings: Settings, aws: AwsClients) -> tuple[Parts, Any]:
    from broker.web import create_app

    parts = compose(settings.model_copy(update={"operators": ("carol",)}), aws)
    return parts, create_app(parts=parts).test_client()


def test_operators_review_through_the_api_and_others_see_nothing(
        operated: tuple[Parts, Any], aws: AwsClients) -> None:
    from tests.samples import auth

    parts, client = operated
    upload_id = refused(parts, aws, a_false_positive())
    for who in ({}, auth("alice")):  # not signed in, or not an operator: nothing here
        for method, path in (("get", "/operator"), ("get", "/v1/operator/quarantine"),
                             ("post", f"/v1/operator/quarantine/{upload_id}/purge"),
                             ("post", "/v1/operator/owners/alice/erase")):
            if method == "get" and path == "/operator" and not who:
                continue  # the sign-in box
            answer = getattr(client, method)(path, headers=who, json={})
            assert answer.status_code == 404, (path, who)
    listed = client.get("/v1/operator/quarantine", headers=auth("carol")).json["items"]
    assert [(i["id"], i["reason"]["code"]) for i in listed] == [(upload_id, "polyglot")]
    file = client.get(f"/v1/operator/quarantine/{upload_id}/file", headers=auth("carol"))
    assert file.status_code == 302
    assert "attachment" in file.headers["Location"]
    refused_without_reason = client.post(f"/v1/operator/quarantine/{upload_id}/release",
                                         headers=auth("carol"), json={})
    assert refused_without_reason.status_code == 422
    released = client.post(f"/v1/operator/quarantine/{upload_id}/release",
                           headers=auth("carol"), json={"reason": "harmless comment"})
    assert released.status_code == 200
    assert (released.json["status"], released.json["reviewed_by"]) == ("ready",
                                                                       "operator:carol")
    assert client.get(f"/v1/uploads/{upload_id}", headers=auth("alice")).json["status"] \
        == "ready"
    erased = client.post("/v1/operator/owners/alice/erase", headers=auth("carol"),
                         json={"confirm": "alice"})
    assert erased.status_code == 200
    assert erased.json["uploads_erased"] == 1
