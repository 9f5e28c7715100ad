"""The one module that calls SQS: typed messages, receiving under a lease, deleting,
handing back, and the dead-letter queue's depth and redrive."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from broker.aws.lean_json import LeanSqs

log = logging.getLogger(__name__)

# A failed message comes back after this long, rather than the queue's full timeout.
RETRY_DELAY_SECONDS = 5
# How long a received message stays hidden without renewal: a crash's delay at most.
LEASE_SECONDS = 20
RENEW_EVERY_SECONDS = 6
SQS_BATCH = 10  # SQS's most messages per receive and entries per batch call


@dataclass(frozen=True)
class QueueMessage:
    """One received message, whoever received it (the worker, or Lambda's poller)."""

    id: str
    receipt: str
    body: str


def set_visibility(sqs: SQSClient | LeanSqs, queue_url: str, receipts: list[str],
                   seconds: int) -> None:
    """Hide received messages for `seconds` more, or (0) hand them back at once."""
    for start in range(0, len(receipts), SQS_BATCH):
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": receipt, "VisibilityTimeout": seconds}
            for i, receipt in enumerate(receipts[start:start + SQS_BATCH])])


class Lease:
    """Keeps the messages a worker holds invisible to others until each is settled."""

    def __init__(self, sqs: SQSClient | LeanSqs, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._held: dict[str, str] = {}  # message id -> receipt handle
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_until_stopped,
                                        name="sqs-lease", daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.release_all()

    def receive(self, most: int, wait_seconds: int) -> list[QueueMessage]:
        """Up to `most` messages, hidden for one lease from the moment they arrive."""
        answer = self._sqs.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=most, WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=LEASE_SECONDS)
        messages = [QueueMessage(m["MessageId"], m["ReceiptHandle"], m["Body"])
                    for m in answer.get("Messages", [])]
        with self._lock:
            self._held.update({m.id: m.receipt for m in messages})
        return messages

    def done(self, message_id: str) -> None:
        """The message is settled: delete it now, not at the end of the batch."""
        with self._lock:
            receipt = self._held.pop(message_id)
        self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=receipt)

    def retry_soon(self, message_id: str) -> None:
        with self._lock:
            receipt = self._held.pop(message_id)
        self._set_visibility({message_id: receipt}, RETRY_DELAY_SECONDS)

    def release_all(self) -> None:
        """Hand back what was not started (a stop): others may take it at once."""
        with self._lock:
            held, self._held = self._held, {}
        self._set_visibility(held, 0)

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(RENEW_EVERY_SECONDS):
            with self._lock:
                held = dict(self._held)
            try:
                self._set_visibility(held, LEASE_SECONDS)
            except Exception:
                log.exception("renewing the lease on %d messages failed", len(held))

    def _set_visibility(self, held: dict[str, str], seconds: int) -> None:
        set_visibility(self._sqs, self._queue_url, list(held.values()), seconds)


def dead_letter_depth(sqs: SQSClient, url: str) -> int:
    """How many events wait in the dead-letter queue at `url`."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", "0"))


def dead_letter_url_of(sqs: SQSClient, queue_url: str) -> str | None:
    """The dead-letter queue named by a queue's redrive policy, if it has one."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    if "RedrivePolicy" not in attributes:
        return None
    arn = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
    account, name = arn.split(":")[4], arn.split(":")[5]
    return sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def redrive(sqs: SQSClient, dead_letter_url: str, queue_url: str) -> int:
    """Send every dead-lettered event back to the queue; returns how many moved.
    Each is sent before it is deleted, so a crash duplicates (harmless), never loses."""
    moved = 0
    while True:
        messages = sqs.receive_message(QueueUrl=dead_letter_url, MaxNumberOfMessages=SQS_BATCH,
                                       WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return moved
        for message in messages:
            sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=dead_letter_url,
                               ReceiptHandle=message["ReceiptHandle"])
            moved += 1
