"""A crash between any two steps of the validator loses nothing and publishes nothing
twice: the redelivered event (three times over) and the sweeper finish the work.

Each storage or records call is a step. A clean run is counted first; then, for every
n, a validator dies just before its n-th call and a fresh one takes over.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from broker.aws.clients import AwsClients
from broker.common import clock
from broker.domain.records import DynamoRecords, served_keys
from broker.settings import Settings
from broker.storage import Storage
from broker.validator.events import ObjectRef
from broker.validator.judge import Validator
from broker.validator.sweep import sweep
from tests.ledger import count
from tests.samples import HTML_AS_PNG, pdf_bytes, png_bytes, store_upload

CASES = {
    "public image, re-encoded": ("avatar", "me.png", "image/png", png_bytes()),
    "private document, copied": ("document", "a.pdf", "application/pdf", pdf_bytes()),
    "spoofed file, quarantined": ("avatar", "x.png", "image/png", HTML_AS_PNG),
}


class Crash(BaseException):
    """The process dies: nothing catches this."""


class Counting:
    """A client that counts its calls and dies just before call number `crash_at`."""

    def __init__(self, client: Any, calls: list[str], crash_at: int | None) -> None:
        self._client, self._calls, self._crash_at = client, calls, crash_at

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith(("generate_", "get_paginator")):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.append(name)
            if len(self._calls) == self._crash_at:
                raise Crash(name)
            return attribute(*args, **kwargs)
        return call


def validator_with(base: Validator, calls: list[str], crash_at: int | None) -> Validator:
    records = DynamoRecords(Counting(base.records.client, calls, crash_at),  # type: ignore[arg-type]
                      base.records.table)
    storage = Storage(Counting(base.storage.client, calls, crash_at))  # type: ignore[arg-type]
    return Validator(base.settings, base.profiles, records, storage, base.scanner)


def steps_of_a_clean_run(app: Flask, aws: AwsClients, validator: Validator,
                         case: tuple[str, str, str, bytes]) -> tuple[str, list[str]]:
    profile, filename, content_type, data = case
    upload_id = store_upload(app, aws, data, profile=profile, filename=filename,
                             content_type=content_type)
    calls: list[str] = []
    validator_with(validator, calls, None).process(
        ObjectRef("uploads-incoming", f"incoming/{upload_id}"))
    return upload_id, calls


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_crash_between_any_two_steps_loses_nothing(
        app: Flask, aws: AwsClients, validator: Validator, settings: Settings,
        case: tuple[str, str, str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    profile, filename, content_type, data = case
    clean_run, steps = steps_of_a_clean_run(app, aws, validator, case)
    assert len(steps) >= 5, steps
    uploads: dict[str, bytes] = {clean_run: data}
    for crash_at in range(1, len(steps) + 1):
        upload_id = store_upload(app, aws, data, profile=profile, filename=filename,
                                 content_type=content_type)
        uploads[upload_id] = data
        ref = ObjectRef("uploads-incoming", f"incoming/{upload_id}")
        with pytest.raises(Crash):
            validator_with(validator, [], crash_at).process(ref)
        for _ in range(3):  # the event again, and its duplicates
            validator.process(ref)
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(hours=1))
    sweep(validator)
    ledger = count(aws.s3, validator.records, settings, uploads)
    assert ledger.clean, ledger
    print(f"{case[1]}: {len(steps)} steps ({', '.join(steps)}); crash before each: "
          f"{ledger.summary()}")


def test_a_small_file_is_judged_from_one_read_of_the_store(
        app: Flask, aws: AwsClients, validator: Validator) -> None:
    # An avatar: its facts and all its bytes from one ranged GET (no HEAD, no re-read),
    # the re-encoded file and each rendition stored with one PUT; then one listing, so
    # no version overwritten at its key stays unjudged.
    upload_id, calls = steps_of_a_clean_run(app, aws, validator,
                                            CASES["public image, re-encoded"])
    settled = validator.records.get(upload_id)
    assert settled is not None
    files = len(served_keys(settled))  # the file, and its renditions that differ
    assert files > 1
    assert calls == ["get_object", "get_item", "transact_write_items",
                     *["put_object"] * files,
                     "transact_write_items", "delete_object", "list_object_versions"]


def test_a_file_larger_than_the_first_read_is_read_in_ranges(
        app: Flask, aws: AwsClients, validator: Validator,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("broker.storage.objects.FIRST_READ", 64)
    upload_id, calls = steps_of_a_clean_run(app, aws, validator,
                                            CASES["public image, re-encoded"])
    assert calls[0] == "get_object"
    assert "head_object" not in calls
    assert calls.count("get_object") > 1  # the rest of the file, read as it is checked
    record = validator.records.get(upload_id)
    assert record is not None
    assert record.status == "ready"
