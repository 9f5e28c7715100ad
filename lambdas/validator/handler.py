"""The AWS Lambda entry point: the only code that knows the Lambda event envelope."""

from __future__ import annotations

import logging
from functools import cache
from typing import TYPE_CHECKING, Any

from broker.clients import AwsClients, make_clients
from broker.settings import load_settings
from broker.webhooks.deliverer import Deliverer
from lambdas.validator.batch import batch_response, process_sqs_records
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
            answer = batch_response(process_sqs_records(validator, records))
        else:
            answer = {"outcomes": [validator.process(r) for r in refs_from_notification(event)]}
    _send_webhooks()
    return answer


def _send_webhooks() -> None:
    deliverer = _deliverer()
    if deliverer is None:
        return
    try:
        deliverer.deliver_due()
    except Exception:  # the outbox keeps them; the next invocation tries again
        logging.getLogger(__name__).exception("sending webhooks failed")
