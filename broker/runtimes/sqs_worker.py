"""The long-running validator: long-polls the queue and settles each message with the
handler the Lambda batch uses, judging several objects at once
(BROKER_WORKER_CONCURRENCY threads).

Each message is deleted as soon as it is done, and every message received but not
yet done is kept invisible by a short lease renewed while the worker lives: after a
crash the unfinished come back within one lease, and a long object is never handed
to a second worker while the first still judges it. The sweeper runs between polls.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from broker.aws.lean_json import LeanSqs
from broker.aws.queue import RETRY_DELAY_SECONDS, SQS_BATCH, Lease, QueueMessage, dead_letter_url_of
from broker.runtimes.messages import settle
from broker.validator.judge import Validator
from broker.validator.sweep import sweep

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)


def _settle(validator: Validator, lease: Lease, message: QueueMessage) -> None:
    """Judge what one message announces, then delete it or bring it back soon."""
    if settle(validator, message):
        lease.done(message.id)
    else:
        lease.retry_soon(message.id)


def poll_once(validator: Validator, sqs: SQSClient, queue_url: str, wait_seconds: int,
              lease: Lease | None = None, stop: threading.Event | None = None) -> int:
    """Receive up to 10 messages and settle each in turn. Returns messages seen.
    Without a running `lease`, the batch must finish within one LEASE_SECONDS."""
    lease = lease or Lease(sqs, queue_url)
    messages = lease.receive(SQS_BATCH, wait_seconds)
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

    def judge(message: QueueMessage) -> None:
        try:
            _settle(validator, lease, message)
        except Exception:
            log.exception("settling message %s failed; it comes back after its lease",
                          message.id)
        finally:
            slots.give_back()

    queue = LeanSqs(sqs)  # a receive and a delete per object: botocore's cost, saved
    with contextlib.closing(queue), Lease(queue, queue_url) as lease, \
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
                taken = slots.take(min(SQS_BATCH, size), stop)
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
