"""Nothing stays unsettled: lapsed uploads expire unread, stuck ones settle, dead letters
are counted and sent back, and the worker deletes each message as soon as it is done."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from broker.aws.clients import AwsClients
from broker.aws.queue import Lease, dead_letter_url_of, redrive
from broker.common import clock
from broker.compose import compose
from broker.domain.records import UploadRecord
from broker.runtimes.sqs_worker import poll_once
from broker.validator.judge import Validator
from broker.validator.sweep import sweep
from lambdas.validator import handler as lambda_handler
from tests.samples import png_bytes
from tests.unit.test_validator import INCOMING, Stage


@pytest.fixture
def stage(app: Flask, aws: AwsClients, validator: Validator) -> Stage:
    return Stage(app, aws, validator)


def later(monkeypatch: pytest.MonkeyPatch, **delta: float) -> None:
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(**delta))


def status(stage: Stage, record: UploadRecord) -> str:
    return stage.reread(record).status


def test_a_lapsed_pending_upload_expires_without_being_read(
        stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    record = stage.uploads.create("alice", "avatar", "me.png", "image/png", 10).record
    assert sweep(stage.validator).expired == []  # still within its permission
    later(monkeypatch, minutes=10)
    assert sweep(stage.validator).expired == [record.id]
    assert status(stage, record) == "expired"
    assert sweep(stage.validator).expired == []  # once


def test_an_upload_whose_event_was_lost_is_judged_by_the_sweep(
        stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    record = stage.uploads.create("alice", "avatar", "me.png", "image/png",
                                  len(png_bytes())).record
    stage.store(record, png_bytes())  # stored, but no event ever processed
    later(monkeypatch, minutes=10)
    # Arrived in time (the store's clock says so), so it is judged, not expired.
    assert sweep(stage.validator).redriven == {record.id: "accepted"}
    assert status(stage, record) == "ready"


def claim_and_crash(stage: Stage, record: UploadRecord) -> None:
    """The validator claimed the record and died before settling it."""
    obj = stage.validator.storage.head(INCOMING, record.incoming_key)
    assert obj is not None
    assert stage.validator.records.transition(
        record, "processing", allowed_from=("pending",), etag=obj.etag) is not None


def test_a_record_stuck_processing_is_judged_again(
        stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    record = stage.upload(png_bytes())
    claim_and_crash(stage, record)
    assert sweep(stage.validator).redriven == {}  # it may still be being judged
    later(monkeypatch, seconds=stage.validator.settings.stuck_after + 1)
    assert sweep(stage.validator).redriven == {record.id: "accepted"}
    assert status(stage, record) == "ready"


def test_a_record_stuck_processing_whose_object_is_gone_expires(
        stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    record = stage.upload(png_bytes())
    claim_and_crash(stage, record)
    stage.aws.s3.delete_object(Bucket=INCOMING, Key=record.incoming_key)
    later(monkeypatch, seconds=stage.validator.settings.stuck_after + 1)
    assert sweep(stage.validator).expired == [record.id]
    assert status(stage, record) == "expired"


def test_dead_letters_are_counted_and_sent_back(aws: AwsClients, validator: Validator,
                                                queue_url: str) -> None:
    dead = dead_letter_url_of(aws.sqs, queue_url)
    assert dead is not None
    for body in ("one", "two", "three"):
        aws.sqs.send_message(QueueUrl=dead, MessageBody=body)
    assert sweep(validator, aws.sqs, dead).dead_letters == 3
    aws.sqs.purge_queue(QueueUrl=queue_url)
    assert redrive(aws.sqs, dead, queue_url) == 3
    assert sweep(validator, aws.sqs, dead).dead_letters == 0
    bodies = [m["Body"] for m in aws.sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]]
    assert sorted(bodies) == ["one", "three", "two"]


def test_the_schedule_runs_the_sweeper_on_lambda(
        stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    record = stage.uploads.create("alice", "avatar", "me.png", "image/png", 10).record
    parts = compose(stage.validator.settings, stage.aws, records=stage.validator.records)
    monkeypatch.setattr(lambda_handler, "_parts", lambda: parts)
    later(monkeypatch, minutes=10)
    reply = lambda_handler.handler({"detail-type": "Scheduled Event",
                                    "source": "aws.events"})
    assert reply["expired"] == [record.id]


def counts(aws: AwsClients, queue_url: str) -> tuple[int, int]:
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                            "ApproximateNumberOfMessagesNotVisible"])
    a = attributes["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def test_the_worker_deletes_each_message_as_soon_as_it_is_done(
        stage: Stage, queue_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    aws = stage.aws
    aws.sqs.purge_queue(QueueUrl=queue_url)
    records = [stage.upload(png_bytes(8 + i, 8)) for i in range(3)]
    real_process = Validator.process
    done: list[Any] = []

    def crash_on_third(self: Validator, ref: Any) -> Any:
        if len(done) == 2:
            raise KeyboardInterrupt  # the process dies mid-batch
        done.append(ref)
        return real_process(self, ref)

    monkeypatch.setattr(Validator, "process", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        poll_once(stage.validator, aws.sqs, queue_url, wait_seconds=0)
    # The two finished messages are gone already; only the unfinished one remains.
    assert sum(counts(aws, queue_url)) == 1
    assert [status(stage, r) for r in records].count("ready") == 2


def test_a_lease_hands_back_what_was_not_started(aws: AwsClients, queue_url: str) -> None:
    aws.sqs.purge_queue(QueueUrl=queue_url)
    aws.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": []}))
    lease = Lease(aws.sqs, queue_url)
    assert len(lease.receive(10, wait_seconds=0)) == 1
    assert counts(aws, queue_url) == (0, 1)
    lease.release_all()
    assert counts(aws, queue_url) == (1, 0)


def test_a_lease_keeps_a_long_judged_message_from_a_second_worker(
        aws: AwsClients, queue_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from broker.aws import queue

    monkeypatch.setattr(queue, "LEASE_SECONDS", 2)
    monkeypatch.setattr(queue, "RENEW_EVERY_SECONDS", 0.5)
    aws.sqs.purge_queue(QueueUrl=queue_url)
    aws.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": []}))
    with Lease(aws.sqs, queue_url) as lease:
        assert len(lease.receive(10, wait_seconds=0)) == 1
        time.sleep(3.5)  # longer than one lease: only the renewals keep it hidden
        assert counts(aws, queue_url) == (0, 1)
        assert aws.sqs.receive_message(QueueUrl=queue_url).get("Messages", []) == []
    assert counts(aws, queue_url) == (1, 0)  # handed back when the worker stops

