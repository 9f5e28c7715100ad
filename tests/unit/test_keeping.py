"""`broker run` keeps the emulator's files on disk between runs, while files come and go."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from broker.devstack.keeping import StorageMirror


@mock_aws
def test_a_file_deleted_while_it_is_being_kept_is_skipped_and_the_rest_kept(
        tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="uploads-incoming")
    for name in ("judged", "waiting"):
        s3.put_object(Bucket="uploads-incoming", Key=f"incoming/{name}", Body=name.encode())
    fetch = s3.get_object

    def judged_meanwhile(**call: Any) -> Any:  # the validator moves it on after the listing
        if call["Key"] == "incoming/judged":
            s3.delete_object(Bucket=call["Bucket"], Key=call["Key"])
        return fetch(**call)

    s3.get_object = judged_meanwhile  # type: ignore[method-assign]
    mirror = StorageMirror(s3, ("uploads-incoming",), tmp_path)
    mirror.sync()  # no error: nothing to keep of a file that is gone
    index = json.loads((tmp_path / "uploads-incoming" / "index.json").read_text())
    assert list(index) == ["incoming/waiting"]


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
    mirror = StorageMirror(boto3.client("s3", region_name="us-east-1"), (), tmp_path)
    monkeypatch.setattr(mirror, "sync", one_pass)
    monkeypatch.setattr(mirror, "_stop", Stop())
    mirror._sync_until_stopped()
    assert pauses == [keeping.SYNC_SECONDS, keeping.SYNC_SECONDS,
                      keeping.PAUSE_PER_PASS * 1.0, keeping.SYNC_SECONDS]
