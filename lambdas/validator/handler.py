"""The AWS Lambda entry point: the only code that knows the Lambda event envelope."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from broker.clients import make_clients
from broker.settings import load_settings
from lambdas.validator.batch import batch_response, process_sqs_records
from lambdas.validator.events import refs_from_notification
from lambdas.validator.process import Validator

logging.getLogger().setLevel(logging.INFO)


@cache
def _validator() -> Validator:
    # Built on the first event, not at import: clients are made once per container.
    settings = load_settings()
    return Validator.build(settings, make_clients(settings))


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """SQS batches get a partial batch response; direct S3 events raise to be retried."""
    records = event.get("Records") or []
    validator = _validator()
    if records and records[0].get("eventSource") == "aws:sqs":
        return batch_response(process_sqs_records(validator, records))
    outcomes = [validator.process(ref) for ref in refs_from_notification(event)]
    return {"outcomes": outcomes}
