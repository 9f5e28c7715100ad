"""The validator on AWS Lambda: the only code that knows the Lambda event envelope."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import Any

from broker.aws.queue import QueueMessage, set_visibility
from broker.compose import Parts, compose
from broker.runtimes.messages import settle_batch
from broker.settings import load_settings
from broker.validator.events import refs_from_notification
from broker.validator.sweep import sweep

logging.getLogger().setLevel(logging.INFO)
log = logging.getLogger(__name__)


@cache
def _parts() -> Parts:
    # Built on the first event, not at import: clients are made once per container.
    return compose(load_settings())


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """SQS batches get a partial batch response; direct S3 events raise to be retried;
    the schedule's events run the sweeper. Each invocation then sends the webhooks due
    (the verdicts it just recorded, and retries)."""
    parts = _parts()
    validator = parts.validator
    if event.get("detail-type") == "Scheduled Event":
        answer: dict[str, Any] = sweep(validator, parts.clients.sqs,
                                       parts.settings.dead_letter_queue_url).as_dict()
    else:
        records = event.get("Records") or []
        if records and records[0].get("eventSource") == "aws:sqs":
            result = settle_batch(validator, [_message(r) for r in records],
                                  _out_of_time(context))
            _hand_back(parts, [m.receipt for m in result.not_started])
            answer = {"batchItemFailures": [{"itemIdentifier": i} for i in result.retry_ids]}
        else:
            answer = {"outcomes": [validator.process(r) for r in refs_from_notification(event)]}
    parts.send_outbox()
    return answer


def _message(record: dict[str, Any]) -> QueueMessage:
    """One SQS record of Lambda's envelope, as the queue module names its messages."""
    return QueueMessage(str(record.get("messageId", "?")), str(record.get("receiptHandle", "")),
                        str(record.get("body", "")))


def _out_of_time(context: Any) -> Callable[[], bool] | None:
    """True once less than half the invocation's time is left: the next object may be
    large (judging a 10 GiB video takes minutes), so it goes to a fresh invocation."""
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return None
    budget = context.get_remaining_time_in_millis()
    return lambda: context.get_remaining_time_in_millis() < budget / 2


def _hand_back(parts: Parts, receipts: list[str]) -> None:
    """Make messages not started visible again at once, rather than after the queue's
    visibility timeout (they are reported as failures, which alone would wait for it)."""
    queue_url = parts.settings.queue_url
    if not receipts or not queue_url:
        return
    try:
        set_visibility(parts.clients.sqs, queue_url, receipts, 0)
    except Exception:  # they come back after the visibility timeout anyway
        log.exception("handing back %d messages failed", len(receipts))


