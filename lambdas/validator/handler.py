"""The AWS Lambda entry point: the only code that knows the Lambda event envelope."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from broker.clients import AwsClients, make_clients
from broker.settings import load_settings
from broker.webhooks.deliverer import Deliverer
from lambdas.validator.batch import batch_response, process_sqs_records, set_visibility
from lambdas.validator.events import refs_from_notification
from lambdas.validator.process import Validator
from lambdas.validator.sweep import sweep

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logging.getLogger().setLevel(logging.INFO)


@cache
def _clients() -> AwsClients:
    # Built on the first event, not at import: clients are made once per container.
    return make_clients(load_settings())


@cache
def _validator() -> Validator:
    return Validator.build(load_settings(), _clients())


def _sqs() -> SQSClient:
    return _clients().sqs


@cache
def _deliverer() -> Deliverer | None:
    validator = _validator()
    return Deliverer.build(validator.settings, _clients(), validator.records)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """SQS batches get a partial batch response; direct S3 events raise to be retried;
    the schedule's events run the sweeper. Each invocation then sends the webhooks due
    (the verdicts it just recorded, and retries)."""
    validator = _validator()
    if event.get("detail-type") == "Scheduled Event":
        settings = validator.settings
        answer: dict[str, Any] = sweep(validator, _sqs(),
                                       settings.dead_letter_queue_url).as_dict()
    else:
        records = event.get("Records") or []
        if records and records[0].get("eventSource") == "aws:sqs":
            not_started: list[dict[str, Any]] = []
            failed = process_sqs_records(validator, records, _out_of_time(context),
                                         not_started)
            _hand_back(not_started)
            answer = batch_response(failed)
        else:
            answer = {"outcomes": [validator.process(r) for r in refs_from_notification(event)]}
    _send_webhooks()
    return answer


def _out_of_time(context: Any) -> Callable[[], bool] | None:
    """True once less than half the invocation's time is left: the next object may be
    large (judging a 10 GiB video takes minutes), so it goes to a fresh invocation."""
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return None
    budget = context.get_remaining_time_in_millis()
    return lambda: context.get_remaining_time_in_millis() < budget / 2


def _hand_back(records: list[dict[str, Any]]) -> None:
    """Make messages not started visible again at once, rather than after the queue's
    visibility timeout (they are reported as failures, which alone would wait for it)."""
    queue_url = _validator().settings.queue_url
    if not records or not queue_url:
        return
    try:
        set_visibility(_sqs(), queue_url, [r["receiptHandle"] for r in records], 0)
    except Exception:  # they come back after the visibility timeout anyway
        logging.getLogger(__name__).exception("handing back %d messages failed", len(records))


def _send_webhooks() -> None:
    deliverer = _deliverer()
    if deliverer is None:
        return
    try:
        deliverer.deliver_due()
    except Exception:  # the outbox keeps them; the next invocation tries again
        logging.getLogger(__name__).exception("sending webhooks failed")
