"""`broker erase OWNER`: nothing of one person stays in any bucket, in any version; their
records become tombstones without file names; a run cut short is finished by the next."""

from __future__ import annotations

from typing import Any

import pytest

from broker.aws.clients import AwsClients
from broker.compose import Parts, compose
from broker.domain.erasure import erase_owner
from broker.settings import Settings
from broker.validator.events import ObjectRef
from tests.samples import HTML_AS_PNG, pdf_bytes, png_bytes
from tests.unit.test_cdn import _distribution, invalidated_paths

INCOMING = "uploads-incoming"
BUCKETS = ("uploads-incoming", "uploads-public", "uploads-private")


@pytest.fixture
def parts(settings: Settings, aws: AwsClients) -> Parts:
    with_cdn = settings.model_copy(update={"cloudfront_distribution_id": _distribution(aws)})
    return compose(with_cdn, aws)


def judged(parts: Parts, aws: AwsClients, owner: str, profile: str, data: bytes,
           name: str, kind: str, overwritten_by: bytes | None = None) -> str:
    record = parts.uploads.create(owner, profile, name, kind, len(data)).record
    for body in (data, overwritten_by) if overwritten_by else (data,):
        aws.s3.put_object(Bucket=INCOMING, Key=record.incoming_key, Body=body,
                          Metadata={"upload-id": record.id})
    parts.validator.process(ObjectRef(INCOMING, record.incoming_key))
    return str(record.id)


def everything_of(aws: AwsClients, upload_ids: list[str]) -> list[str]:
    """Every object, version and delete marker anywhere that names one of these uploads."""
    found = []
    for bucket in BUCKETS:
        listed = aws.s3.list_object_versions(Bucket=bucket)
        for entry in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]:
            if any(upload_id in entry["Key"] for upload_id in upload_ids):
                found.append(f"{bucket}/{entry['Key']}@{entry.get('VersionId')}")
    return found


@pytest.fixture
def alice(parts: Parts, aws: AwsClients) -> list[str]:
    """Alice's uploads of every kind: public, private, rejected (quarantined), one whose
    object was overwritten (two versions), and one still pending."""
    ids = [judged(parts, aws, "alice", "avatar", png_bytes(), "me.png", "image/png"),
           judged(parts, aws, "alice", "document", pdf_bytes(), "cv.pdf", "application/pdf"),
           judged(parts, aws, "alice", "avatar", HTML_AS_PNG, "x.png", "image/png"),
           judged(parts, aws, "alice", "avatar", png_bytes(), "y.png", "image/png",
                  overwritten_by=png_bytes(40, 40)[:len(png_bytes())])]
    pending = parts.uploads.create("alice", "avatar", "later.png", "image/png", 100).record
    ids.append(pending.id)
    assert everything_of(aws, ids)  # there is something to erase
    return ids


def test_nothing_of_an_erased_owner_stays_in_any_bucket(
        parts: Parts, aws: AwsClients, alice: list[str]) -> None:
    bob = judged(parts, aws, "bob", "avatar", png_bytes(), "bob.png", "image/png")
    report = erase_owner(parts.uploads, "alice")
    assert sorted(report.uploads) == sorted(alice)
    assert everything_of(aws, alice) == []
    for upload_id in alice:
        tombstone = parts.records.get(upload_id)
        assert tombstone is not None
        assert (tombstone.status, tombstone.filename) == ("deleted", "")
    assert parts.records.list_by_owner("alice")[0] == []
    usage = parts.records.usage("alice")
    assert (usage.bytes, usage.files) == (0, 0)  # the quota is released
    # Bob's upload is untouched.
    bob_record = parts.records.get(bob)
    assert bob_record is not None
    assert bob_record.status == "ready"
    assert everything_of(aws, [bob])
    # The CDN is told of alice's public file, and of nothing else.
    assert parts.cdn_purger is not None
    parts.cdn_purger.purge_due()
    assert invalidated_paths(aws, parts) == [[f"/{alice[0]}/*"]]


def test_an_erasure_cut_short_is_finished_by_running_it_again(
        parts: Parts, aws: AwsClients, alice: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = type(parts.records).transition
    calls = {"n": 0}

    def crash_on_the_third(self: Any, record: Any, to: str, **kw: Any) -> Any:
        if to == "deleted":
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("the process was killed")
        return real(self, record, to, **kw)

    monkeypatch.setattr(type(parts.records), "transition", crash_on_the_third)
    with pytest.raises(RuntimeError):
        erase_owner(parts.uploads, "alice")
    monkeypatch.setattr(type(parts.records), "transition", real)
    again = erase_owner(parts.uploads, "alice")
    assert len(again.uploads) == len(alice) - 2  # the two finished before the crash
    assert everything_of(aws, alice) == []
    assert parts.records.list_by_owner("alice")[0] == []


def test_broker_erase_lists_first_and_erases_with_yes(
        parts: Parts, aws: AwsClients, alice: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from broker.cli import main

    monkeypatch.setenv("BROKER_CLOUDFRONT_DISTRIBUTION_ID",
                       str(parts.settings.cloudfront_distribution_id))
    assert main(["erase", "alice"]) == 1
    listed = capsys.readouterr().out
    assert "me.png" in listed
    assert "5 uploads of 'alice' would be erased" in listed
    assert "--yes" in listed
    assert everything_of(aws, alice)  # nothing erased yet
    assert main(["erase", "alice", "--yes"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["uploads_erased"] == 5
    assert everything_of(aws, alice) == []
    assert invalidated_paths(aws, parts) == [[f"/{alice[0]}/*"]]
    assert main(["erase", "alice"]) == 0
    assert "'alice' has no uploads to erase" in capsys.readouterr().out
