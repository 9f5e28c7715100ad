"""What is served is what was judged, on any store; nothing newer is lost; nothing leaks.

The emulator ignores `CopySourceIfMatch`, so a swap during the copy is a real swap here.
Each test ends with the same ledger: nothing unchecked published, every stored object
judged or quarantined, nothing left in incoming/ (current or older versions).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from PIL import Image

from broker.aws.clients import AwsClients
from broker.domain.records import DynamoRecords, UploadRecord
from broker.storage import ObjectChanged, ObjectInfo, Storage
from broker.validator.events import ObjectRef
from broker.validator.judge import Validator
from tests.samples import HTML_AS_PNG, auth, pdf_bytes, png_bytes
from tests.unit.test_validator import INCOMING, Stage


def _other_png() -> bytes:
    """A different picture of exactly the size of `png_bytes()`, so only content differs."""
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (30, 200, 30)).save(out, "PNG")
    assert len(out.getvalue()) == len(png_bytes())
    return out.getvalue()


OTHER_PNG = _other_png()


@dataclass(frozen=True)
class Kind:
    """One way a file is delivered: a public image re-encoded, a private file copied."""

    profile: str
    filename: str
    content_type: str
    data: bytes
    swapped_in: bytes  # other bytes of the same size that would pass the checks too
    copy_part_size: int | None = None  # served by a copy in parts of this size


def _text(seed: int, size: int = 12 * 1024 * 1024 + 5) -> bytes:
    line = f"{seed}: a large document, copied to where it is served in parts\n".encode()
    return (line * (size // len(line) + 1))[:size]


def _other_pdf() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (60, 80), "black").save(out, "PDF")
    assert len(out.getvalue()) == len(pdf_bytes())
    return out.getvalue()


KINDS = [Kind("avatar", "me.png", "image/png", png_bytes(), OTHER_PNG),
         Kind("document", "a.pdf", "application/pdf", pdf_bytes(), _other_pdf()),
         Kind("document", "big.txt", "text/plain", _text(1), _text(2), 5 * 1024 * 1024)]
KIND_IDS = ["reencoded-image", "copied-document", "copied-in-parts"]


@pytest.fixture(params=KINDS, ids=KIND_IDS)
def kind(request: pytest.FixtureRequest) -> Kind:
    found: Kind = request.param
    return found


def upload(stage: Stage, kind: Kind) -> UploadRecord:
    if kind.copy_part_size:  # what a store does above 5 GiB, at a size a test can afford
        object.__setattr__(stage.validator, "settings", stage.validator.settings.model_copy(
            update={"multipart_copy_threshold": kind.copy_part_size,
                    "multipart_copy_part_size": kind.copy_part_size}))
    return stage.upload(kind.data, profile=kind.profile, filename=kind.filename,
                        content_type=kind.content_type)


def delivered_from(stage: Stage, record: UploadRecord, data: bytes) -> bool:
    """Whether what is served is `data` itself, or (re-encoded) the same picture."""
    got = served(stage, record)
    if got == data:
        return True
    if stage.reread(record).visibility != "public":
        return False
    with Image.open(io.BytesIO(got)) as a, Image.open(io.BytesIO(data)) as b:
        return a.convert("RGB").tobytes() == b.convert("RGB").tobytes()


@pytest.fixture
def stage(app: Flask, aws: AwsClients, validator: Validator) -> Stage:
    return Stage(app, aws, validator)


def versions(aws: AwsClients, prefix: str = "incoming/") -> list[dict[str, Any]]:
    """Every stored version under `prefix` in the incoming bucket, current or not."""
    reply = aws.s3.list_object_versions(Bucket=INCOMING, Prefix=prefix)
    return list(reply.get("Versions", []))


def served(stage: Stage, record: UploadRecord) -> bytes:
    current = stage.reread(record)
    bucket = "uploads-public" if current.visibility == "public" else "uploads-private"
    body: bytes = stage.aws.s3.get_object(Bucket=bucket, Key=current.stored_key or "")[
        "Body"].read()
    return body


def process_every_version(stage: Stage) -> list[str]:
    """Deliver an event for each version still in incoming/, as the store would."""
    return [stage.validator.process(ObjectRef(INCOMING, v["Key"], version_id=v["VersionId"]))
            for v in versions(stage.aws)]


def swap_during(monkeypatch: pytest.MonkeyPatch, stage: Stage, method: str,
                record: UploadRecord, data: bytes) -> None:
    """Before the validator's next `method` call, another upload replaces the object."""
    real = getattr(Storage, method)

    def swapped(self: Storage, *args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(Storage, method, real)
        stage.store(record, data)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Storage, method, swapped)


def unversioned(stage: Stage) -> None:
    """A store without versions (a bring-your-own bucket where they are off)."""
    stage.aws.s3.put_bucket_versioning(Bucket=INCOMING,
                                       VersioningConfiguration={"Status": "Suspended"})


def test_a_swap_during_delivery_never_publishes_the_new_bytes(
        stage: Stage, kind: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    record = upload(stage, kind)
    swap_during_second(monkeypatch, stage, record, HTML_AS_PNG)
    assert stage.process(record) == "accepted"
    assert delivered_from(stage, record, kind.data)
    # The swapped-in object is neither served nor dropped: the verdict quarantines it,
    # so nothing waits on its own event (which may be lost).
    assert versions(stage.aws) == []
    assert process_every_version(stage) == []
    assert len(stage.keys(INCOMING, "quarantine/")) == 1


def test_without_versions_a_swap_during_delivery_is_withdrawn_and_judged_again(
        stage: Stage, kind: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    unversioned(stage)
    record = upload(stage, kind)
    swap_during_second(monkeypatch, stage, record, HTML_AS_PNG)
    with pytest.raises(ObjectChanged):
        stage.process(record)
    assert stage.keys("uploads-public") == []
    assert stage.keys("uploads-private") == []
    assert stage.reread(record).status == "processing"
    assert stage.process(record) == "rejected"  # the retry judges what is there now
    assert stage.reread(record).reason_code in ("type_mismatch", "size_mismatch")
    assert stage.keys("uploads-public") == []
    assert stage.keys("uploads-private") == []
    assert stage.keys(INCOMING, "incoming/") == []


def test_without_versions_an_accepted_swap_is_served_as_itself(
        stage: Stage, kind: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    unversioned(stage)
    record = upload(stage, kind)
    swap_during_second(monkeypatch, stage, record, kind.swapped_in)
    with pytest.raises(ObjectChanged):
        stage.process(record)
    assert stage.process(record) == "accepted"
    assert delivered_from(stage, record, kind.swapped_in)
    assert stage.reread(record).sha256 == hashlib.sha256(kind.swapped_in).hexdigest()


def swap_during_second(monkeypatch: pytest.MonkeyPatch, stage: Stage, record: UploadRecord,
                       data: bytes) -> None:
    """The object is replaced after it was judged (the first whole read, the scan's), as
    the served file is made from it (a copy, or the rewrite's second read)."""
    if record.visibility == "private":
        swap_during(monkeypatch, stage, "copy", record, data)
        return
    # A file bigger than the first read: the rewrite reads it from the store again.
    monkeypatch.setattr("broker.storage.objects.FIRST_READ", 16)
    real = Storage.iter_chunks
    reads = []

    def second_read_swapped(self: Storage, *args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        if len(reads) == 2:
            monkeypatch.setattr(Storage, "iter_chunks", real)
            stage.store(record, data)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Storage, "iter_chunks", second_read_swapped)


def test_an_upload_landing_after_the_verdict_is_quarantined_not_deleted(
        stage: Stage, kind: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    for versioning in ("on", "off"):
        if versioning == "off":
            unversioned(stage)
        record = upload(stage, kind)
        swap_during(monkeypatch, stage, "delete_judged", record, HTML_AS_PNG)
        assert stage.process(record) == "accepted"
        assert delivered_from(stage, record, kind.data)
        if versioning == "off":  # one object a key: the newer one survived, for its event
            assert len(stage.keys(INCOMING, "incoming/")) == 1
            assert stage.process(record) == "quarantined"
        # With versions, the verdict itself quarantined the newer one.
        assert stage.keys(INCOMING, "incoming/") == []
        assert versions(stage.aws) == []


class LostAnswers:
    """A records client whose conditional writes succeed but whose answers are lost, so
    the SDK sends each again: the second attempt's condition fails."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_item(self, **kwargs: Any) -> Any:
        self._client.put_item(**kwargs)
        return self._client.put_item(**kwargs)


def test_a_write_retried_after_a_lost_answer_is_recognised(stage: Stage) -> None:
    records = stage.validator.records
    flaky = DynamoRecords(LostAnswers(records.client), records.table)  # type: ignore[arg-type]
    object.__setattr__(stage.validator, "records", flaky)
    record = stage.upload(png_bytes())
    assert stage.process(record) == "accepted"
    assert stage.reread(record).status == "ready"
    assert stage.keys(INCOMING, "incoming/") == []
    assert versions(stage.aws) == []


def test_an_event_for_a_version_already_judged_is_a_duplicate(stage: Stage) -> None:
    record = stage.upload(png_bytes())
    (version,) = versions(stage.aws)
    assert stage.process(record) == "accepted"
    ref = ObjectRef(INCOMING, record.incoming_key, version_id=version["VersionId"])
    assert stage.validator.process(ref) == "gone"
    assert stage.keys(INCOMING) == []


def test_delete_judged_keeps_a_newer_object_on_a_store_without_versions(
        stage: Stage) -> None:
    unversioned(stage)
    record = stage.upload(png_bytes())
    judged = stage.validator.storage.head(INCOMING, record.incoming_key)
    assert isinstance(judged, ObjectInfo)
    assert judged.version_id is None
    stage.store(record, HTML_AS_PNG)
    assert stage.validator.storage.delete_judged(judged) is False
    assert stage.keys(INCOMING, "incoming/") == [record.incoming_key]


def test_a_create_whose_answer_was_lost_is_not_an_error(app: Flask) -> None:
    uploads = app.extensions["broker"].uploads
    uploads.records = DynamoRecords(LostAnswers(uploads.records.client),  # type: ignore[arg-type]
                              uploads.records.table)
    reply = app.test_client().post("/v1/uploads", headers=auth("alice"), json={
        "profile": "avatar", "filename": "me.png", "content_type": "image/png", "size": 99})
    assert reply.status_code == 201, reply.get_json()
    assert uploads.records.get(reply.get_json()["id"]).status == "pending"


def test_a_copy_in_parts_serves_the_judged_bytes_and_leaves_no_parts(stage: Stage) -> None:
    kind = KINDS[2]
    record = upload(stage, kind)
    assert stage.process(record) == "accepted"
    current = stage.reread(record)
    served_head = stage.aws.s3.head_object(Bucket="uploads-private", Key=current.stored_key or "")
    assert served_head["ETag"].endswith('-3"')  # three parts of 5 MiB, copied by the store
    assert served_head["ContentDisposition"].startswith("attachment")
    assert served(stage, record) == kind.data
    assert current.sha256 == hashlib.sha256(kind.data).hexdigest()
    for bucket in ("uploads-private", INCOMING):
        assert stage.aws.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_rejected_large_object_is_quarantined_in_parts(stage: Stage) -> None:
    kind = KINDS[2]
    record = upload(stage, Kind(kind.profile, kind.filename, kind.content_type,
                                kind.data[:-5] + b"\x00\x00\x00\x00\x00", kind.data,
                                kind.copy_part_size))
    assert stage.process(record) == "rejected"
    assert stage.reread(record).reason_code == "invalid_text"
    (quarantined,) = stage.keys(INCOMING, "quarantine/")
    head = stage.aws.s3.head_object(Bucket=INCOMING, Key=quarantined)
    assert head["ETag"].endswith('-3"')
    assert head["Metadata"]["reason"] == "invalid_text"
    assert stage.keys(INCOMING, "incoming/") == []


@pytest.mark.parametrize("store_says", ["the judged parts", "other parts"])
def test_a_copy_in_parts_is_proved_by_the_stores_part_checksums(
        stage: Stage, monkeypatch: pytest.MonkeyPatch, store_says: str) -> None:
    """Stores that checksum each copied part (AWS S3) prove the copy without a read-back."""
    from broker.storage import Copied, HashedStream

    kind = KINDS[2]
    record = upload(stage, kind)
    judged = HashedStream([kind.data], kind.copy_part_size)
    list(judged)
    parts = judged.part_hexdigests()
    if store_says == "other parts":
        parts = (parts[0], hashlib.sha256(b"something else").hexdigest(), parts[2])
    real_copy, reads = Storage.copy, []

    def checksummed(self: Storage, *args: Any, **kwargs: Any) -> Copied:
        real_copy(self, *args, **kwargs)
        return Copied(part_sha256=parts)

    monkeypatch.setattr(Storage, "copy", checksummed)
    monkeypatch.setattr(Storage, "sha256", lambda *a: reads.append(a))  # never read back
    if store_says == "the judged parts":
        assert stage.process(record) == "accepted"
        assert served(stage, record) == kind.data
    else:
        with pytest.raises(ObjectChanged):
            stage.process(record)
        assert stage.keys("uploads-private") == []  # withdrawn
    assert reads == []


def test_part_digests_do_not_depend_on_how_the_stream_is_chunked() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from broker.storage import HashedStream

    data = bytes(range(256)) * 41  # 10,496 bytes: parts of 1,000, the last 496

    @given(st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=40))
    @settings(max_examples=200, derandomize=True, database=None)
    def same_digests(cuts: list[int]) -> None:
        chunks, at = [], 0
        for cut in cuts:
            chunks.append(data[at:at + cut])
            at += cut
        chunks.append(data[at:])
        hashed = HashedStream([c for c in chunks if c], 1000)
        assert b"".join(hashed) == data
        assert hashed.part_hexdigests() == tuple(
            hashlib.sha256(data[i:i + 1000]).hexdigest() for i in range(0, len(data), 1000))

    same_digests()
