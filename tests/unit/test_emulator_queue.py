"""The embedded emulator's queue keeps every message it was sent while others are
deleted from it at the same moment (broker run's validator deletes each message it
settles while the store sends the next uploads' events)."""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Iterator

import pytest
from moto.sqs import models
from moto.sqs.exceptions import ReceiptHandleIsInvalid
from moto.sqs.models import Message, Queue, SQSBackend

from broker.devstack.moto_mends import mend_queues

SENT = 5000


MOTOS_ATTRIBUTES = Queue.attributes


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    monkeypatch.setattr(Queue, "delete_message", Queue.delete_message)  # undone after
    monkeypatch.setattr(Queue, "attributes", MOTOS_ATTRIBUTES)
    monkeypatch.setattr(SQSBackend, "is_message_valid_based_on_retention_period",
                        SQSBackend.is_message_valid_based_on_retention_period)
    monkeypatch.setattr(models, "deepcopy", models.deepcopy)
    mend_queues()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns often: a race shows in one run
    try:
        yield Queue("uploads-events", "123456789012", "us-east-1")
    finally:
        sys.setswitchinterval(interval)


def test_a_message_sent_while_another_is_deleted_is_kept(queue: Queue) -> None:
    deleted: set[str] = set()
    sending = threading.Thread(target=lambda: [
        queue.add_message(Message(str(uuid.uuid4()), f"event {n}")) for n in range(SENT)])

    def settle() -> None:  # as the validator does: take a message, then delete it
        while sending.is_alive() or queue._messages:
            for message in list(queue._messages)[:5]:
                message.mark_received()
                try:
                    queue.delete_message(message.receipt_handle)
                except ReceiptHandleIsInvalid:  # taken by another thread first
                    continue
                deleted.add(message.body)

    settlers = [threading.Thread(target=settle) for _ in range(3)]
    sending.start()
    for settler in settlers:
        settler.start()
    sending.join()
    for settler in settlers:
        settler.join(timeout=120)
    kept = {message.body for message in queue._messages}
    assert len(deleted | kept) == SENT  # none dropped


def test_a_receive_hands_over_messages_within_their_retention_only(queue: Queue) -> None:
    from moto.sqs.models import sqs_backends

    backend = sqs_backends["123456789012"]["us-east-1"]
    made = backend.create_queue("kept-for-a-minute", MessageRetentionPeriod="60")
    backend.send_message("kept-for-a-minute", "fresh")
    backend.send_message("kept-for-a-minute", "old")
    made._messages[1].sent_timestamp -= 61_000  # sent 61 s ago: past its retention
    received = backend.receive_message("kept-for-a-minute", 10, 0, 30)
    assert [m.body for m in received] == ["fresh"]


@pytest.mark.parametrize("kind", [
    {}, {"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    {"KmsMasterKeyId": "alias/uploads", "Policy": '{"Version": "2012-10-17"}'},
    {"RedrivePolicy": '{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:dlq", '
                      '"maxReceiveCount": 5}', "DelaySeconds": "3"}])
def test_a_queues_attributes_read_as_moto_works_them_out(queue: Queue,
                                                         kind: dict[str, str]) -> None:
    from moto.sqs.models import sqs_backends

    backend = sqs_backends["123456789012"]["us-east-1"]
    backend.create_queue("dlq")
    name = f"attributes-{uuid.uuid4().hex[:8]}" + (".fifo" if "FifoQueue" in kind else "")
    made = backend.create_queue(name, **kind)
    backend.send_message(name, "one", group_id="g" if "FifoQueue" in kind else None)
    expected = MOTOS_ATTRIBUTES.fget(made)  # type: ignore[attr-defined]
    assert dict(made.attributes) == expected
    assert made.attributes.get("ContentBasedDeduplication") == expected.get(
        "ContentBasedDeduplication")
    assert "NoSuchAttribute" not in made.attributes


def test_a_send_does_not_count_the_queues_messages(queue: Queue,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Counting walks every message held: each event stored paid for it under load.
    from moto.sqs.models import sqs_backends

    counted: list[str] = []
    counting = Queue.approximate_number_of_messages
    monkeypatch.setattr(Queue, "approximate_number_of_messages", property(
        lambda q: (counted.append(q.name), counting.fget(q))[1]))  # type: ignore[attr-defined]
    backend = sqs_backends["123456789012"]["us-east-1"]
    name = f"sent-{uuid.uuid4().hex[:8]}"
    backend.create_queue(name)
    counted.clear()
    for n in range(3):
        backend.send_message(name, f"event {n}")
    assert counted == []


def test_a_received_message_shows_only_the_attributes_asked_for(queue: Queue) -> None:
    # A shallow copy is handed out: its attributes are replaced, the stored ones kept.
    from moto.sqs.models import sqs_backends

    backend = sqs_backends["123456789012"]["us-east-1"]
    name = f"filtered-{uuid.uuid4().hex[:8]}"
    made = backend.create_queue(name)
    attributes = {"kind": {"DataType": "String", "StringValue": "event"},
                  "trace": {"DataType": "String", "StringValue": "t-1"}}
    backend.send_message(name, "body", message_attributes=attributes)
    first = backend.receive_message(name, 1, 0, 0, ["kind"])
    second = backend.receive_message(name, 1, 0, 30, [])
    assert list(first[0].message_attributes) == ["kind"]
    assert second[0].message_attributes == {}
    assert set(made._messages[0].message_attributes) == {"kind", "trace"}
    assert (first[0].approximate_receive_count, second[0].approximate_receive_count) == (1, 2)
    assert first[0] is not made._messages[0]
