"""`broker run` keeps the emulator's files on disk between runs, while files come and go."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from broker.devstack.keeping import EmulatorBuckets, StorageMirror, kept_in, restore


@mock_aws
def test_a_file_deleted_while_it_is_being_kept_is_skipped_and_the_rest_kept(
        tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="uploads-incoming")
    for name in ("judged", "waiting"):
        s3.put_object(Bucket="uploads-incoming", Key=f"incoming/{name}", Body=name.encode())
    source = EmulatorBuckets()
    fetch = source.fetch

    def judged_meanwhile(bucket: str, key: str) -> Any:  # moved on after the listing
        if key == "incoming/judged":
            s3.delete_object(Bucket=bucket, Key=key)
        return fetch(bucket, key)

    source.fetch = judged_meanwhile  # type: ignore[method-assign]
    mirror = StorageMirror(source, ("uploads-incoming",), tmp_path)
    mirror.sync()  # no error: nothing to keep of a file that is gone
    assert list(kept_in(tmp_path, "uploads-incoming")) == ["incoming/waiting"]


def test_passes_over_many_files_space_out_to_keep_the_mirror_a_small_share(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from broker.devstack import keeping

    now = [0.0]
    pauses: list[float] = []
    took = iter([0.01, 1.0, 0.01])  # a pass over few files, over many, over few again

    class Stop:
        def wait(self, seconds: float) -> bool:
            pauses.append(seconds)
            return len(pauses) > 3

    def one_pass() -> None:
        now[0] += next(took)

    monkeypatch.setattr(keeping.time, "monotonic", lambda: now[0])
    mirror = StorageMirror(EmulatorBuckets(), (), tmp_path)
    monkeypatch.setattr(mirror, "sync", one_pass)
    monkeypatch.setattr(mirror, "_stop", Stop())
    mirror._sync_until_stopped()
    assert pauses == [keeping.SYNC_SECONDS, keeping.SYNC_SECONDS,
                      keeping.PAUSE_PER_PASS * 1.0, keeping.SYNC_SECONDS]


@mock_aws
def test_a_kept_file_comes_back_with_its_headers_and_is_forgotten_only_once_deleted(
        tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="uploads-public")
    headers = {"ContentType": "image/webp", "CacheControl": "public, max-age=60",
               "ContentDisposition": 'inline; filename="a.webp"',
               "Metadata": {"upload-id": "up_1"}}
    s3.put_object(Bucket="uploads-public", Key="public/a.webp", Body=b"RIFF", **headers)
    StorageMirror(EmulatorBuckets(), ("uploads-public",), tmp_path).sync()
    s3.delete_object(Bucket="uploads-public", Key="public/a.webp")  # as a new run starts

    # The next run's mirror passes before the files are put back: it forgets none.
    mirror = StorageMirror(EmulatorBuckets(), ("uploads-public",), tmp_path)
    mirror.sync()
    assert restore(s3, ["uploads-public"], tmp_path) == 1
    got = s3.get_object(Bucket="uploads-public", Key="public/a.webp")
    assert got["Body"].read() == b"RIFF"
    assert {name: got[name] for name in headers} == headers

    mirror.sync()
    s3.delete_object(Bucket="uploads-public", Key="public/a.webp")  # deleted in this run
    mirror.sync()
    assert kept_in(tmp_path, "uploads-public") == {}
    assert not list((tmp_path / "uploads-public" / "objects").iterdir())


@mock_aws
def test_a_pass_appends_what_it_changed_and_a_crash_loses_at_most_the_last_line(
        tmp_path: Path) -> None:
    """Each pass adds its changes to a journal (the whole index is rewritten only now
    and then, and at stop); the next run reads both."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="uploads-public")
    mirror = StorageMirror(EmulatorBuckets(), ("uploads-public",), tmp_path)
    for n in range(3):
        s3.put_object(Bucket="uploads-public", Key=f"public/{n}", Body=f"{n}".encode())
        mirror.sync()
    s3.delete_object(Bucket="uploads-public", Key="public/0")
    mirror.sync()
    folder = tmp_path / "uploads-public"
    assert not (folder / "index.json").exists()  # the passes wrote only the journal
    assert sorted(kept_in(tmp_path, "uploads-public")) == ["public/1", "public/2"]
    with (folder / "journal.jsonl").open("a") as journal:
        journal.write('["public/9", {"file": "publ')  # the write a crash cut short
    assert sorted(kept_in(tmp_path, "uploads-public")) == ["public/1", "public/2"]

    # The next run goes on from there: what it keeps after the cut line is read.
    again = StorageMirror(EmulatorBuckets(), ("uploads-public",), tmp_path)
    s3.put_object(Bucket="uploads-public", Key="public/3", Body=b"3")
    again.sync()
    assert sorted(kept_in(tmp_path, "uploads-public")) == ["public/1", "public/2",
                                                           "public/3"]

    again.stop()  # the whole index, written at stop
    assert sorted(json.loads((folder / "index.json").read_text())) == ["public/1", "public/2",
                                                                        "public/3"]
    assert not (folder / "journal.jsonl").exists()


@mock_aws
def test_a_pass_reads_only_what_changed_since_the_last_one(tmp_path: Path) -> None:
    """A pass over thousands of files held the emulator's interpreter for a tenth of a
    second: files the last pass saw unchanged are not read again, and a file rewritten
    with the same bytes but new headers (a copy onto itself) is kept anew."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="uploads-public")
    for n in range(50):
        s3.put_object(Bucket="uploads-public", Key=f"public/{n}", Body=b"same bytes",
                      ContentType="image/png")
    source = EmulatorBuckets()
    fetched: list[str] = []
    fetch = source.fetch

    def counted(bucket: str, key: str) -> Any:
        fetched.append(key)
        return fetch(bucket, key)

    source.fetch = counted  # type: ignore[method-assign]
    mirror = StorageMirror(source, ("uploads-public",), tmp_path)
    mirror.sync()
    assert len(fetched) == 50
    fetched.clear()
    mirror.sync()
    assert fetched == []  # nothing changed: nothing read
    s3.copy_object(Bucket="uploads-public", Key="public/7", MetadataDirective="REPLACE",
                   CopySource={"Bucket": "uploads-public", "Key": "public/7"},
                   ContentType="image/webp", Metadata={"upload-id": "up_7"})
    mirror.sync()
    assert fetched == ["public/7"]
    kept = kept_in(tmp_path, "uploads-public")["public/7"]
    assert (kept["ContentType"], kept["Metadata"]) == ("image/webp", {"upload-id": "up_7"})
