"""Judged again when the judge changes: a file accepted clean and matching a signature
added later is withdrawn (CDN told, quarantined, usage released, upload.withdrawn); a file
still fine is left exactly as it was."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from broker.aws.clients import AwsClients
from broker.compose import Parts, compose
from broker.domain.inspection.scanner import ClamdScanner
from broker.domain.records import served_keys
from broker.settings import Settings
from broker.validator.rejudge import rejudge
from tests.conftest import require_system
from tests.unit.test_cdn import _distribution, invalidated_paths, ready_upload

INCOMING = "uploads-incoming"
SECRET = "whsec_" + base64.b64encode(b"r" * 32).decode()


@pytest.fixture
def settings_with_cdn(settings: Settings, aws: AwsClients) -> Settings:
    return settings.model_copy(update={
        "cloudfront_distribution_id": _distribution(aws),
        "webhook_url": "https://hooks.example.test/uploads", "webhook_secret": SECRET})


def published(parts: Parts, aws: AwsClients, profile: str) -> tuple[str, bytes]:
    """An upload accepted (no scanner yet), and the bytes it is served as."""
    ready = ready_upload(parts, aws, profile)
    bucket = "uploads-public" if ready.visibility == "public" else "uploads-private"
    served = aws.s3.get_object(Bucket=bucket, Key=ready.stored_key)["Body"].read()
    return str(ready.id), served


@dataclass
class Learned:
    """An avatar and a document published unscanned; now judged with a real clamd whose
    signatures (tomorrow's) know the avatar as it is served."""

    parts: Parts
    avatar: str
    document: str
    files_before: int


@pytest.fixture
def learned(settings_with_cdn: Settings, aws: AwsClients, tmp_path: Path
            ) -> Iterator[Learned]:
    from tests.clamd_server import clamd_installed, running_clamd

    require_system("clamd", clamd_installed(), "apt-get install clamav clamav-daemon")
    before = compose(settings_with_cdn, aws)
    avatar, served = published(before, aws, "avatar")
    document, _ = published(before, aws, "document")
    files = before.records.usage("alice").files
    with running_clamd(tmp_path, signed={"Late-Signature": served}) as address:
        after = compose(settings_with_cdn, aws, scanner=ClamdScanner(address))
        yield Learned(after, avatar, document, files)


def test_a_file_found_bad_by_a_later_signature_is_withdrawn_and_the_rest_left_alone(
        learned: Learned, aws: AwsClients) -> None:
    after, avatar, document = learned.parts, learned.avatar, learned.document
    avatar_record, document_record = after.records.get(avatar), after.records.get(document)
    assert avatar_record is not None
    assert document_record is not None
    assert rejudge(after.validator, avatar_record) == "withdrawn"
    assert rejudge(after.validator, document_record) == "unchanged"

    withdrawn = after.records.get(avatar)
    assert withdrawn is not None
    assert withdrawn.status == "withdrawn"
    assert withdrawn.reason_code == "malware"
    assert (withdrawn.reason_detail or "").startswith("Late-Signature")
    assert "scanned by ClamAV" in (withdrawn.judged_by or "")
    # No longer served, kept in quarantine, usage released, the CDN and the app told.
    assert "Contents" not in aws.s3.list_objects_v2(Bucket="uploads-public", Prefix=avatar)
    kept = aws.s3.list_objects_v2(Bucket=INCOMING, Prefix=f"quarantine/{avatar}/")
    assert len(kept["Contents"]) == 1
    assert after.records.usage("alice").files == learned.files_before - 1
    assert after.cdn_purger is not None
    after.cdn_purger.purge_due()
    assert invalidated_paths(aws, after) == [[f"/{avatar}/*"]]
    (event,) = [d for d in after.records.webhooks("pending") if d.upload_id == avatar
                and d.type == "upload.withdrawn"]
    assert event.record().status == "withdrawn"
    # The document is exactly as it was: served, no copy, no event.
    still = after.records.get(document)
    assert still is not None
    assert still.status == "ready"
    assert aws.s3.list_objects_v2(Bucket="uploads-private", Prefix=document)["KeyCount"] == 1
    assert [d.type for d in after.records.webhooks("pending")
            if d.upload_id == document] == ["upload.ready"]
    # The owner sees why, through the API.
    view = after.render(withdrawn)
    assert view["status"] == "withdrawn"
    assert view["url"] is None
    assert view["removed_urls"] == [after.settings.public_url_for(k)
                                    for k in served_keys(withdrawn)]
    assert len(view["removed_urls"]) > 1  # its renditions too


def test_the_worker_judges_again_by_itself_when_the_signatures_change(
        learned: Learned) -> None:
    import threading
    import time

    from broker.validator.rejudge import run_rejudger

    after = learned.parts
    stop = threading.Event()
    worker = threading.Thread(target=run_rejudger, args=(after.validator, stop, 50.0, 0.1))
    worker.start()
    def judged_again() -> bool:  # both, in whichever order the pass takes them
        avatar, document = (after.records.get(learned.avatar),
                            after.records.get(learned.document))
        return avatar is not None and avatar.status == "withdrawn" and document is not None \
            and "scanned by ClamAV" in (document.judged_by or "")

    try:
        deadline = time.monotonic() + 20
        while not judged_again():
            assert time.monotonic() < deadline, "the worker did not judge them again"
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(timeout=30)
    still = after.records.get(learned.document)
    assert still is not None
    assert still.status == "ready"
    assert "scanned by ClamAV" in (still.judged_by or "")  # not judged again next time


def test_broker_rejudge_names_each_outcome(
        settings_with_cdn: Settings, aws: AwsClients, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from broker.cli import main

    parts = compose(settings_with_cdn, aws)
    avatar, _ = published(parts, aws, "avatar")
    pending = parts.uploads.create("alice", "avatar", "later.png", "image/png", 100).record
    capsys.readouterr()
    assert main(["rejudge", "--owner", "alice", "--rate", "100"]) == 0
    outcomes = json.loads(capsys.readouterr().out)
    assert outcomes == {avatar: "unchanged", pending.id: "not ready"}
    document, _ = published(parts, aws, "document")
    assert main(["rejudge", "--all", "--profile", "document", "--rate", "100"]) == 0
    assert json.loads(capsys.readouterr().out) == {document: "unchanged"}
    assert main(["rejudge", "--all", "--stale", "--rate", "100"]) == 0
    assert json.loads(capsys.readouterr().out) == {}  # all judged by today's rules
