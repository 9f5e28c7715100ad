"""The validator on the stored bytes: verdicts, promotion, quarantine, redelivery, crashes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from flask import Flask

from broker.aws.clients import AwsClients
from broker.common import clock
from broker.common.errors import StorageError
from broker.compose import compose
from broker.domain.inspection import Declared, Verdict, inspect
from broker.domain.inspection.scanner import NoScanner
from broker.domain.profiles import load_profiles
from broker.domain.records import UploadRecord, served_keys
from broker.domain.uploads import Uploads
from broker.settings import Settings
from broker.storage import ObjectChanged, Storage
from broker.validator.events import ObjectRef
from broker.validator.judge import Validator
from broker.web import create_app
from tests.samples import HTML_AS_PNG, BytesSource, pdf_bytes, png_bytes, same_picture

INCOMING = "uploads-incoming"


@dataclass
class Stage:
    """Creates uploads through the broker and stores bytes as the browser would."""

    app: Flask
    aws: AwsClients
    validator: Validator

    @property
    def uploads(self) -> Uploads:
        uploads: Uploads = self.app.extensions["broker"].uploads
        return uploads

    def upload(self, data: bytes, *, profile: str = "avatar", filename: str = "me.png",
               content_type: str = "image/png", declared_size: int | None = None,
               owner: str = "alice", metadata: dict[str, str] | None = None) -> UploadRecord:
        size = len(data) if declared_size is None else declared_size
        record = self.uploads.create(owner, profile, filename, content_type, size).record
        self.store(record, data, metadata)
        return record

    def store(self, record: UploadRecord, data: bytes,
              metadata: dict[str, str] | None = None) -> None:
        self.aws.s3.put_object(
            Bucket=INCOMING, Key=record.incoming_key, Body=data, ContentType="image/png",
            Metadata={"upload-id": record.id} if metadata is None else metadata)

    def process(self, record: UploadRecord) -> str:
        return self.validator.process(ObjectRef(INCOMING, record.incoming_key))

    def reread(self, record: UploadRecord) -> UploadRecord:
        current = self.uploads.records.get(record.id)
        assert current is not None
        return current

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        reply = self.aws.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for o in reply.get("Contents", [])]


@pytest.fixture
def stage(app: Flask, aws: AwsClients, validator: Validator) -> Stage:
    return Stage(app, aws, validator)


def test_a_real_png_is_promoted_to_the_public_bucket(stage: Stage) -> None:
    png = png_bytes()
    record = stage.upload(png)
    assert stage.process(record) == "accepted"
    ready = stage.reread(record)
    assert ready.status == "ready"
    assert ready.content_type == "image/png"
    assert ready.size == len(png)
    stored = stage.aws.s3.get_object(Bucket="uploads-public", Key=ready.stored_key or "")
    served = stored["Body"].read()
    # Public images are served re-encoded: the same picture, none of the original file.
    assert same_picture(served, png)
    assert ready.sha256 == hashlib.sha256(png).hexdigest()
    assert ready.served_sha256 == hashlib.sha256(served).hexdigest()
    assert ready.served_size == len(served)
    assert stored["ContentType"] == "image/png"
    assert stored["ContentDisposition"] == 'inline; filename="me.png"'
    assert "immutable" in stored["CacheControl"]
    assert stage.keys(INCOMING, "incoming/") == []
    assert stage.uploads.delivery_url(ready) == f"https://cdn.example.test/{ready.stored_key}"


def test_a_real_pdf_is_promoted_privately_and_downloads_as_an_attachment(stage: Stage) -> None:
    pdf = pdf_bytes()
    record = stage.upload(pdf, profile="document", filename="Résumé.pdf",
                          content_type="application/pdf")
    assert stage.process(record) == "accepted"
    ready = stage.reread(record)
    assert stage.keys("uploads-public") == []
    assert stage.keys("uploads-private") == [ready.stored_key]
    stored = stage.aws.s3.get_object(Bucket="uploads-private", Key=ready.stored_key or "")
    assert stored["ContentType"] == "application/pdf"
    assert stored["ContentDisposition"].startswith("attachment;")
    link = urlparse(stage.uploads.download_url("alice", record.id))
    query = parse_qs(link.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert int(query["X-Amz-Expires"][0]) == 300
    assert query["response-content-disposition"][0].startswith("attachment;")


def test_html_declared_as_png_is_rejected_and_quarantined(stage: Stage) -> None:
    record = stage.upload(HTML_AS_PNG)
    assert stage.process(record) == "rejected"
    rejected = stage.reread(record)
    assert rejected.status == "rejected"
    assert rejected.reason_code == "type_mismatch"
    assert rejected.content_type == "text/html"
    assert stage.keys("uploads-public") == []
    assert stage.keys(INCOMING, "incoming/") == []
    (quarantined,) = stage.keys(INCOMING, f"quarantine/{record.id}/")
    head = stage.aws.s3.head_object(Bucket=INCOMING, Key=quarantined)
    assert head["Metadata"]["reason"] == "type_mismatch"


@pytest.mark.parametrize(
    ("data", "declared", "code"),
    [
        (png_bytes(), len(png_bytes()) + 1, "size_mismatch"),
        (png_bytes() + b"\0" * 6 * 1024 * 1024, 100, "too_large"),
        (b"", 10, "empty"),
    ],
    ids=["smaller_than_declared", "over_the_profile_limit", "empty"],
)
def test_sizes_the_store_did_not_enforce_are_rejected(
    stage: Stage, data: bytes, declared: int | None, code: str
) -> None:
    record = stage.upload(data, declared_size=declared)
    assert stage.process(record) == "rejected"
    assert stage.reread(record).reason_code == code


def test_an_object_without_its_upload_id_metadata_is_rejected(
        stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    record = stage.upload(png_bytes(), metadata={})
    later = clock.now() + timedelta(minutes=5)  # old enough for its metadata to show
    monkeypatch.setattr(clock, "now", lambda: later)
    assert stage.process(record) == "rejected"
    assert stage.reread(record).reason_code == "unexpected_object"


def test_an_object_stored_after_the_permission_expired_is_rejected(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() - timedelta(hours=1))
    record = stage.uploads.create("alice", "avatar", "me.png", "image/png",
                                  len(png_bytes())).record
    monkeypatch.setattr(clock, "now", real_now)
    stage.store(record, png_bytes())
    assert stage.process(record) == "rejected"
    assert stage.reread(record).reason_code == "expired"


def test_an_upload_whose_object_arrived_is_not_expired_while_its_event_is_late(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = stage.upload(png_bytes())
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(minutes=30))
    assert stage.uploads.get("alice", record.id).status == "pending"  # read after it lapsed
    monkeypatch.setattr(clock, "now", real_now)
    assert stage.process(record) == "accepted"
    assert stage.reread(record).status == "ready"  # its one final state


def test_an_object_arriving_after_its_upload_expired_is_removed_quietly(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = stage.uploads.create("alice", "avatar", "me.png", "image/png",
                                  len(png_bytes())).record
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(minutes=30))
    assert stage.uploads.get("alice", record.id).status == "expired"
    stage.store(record, png_bytes())  # a store that ignores the policy's expiry took it
    assert stage.process(record) == "discarded"
    assert stage.reread(record).status == "expired"
    assert stage.keys(INCOMING) == []  # nothing unjudged left behind, nothing served


def test_a_duplicate_event_changes_nothing(stage: Stage) -> None:
    record = stage.upload(png_bytes())
    assert stage.process(record) == "accepted"
    ready = stage.reread(record)
    assert stage.process(record) == "gone"
    assert stage.reread(record) == ready
    assert stage.keys("uploads-public") == sorted(served_keys(ready))


def test_an_event_for_an_object_already_deleted_is_not_an_error(stage: Stage) -> None:
    record = stage.upload(png_bytes())
    stage.aws.s3.delete_object(Bucket=INCOMING, Key=record.incoming_key)
    assert stage.process(record) == "gone"
    assert stage.reread(record).status == "pending"


def test_a_crash_before_the_verdict_is_recorded_is_repaired_by_the_retry(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = stage.upload(png_bytes())
    real = stage.validator.records.transition
    calls = {"n": 0}

    def fail_when_settling(rec: UploadRecord, to: str, **kw: Any) -> UploadRecord | None:
        if to == "ready" and calls["n"] == 0:
            calls["n"] += 1
            raise StorageError("table unavailable")
        return real(rec, to, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(stage.validator.records, "transition", fail_when_settling)
    with pytest.raises(StorageError):
        stage.process(record)
    assert stage.reread(record).status == "processing"
    assert stage.process(record) == "accepted"
    assert stage.reread(record).status == "ready"
    assert stage.keys("uploads-public") == sorted(served_keys(stage.reread(record)))


def test_a_crash_after_the_verdict_leaves_cleanup_to_the_retry(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = stage.upload(png_bytes())
    real_delete = Storage.delete_judged

    def fail_once(self: Storage, obj: object) -> None:
        monkeypatch.setattr(Storage, "delete_judged", real_delete)
        raise StorageError("network down")

    monkeypatch.setattr(Storage, "delete_judged", fail_once)
    with pytest.raises(StorageError):
        stage.process(record)
    assert stage.reread(record).status == "ready"
    assert stage.process(record) == "duplicate"
    assert stage.keys(INCOMING, "incoming/") == []


def test_an_object_with_no_upload_is_quarantined(stage: Stage) -> None:
    stage.aws.s3.put_object(Bucket=INCOMING, Key="incoming/../../etc", Body=b"x")
    assert stage.validator.process(ObjectRef(INCOMING, "incoming/../../etc")) == "quarantined"
    assert stage.keys(INCOMING, "incoming/") == []
    assert len(stage.keys(INCOMING, "quarantine/unknown/")) == 1


def test_a_second_post_to_a_finished_upload_never_replaces_it(stage: Stage) -> None:
    png = png_bytes()
    record = stage.upload(png)
    stage.process(record)
    ready = stage.reread(record)
    before = stage.aws.s3.get_object(Bucket="uploads-public", Key=ready.stored_key or "")
    stage.store(record, HTML_AS_PNG)
    assert stage.process(record) == "quarantined"
    assert stage.reread(record) == ready
    body = stage.aws.s3.get_object(Bucket="uploads-public", Key=ready.stored_key or "")["Body"]
    assert body.read() == before["Body"].read()


def test_an_object_for_a_deleted_upload_is_discarded(stage: Stage) -> None:
    record = stage.upload(png_bytes())
    stage.aws.s3.copy_object(Bucket=INCOMING, Key=record.incoming_key + "-copy",
                             CopySource={"Bucket": INCOMING, "Key": record.incoming_key})
    stage.uploads.delete("alice", record.id)
    stage.aws.s3.copy_object(Bucket=INCOMING, Key=record.incoming_key,
                             CopySource={"Bucket": INCOMING, "Key": record.incoming_key + "-copy"})
    assert stage.process(record) == "discarded"
    assert stage.keys(INCOMING, record.incoming_key) == [record.incoming_key + "-copy"]


def test_without_versions_an_object_replaced_while_being_checked_is_retried_not_judged(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With versions (as provisioned) the judged version cannot change; see test_integrity.
    stage.aws.s3.put_bucket_versioning(Bucket=INCOMING,
                                       VersioningConfiguration={"Status": "Suspended"})
    monkeypatch.setattr("broker.storage.objects.FIRST_READ", 16)  # a file too big for one read
    record = stage.upload(png_bytes())
    real_read = Storage.read_range

    def replaced_first(self: Storage, obj: Any, start: int, length: int) -> bytes:
        stage.store(record, HTML_AS_PNG)
        monkeypatch.setattr(Storage, "read_range", real_read)
        return real_read(self, obj, start, length)

    monkeypatch.setattr(Storage, "read_range", replaced_first)
    with pytest.raises(ObjectChanged):
        stage.process(record)
    assert stage.keys("uploads-public") == []
    # The retry judges what is stored now.
    assert stage.process(record) == "rejected"
    assert stage.reread(record).reason_code == "size_mismatch"


def test_a_deletion_during_processing_removes_the_promoted_copy(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = stage.upload(pdf_bytes(), profile="document", filename="a.pdf",
                          content_type="application/pdf")
    real_copy = Storage.copy

    def delete_meanwhile(self: Storage, *args: Any, **kwargs: Any) -> Any:
        copied = real_copy(self, *args, **kwargs)
        current = stage.reread(record)
        stage.uploads.records.transition(current, "deleted", allowed_from=(current.status,))
        return copied

    monkeypatch.setattr(Storage, "copy", delete_meanwhile)
    assert stage.process(record) == "superseded"
    assert stage.keys("uploads-private") == []


def test_records_show_every_state(stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    def status(record: UploadRecord) -> str:
        return stage.uploads.get("alice", record.id).status

    pending = stage.uploads.create("alice", "avatar", "a.png", "image/png", 10).record
    assert status(pending) == "pending"
    processing = stage.uploads.records.transition(pending, "processing",
                                                  allowed_from=("pending",))
    assert processing is not None
    assert status(processing) == "processing"
    ready = stage.upload(png_bytes())
    stage.process(ready)
    assert status(ready) == "ready"
    rejected = stage.upload(HTML_AS_PNG)
    stage.process(rejected)
    assert status(rejected) == "rejected"
    lapsed = stage.uploads.create("alice", "avatar", "b.png", "image/png", 10).record
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(minutes=10))
    assert status(lapsed) == "expired"
    assert status(processing) == "processing"  # only pending uploads lapse


def judge(profile_name: str, filename: str, content_type: str, data: bytes) -> Verdict:
    profile = load_profiles().get(profile_name)
    declared = Declared(filename, content_type, len(data))
    return inspect(BytesSource(data), profile, declared, NoScanner()).verdict


def test_the_extension_must_fit_the_detected_type() -> None:
    verdict = judge("avatar", "me.gif", "image/png", png_bytes())
    assert not verdict.accepted
    assert verdict.reason is not None
    assert verdict.reason.code == "extension_mismatch"


def test_csv_detected_as_plain_text_is_served_as_csv() -> None:
    verdict = judge("document", "t.csv", "text/csv", b"name,amount\nalice,3\nbob,4\n")
    assert verdict.accepted
    assert verdict.content_type == "text/csv"


def test_a_neutralizing_profile_serves_the_csv_with_formulas_defused(
    settings: Settings, aws: AwsClients, tmp_path: Path
) -> None:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text('[sheet]\nvisibility = "private"\nmax_size = "1 MiB"\n'
                        'csv_formulas = "neutralize"\n[sheet.types]\n"text/csv" = ["csv"]\n')
    configured = settings.model_copy(update={"profiles_file": profiles})
    app = create_app(configured.model_dump(), clients=aws)
    stage = Stage(app, aws, compose(configured, aws).validator)
    data = b"name,total\r\nalice,=SUM(A1:A9)\r\nbob,-4\r\n"
    record = stage.upload(data, profile="sheet", filename="t.csv", content_type="text/csv")
    assert stage.process(record) == "accepted"
    ready = stage.reread(record)
    served = aws.s3.get_object(Bucket="uploads-private", Key=ready.stored_key or "")
    assert served["Body"].read() == b"name,total\r\nalice,'=SUM(A1:A9)\r\nbob,-4\r\n"
    assert served["ContentType"] == "text/csv"
    assert served["ContentDisposition"].startswith("attachment;")


def test_an_empty_object_is_judged_not_failed(stage: Stage) -> None:
    record = stage.upload(b"", declared_size=100)
    assert stage.process(record) == "rejected"
    assert stage.reread(record).reason_code == "empty"


def test_the_record_says_what_judged_the_upload(stage: Stage) -> None:
    from broker.domain.inspection import RULES_VERSION

    accepted = stage.upload(png_bytes())
    assert stage.process(accepted) == "accepted"
    assert stage.reread(accepted).judged_by == (f"rules {RULES_VERSION}; not scanned: "
                                                "no malware scanner")
    refused = stage.upload(b"<html><script>alert(1)</script></html>" * 4)
    assert stage.process(refused) == "rejected"
    assert stage.reread(refused).judged_by == f"rules {RULES_VERSION}; not scanned"


def _versions(stage: Stage, key: str) -> list[str]:
    listed = stage.aws.s3.list_object_versions(Bucket=INCOMING, Prefix=key)
    return [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == key]


@pytest.mark.parametrize("when", ["before the judgement", "during the judgement",
                                  "after the verdict"])
def test_an_object_overwritten_at_its_key_leaves_nothing_unjudged_behind(
        stage: Stage, monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    record = stage.uploads.create("alice", "avatar", "me.png", "image/png",
                                  len(png_bytes())).record
    key = record.incoming_key

    def overwrite() -> str:
        reply = stage.aws.s3.put_object(Bucket=INCOMING, Key=key, Body=b"<html>" * 20,
                                        Metadata={"upload-id": record.id})
        return str(reply["VersionId"])

    first = stage.aws.s3.put_object(Bucket=INCOMING, Key=key, Body=png_bytes(),
                                    Metadata={"upload-id": record.id})["VersionId"]
    events = [ObjectRef(INCOMING, key, version_id=first)]
    if when == "before the judgement":
        events.append(ObjectRef(INCOMING, key, version_id=overwrite()))
    elif when == "during the judgement":
        real = Validator._inspect
        calls: list[str] = []

        def judged_while_overwritten(self: Validator, *args: Any) -> Any:
            if not calls:
                calls.append("v2")
                second = overwrite()
                self.process(ObjectRef(INCOMING, key, version_id=second))  # its event, meanwhile
            return real(self, *args)

        monkeypatch.setattr(Validator, "_inspect", judged_while_overwritten)
    for event in events:
        stage.validator.process(event)
    if when == "after the verdict":
        stage.validator.process(ObjectRef(INCOMING, key, version_id=overwrite()))
    assert _versions(stage, key) == []  # every version judged or removed
    assert stage.reread(record).status in ("ready", "rejected")


def test_an_object_whose_metadata_shows_late_is_judged_not_refused(
        stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that announces an object before its metadata is readable (the emulator's
    form POST sets it in a second step) must not make a good file unexpected_object."""
    record = stage.upload(png_bytes())
    real = Storage.fetch
    fetches: list[int] = []

    def metadata_late(self: Storage, *args: Any, **kwargs: Any) -> Any:
        fetched = real(self, *args, **kwargs)
        fetches.append(1)
        if fetched is not None and len(fetches) <= 2:  # not yet, twice
            fetched.info.metadata.clear()
        return fetched

    monkeypatch.setattr(Storage, "fetch", metadata_late)
    assert stage.process(record) == "accepted"
    assert stage.reread(record).status == "ready"


def test_a_young_object_still_without_metadata_is_judged_later(
        stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    record = stage.upload(png_bytes())
    real = Storage.fetch

    def never(self: Storage, *args: Any, **kwargs: Any) -> Any:
        fetched = real(self, *args, **kwargs)
        if fetched is not None:
            fetched.info.metadata.clear()
        return fetched

    monkeypatch.setattr(Storage, "fetch", never)
    with pytest.raises(ObjectChanged, match="judged later"):
        stage.process(record)
    assert stage.reread(record).status == "pending"  # no verdict: the event is retried
    # Long after, without metadata still, it is what it looks like: not this upload's.
    later = clock.now() + timedelta(minutes=5)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert stage.process(record) == "rejected"
    assert stage.reread(record).reason_code == "unexpected_object"


def test_an_upload_planned_in_parts_is_judged_on_every_records_store(stage: Stage) -> None:
    """Its record carries the planned part size: a number the records store must give
    back as one (DynamoDB gives decimals), or the verdict's audit entry cannot be written
    and the upload never settles."""
    png = png_bytes()
    record = stage.uploads.create("alice", "avatar", "me.png", "image/png", len(png),
                                  method="multipart").record
    assert record.part_size is not None
    stage.store(record, png)
    assert stage.process(record) == "accepted"
    assert stage.reread(record).status == "ready"
