"""Faults between the validator and the store, over real HTTP: 503s, connections cut
before and after the request reached the store, every event delivered three times.
The real worker loop runs through a fault-injecting proxy; then the ledger is counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from broker.aws.clients import make_clients
from broker.aws.queue import LEASE_SECONDS, Lease, dead_letter_url_of, redrive
from broker.common import clock
from broker.compose import compose
from broker.devstack.stack import DevStack
from broker.runtimes.sqs_worker import poll_once, run_worker
from broker.settings import Settings
from broker.validator.judge import Validator
from broker.validator.sweep import sweep
from broker.web import create_app
from tests.fault_proxy import fault_proxy
from tests.integration.conftest import free_port
from tests.ledger import count
from tests.samples import HTML_AS_PNG, SECRET, pdf_bytes, png_bytes
from tests.unit.test_validator import Stage

pytestmark = pytest.mark.integration

FILES = [("avatar", "a.png", "image/png", png_bytes(20 + i, 20)) for i in range(4)] + [
    ("document", "a.pdf", "application/pdf", pdf_bytes()),
    ("document", "b.csv", "text/csv", b"a;b\r\n1;=cmd|' /C calc'!A0\r\n"),
    ("avatar", "x.png", "image/png", HTML_AS_PNG),
    ("document", "notes.txt", "text/plain", b"Plain notes.\n" * 100),
]


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[DevStack, Settings]]:
    # The records in the emulator's DynamoDB, so the faults reach them too.
    stack = DevStack(emulator_port=free_port(), broker_origin="http://127.0.0.1:1",
                     overrides={"jwt_secret": SECRET}, records="dynamodb")
    try:  # the emulator's process is stopped however the start or the tests end
        yield stack, stack.start(with_worker=False)
    finally:
        stack.stop()


def test_the_worker_judges_several_objects_at_once_and_stops_cleanly(
        stack: tuple[DevStack, Settings], monkeypatch: pytest.MonkeyPatch) -> None:
    # On the emulator server: moto in-process is not safe for concurrent callers. First in
    # this module, so the queue holds nothing of the fault tests' duplicates.
    dev, settings = stack
    assert dev.clients is not None
    assert settings.queue_url is not None
    aws, queue_url = dev.clients, settings.queue_url
    drain(aws.sqs, queue_url)
    app = create_app(settings.model_dump(), clients=aws)
    validator = compose(settings, aws).validator
    stage = Stage(app, aws, validator)
    records = [stage.upload(png_bytes(8 + i, 8), owner="concurrent") for i in range(8)]
    real_process = Validator.process
    busy, most = [0], [0]
    lock = threading.Lock()

    def slow_process(self: Validator, ref: Any) -> Any:
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        try:
            time.sleep(0.3)  # a slow store: judging overlaps only if the worker runs several
            return real_process(self, ref)
        finally:
            with lock:
                busy[0] -= 1

    monkeypatch.setattr(Validator, "process", slow_process)
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(validator, aws.sqs, queue_url, stop),
                              kwargs={"wait_seconds": 0, "concurrency": 4})
    worker.start()
    deadline = time.monotonic() + 60  # generous: a busy machine; done as soon as judged
    while time.monotonic() < deadline and any(
            stage.reread(r).status != "ready" for r in records):
        time.sleep(0.1)
    stop.set()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert [stage.reread(r).status for r in records] == ["ready"] * 8
    assert most[0] == 4
    assert queue_empty(aws.sqs, queue_url)  # every message deleted, none left leased


@pytest.mark.parametrize("rate", [0.3, 0.6])
def test_faults_and_duplicates_lose_nothing_and_publish_nothing_unchecked(
        stack: tuple[DevStack, Settings], rate: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev, settings = stack
    assert dev.clients is not None
    assert settings.queue_url is not None
    direct = dev.clients
    queue = settings.queue_url
    # Short visibility: an answer lost after the store handed out messages costs seconds.
    direct.sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "3"})
    drain(direct.sqs, queue)
    uploads_api = create_app(settings.model_dump(), clients=direct).extensions["broker"].uploads
    uploads: dict[str, bytes] = {}
    for profile, filename, content_type, data in FILES:
        record = uploads_api.create(f"fault-{rate}", profile, filename, content_type,
                                    len(data)).record
        direct.s3.put_object(Bucket=settings.incoming_bucket, Key=record.incoming_key,
                             Body=data, Metadata={"upload-id": record.id})
        uploads[record.id] = data
    # Every event three times: the notification, and two duplicates of it.
    deadline = time.monotonic() + 30
    seen: list[str] = []
    while len(seen) < len(FILES) and time.monotonic() < deadline:
        for message in direct.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                                  WaitTimeSeconds=1).get("Messages", []):
            if "Records" in message["Body"]:
                seen.append(message["Body"])
                for _ in range(2):
                    direct.sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])
            direct.sqs.change_message_visibility(QueueUrl=queue, VisibilityTimeout=0,
                                                 ReceiptHandle=message["ReceiptHandle"])
    assert len(seen) == len(FILES)

    with fault_proxy(settings.endpoint_url or "", rate, seed=int(rate * 100)) as proxy:
        faulty = make_clients(settings.model_copy(update={"endpoint_url": proxy.url}))
        validator = compose(settings, faulty).validator
        deadline = time.monotonic() + 120
        with Lease(faulty.sqs, queue) as lease:
            while time.monotonic() < deadline and not all_settled(validator, uploads) \
                    and not queue_empty(direct.sqs, queue):
                try:
                    poll_once(validator, faulty.sqs, queue, 1, lease)
                except Exception:  # as run_worker does: a failed poll is retried
                    time.sleep(0.2)
        faults = dict(proxy.counts)
    # After the outage, as an operator would: the sweeper settles what is stuck and
    # reports the dead letters; `broker redrive` sends them back; the worker drains.
    clean = compose(settings, direct).validator
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(hours=1))
    dead = dead_letter_url_of(direct.sqs, queue)
    report = sweep(clean, direct.sqs, dead)
    assert dead is not None
    redrive(direct.sqs, dead, queue)
    # As a worker that keeps running would: until no message is left, including those
    # a dropped answer left leased (they come back after one lease).
    drained_by = time.monotonic() + 4 * LEASE_SECONDS
    while not queue_empty(direct.sqs, queue) and time.monotonic() < drained_by:
        poll_once(clean, direct.sqs, queue, 1)
    ledger = count(direct.s3, clean.records, settings, uploads)
    print(f"fault rate {rate}: {faults}; sweep {report.as_dict()}; {ledger.summary()}")
    assert sum(faults.get(f, 0) for f in ("503", "drop_before", "drop_after")) >= 10
    assert ledger.clean, ledger


def drain(sqs: Any, queue: str) -> None:
    """Empty the queue of what earlier tests left (a purge may run once a minute)."""
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=0).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def queue_empty(sqs: Any, queue: str) -> bool:
    """No message left, visible or held: the rest is the sweeper's and the DLQ's."""
    counts = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return all(v == "0" for v in counts["Attributes"].values())


def all_settled(validator: Validator, uploads: dict[str, bytes]) -> bool:
    try:
        return all((r := validator.records.get(i)) is not None
                   and r.status in ("ready", "rejected") for i in uploads)
    except Exception:
        return False

