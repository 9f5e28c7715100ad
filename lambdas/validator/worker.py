"""The long-running validator: long-polls the queue and runs the Lambda's batch code,
judging several objects at once (BROKER_WORKER_CONCURRENCY threads).

Each message is deleted as soon as it is done, and every message received but not
yet done is kept invisible by a short lease renewed while the worker lives: after a
crash the unfinished come back within one lease, and a long object is never handed
to a second worker while the first still judges it. The sweeper runs between polls.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from lambdas.validator.batch import process_sqs_records, set_visibility
from lambdas.validator.process import Validator
from lambdas.validator.sweep import dead_letter_url_of, sweep

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

log = logging.getLogger(__name__)

# A failed message comes back after this long, rather than the queue's full timeout.
RETRY_DELAY_SECONDS = 5
# How long a received message stays hidden without renewal: a crash's delay at most.
LEASE_SECONDS = 20
RENEW_EVERY_SECONDS = 6


class Lease:
    """Keeps the messages a worker holds invisible to others until each is settled."""

    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
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

    def receive(self, most: int, wait_seconds: int) -> list[MessageTypeDef]:
        """Up to `most` messages, hidden for one lease from the moment they arrive."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=most, WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=LEASE_SECONDS).get("Messages", [])
        with self._lock:
            self._held.update({m["MessageId"]: m["ReceiptHandle"] for m in messages})
        return messages

    def done(self, message_id: str) -> None:
        """The message is settled: delete it now, not at the end of the batch."""
        with self._lock:
            handle = self._held.pop(message_id)
        self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=handle)

    def retry_soon(self, message_id: str) -> None:
        with self._lock:
            handle = self._held.pop(message_id)
        self._set_visibility({message_id: handle}, RETRY_DELAY_SECONDS)

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


def _settle(validator: Validator, lease: Lease, message: MessageTypeDef) -> None:
    """Judge what one message announces, then delete it or bring it back soon."""
    # The same shape Lambda hands the handler, so both run one code path.
    record = {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
              "body": message["Body"], "eventSource": "aws:sqs"}
    if process_sqs_records(validator, [record]):
        lease.retry_soon(message["MessageId"])
    else:
        lease.done(message["MessageId"])


def poll_once(validator: Validator, sqs: SQSClient, queue_url: str, wait_seconds: int,
              lease: Lease | None = None, stop: threading.Event | None = None) -> int:
    """Receive up to 10 messages and settle each in turn. Returns messages seen.
    Without a running `lease`, the batch must finish within one LEASE_SECONDS."""
    lease = lease or Lease(sqs, queue_url)
    messages = lease.receive(10, wait_seconds)
    try:
        for message in messages:
            if stop is not None and stop.is_set():
                break
            _settle(validator, lease, message)
    finally:
        lease.release_all()  # a failing queue call must not leave messages leased forever
    return len(messages)


class _Slots:
    """How many more objects the worker may judge at once."""

    def __init__(self, size: int) -> None:
        self._free = threading.BoundedSemaphore(size)

    def take(self, most: int, stop: threading.Event) -> int:
        """Wait for one free slot (or the stop), then take up to `most` in all."""
        while not self._free.acquire(timeout=0.5):
            if stop.is_set():
                return 0
        taken = 1
        while taken < most and self._free.acquire(blocking=False):
            taken += 1
        return taken

    def give_back(self, count: int = 1) -> None:
        for _ in range(count):
            self._free.release()


def run_worker(validator: Validator, sqs: SQSClient, queue_url: str,
               stop: threading.Event, wait_seconds: int = 10,
               concurrency: int | None = None) -> None:
    """Long-poll until `stop` is set, judging up to `concurrency` objects at once
    (BROKER_WORKER_CONCURRENCY) and sweeping now and then. A failing poll is logged and
    retried, never fatal; on stop, what is being judged is finished first."""
    size = concurrency or validator.settings.worker_concurrency
    log.info("validator worker polling %s, judging up to %d at once", queue_url, size)
    dead_letters = validator.settings.dead_letter_queue_url
    next_sweep = 0.0
    slots = _Slots(size)

    def judge(message: MessageTypeDef) -> None:
        try:
            _settle(validator, lease, message)
        except Exception:
            log.exception("settling message %s failed; it comes back after its lease",
                          message["MessageId"])
        finally:
            slots.give_back()

    with Lease(sqs, queue_url) as lease, \
            ThreadPoolExecutor(size, thread_name_prefix="judge") as pool:
        while not stop.is_set():
            taken = 0
            try:
                if time.monotonic() >= next_sweep:
                    dead_letters = dead_letters or dead_letter_url_of(sqs, queue_url)
                    report = sweep(validator, sqs, dead_letters)
                    if report.expired or report.redriven:
                        log.info("sweep: %s", report.as_dict())
                    next_sweep = time.monotonic() + validator.settings.sweep_interval
                taken = slots.take(min(10, size), stop)
                if not taken:
                    continue
                messages = lease.receive(taken, wait_seconds)
                for message in messages:
                    pool.submit(judge, message)
                slots.give_back(taken - len(messages))
            except Exception:
                slots.give_back(taken)
                log.exception("polling the queue failed; retrying")
                stop.wait(RETRY_DELAY_SECONDS)
