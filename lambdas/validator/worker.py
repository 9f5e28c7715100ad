"""The long-running validator: long-polls the queue and runs the Lambda's batch code."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from lambdas.validator.batch import process_sqs_records
from lambdas.validator.process import Validator

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

# A failed message comes back after this long, rather than the queue's full timeout.
RETRY_DELAY_SECONDS = 5


def poll_once(validator: Validator, sqs: SQSClient, queue_url: str, wait_seconds: int) -> int:
    """Receive one batch, process it, delete what succeeded. Returns messages seen."""
    reply = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
    )
    messages = reply.get("Messages", [])
    if not messages:
        return 0
    # The same shape Lambda hands the handler, so both run one code path.
    records = [
        {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
         "body": m["Body"], "eventSource": "aws:sqs"}
        for m in messages
    ]
    failed = set(process_sqs_records(validator, records))
    done = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
            for i, r in enumerate(records) if r["messageId"] not in failed]
    if done:
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=done)  # type: ignore[arg-type]
    for r in records:
        if r["messageId"] in failed:
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=r["receiptHandle"],
                                          VisibilityTimeout=RETRY_DELAY_SECONDS)
    return len(records)


def run_worker(validator: Validator, sqs: SQSClient, queue_url: str,
               stop: threading.Event, wait_seconds: int = 2) -> None:
    """Poll until `stop` is set; a failing poll is logged and retried, never fatal."""
    log.info("validator worker polling %s", queue_url)
    while not stop.is_set():
        try:
            poll_once(validator, sqs, queue_url, wait_seconds)
        except Exception:
            log.exception("polling the queue failed; retrying")
            stop.wait(RETRY_DELAY_SECONDS)
