"""A batch of SQS messages in, the ids of the failed ones out (partial batch response).

One bad message never fails its neighbours: a failed id goes back to the queue,
is retried, and after the queue's redrive limit lands in the dead-letter queue. A
batch whose time runs short (large objects take long) stops starting messages and
hands the rest back: they are not failures, and another invocation takes them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from broker import metrics
from broker.inspection import OUTAGES
from lambdas.validator.events import MalformedEvent, refs_from_sqs_body
from lambdas.validator.process import Validator

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)


def set_visibility(sqs: SQSClient, queue_url: str, receipt_handles: list[str],
                   seconds: int) -> None:
    """Hide received messages for `seconds` more, or (0) hand them back at once; ten
    per call, SQS's most."""
    for start in range(0, len(receipt_handles), 10):
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
            for i, handle in enumerate(receipt_handles[start:start + 10])])


def process_sqs_records(validator: Validator, records: Iterable[dict[str, Any]],
                        out_of_time: Callable[[], bool] | None = None,
                        not_started: list[dict[str, Any]] | None = None) -> list[str]:
    """Process each message on its own; return the message ids that must be retried.
    Once `out_of_time()` says so, the rest are not started: they join the failed ids and
    `not_started`, for the caller to hand back to the queue at once."""
    failed = []
    batch = list(records)
    for index, record in enumerate(batch):
        message_id = str(record.get("messageId", "?"))
        if index and out_of_time is not None and out_of_time():
            left = batch[index:]
            log.info("%d messages handed back unstarted: the invocation's time runs short",
                     len(left))
            failed += [str(r.get("messageId", "?")) for r in left]
            if not_started is not None:
                not_started += left
            break
        try:
            for ref in refs_from_sqs_body(str(record.get("body", ""))):
                outcome = validator.process(ref)
                log.info("s3://%s/%s: %s", ref.bucket, ref.key, outcome)
        except MalformedEvent as exc:
            log.error("message %s cannot be read, leaving it for the DLQ: %s", message_id, exc)
            failed.append(message_id)
        except OUTAGES as exc:
            metrics.count_outage(exc)
            log.warning("message %s will be retried: %s", message_id, exc)
            failed.append(message_id)
        except Exception:
            # A bug must not take the rest of the batch with it; it is logged in full.
            log.exception("message %s failed unexpectedly", message_id)
            failed.append(message_id)
    return failed


def batch_response(failed_ids: list[str]) -> dict[str, list[dict[str, str]]]:
    """The Lambda response SQS reads to retry only these messages."""
    return {"batchItemFailures": [{"itemIdentifier": i} for i in failed_ids]}
