"""The AWS Lambda entry point: the only code that knows the Lambda event envelope."""

from __future__ import annotations

import logging
from functools import cache
from typing import TYPE_CHECKING, Any

from broker.clients import AwsClients, make_clients
from broker.settings import load_settings
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


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """SQS batches get a partial batch response; direct S3 events raise to be retried;
    the schedule's events run the sweeper."""
    validator = _validator()
    if event.get("detail-type") == "Scheduled Event":
        settings = validator.settings
        return sweep(validator, _sqs(), settings.dead_letter_queue_url).as_dict()
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:sqs":
        return batch_response(process_sqs_records(validator, records))
    outcomes = [validator.process(ref) for ref in refs_from_notification(event)]
    return {"outcomes": outcomes}
