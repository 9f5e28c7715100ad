"""`broker run` keeps the emulator's files on disk between runs, while files come and go."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
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
