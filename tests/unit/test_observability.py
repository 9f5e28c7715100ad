"""What an operator sees: Prometheus metrics at /metrics, and log lines (plain or JSON)
that name the upload they are about."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from broker.aws.clients import AwsClients
from broker.common.logs import logging_config
from broker.validator.judge import Validator
from tests.samples import auth, png_bytes
from tests.unit.test_validator import Stage


@pytest.fixture
def stage(app: Flask, aws: AwsClients, validator: Validator) -> Stage:
    return Stage(app, aws, validator)


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample /metrics shows, by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def grew(before: dict, after: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_metrics_count_uploads_and_verdicts_by_code(stage: Stage, client: FlaskClient) -> None:
    before = scrape(client)
    stage.process(stage.upload(png_bytes()))
    stage.process(stage.upload(b"%PDF-1.4 not an image", filename="x.png"))
    after = scrape(client)
    assert grew(before, after, "broker_uploads_created_total", profile="avatar") == 2
    assert grew(before, after, "broker_verdicts_total", status="ready", code="accepted") == 1
    assert grew(before, after, "broker_verdicts_total", status="rejected",
                code="type_mismatch") == 1
    assert grew(before, after, "broker_inspection_seconds_count",
                content_type="image/png") == 1
    assert grew(before, after, "broker_queue_lag_seconds_count") == 2


def test_metrics_count_outages_by_service(client: FlaskClient, app: Flask) -> None:
    class Unreachable:
        def __getattr__(self, name: str) -> object:
            def fail(**kwargs: object) -> None:
                raise EndpointConnectionError(endpoint_url="http://records.invalid")
            return fail

    before = scrape(client)
    app.extensions["broker"].uploads.records.client = Unreachable()
    assert client.get("/v1/uploads", headers=auth("alice")).status_code == 503
    assert grew(before, scrape(client), "broker_outages_total", service="records") == 1


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The processes' own logging configuration, in JSON, written to a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logging.config.dictConfig(logging_config("json"))
    buffer = io.StringIO()
    for handler in root.handlers:
        handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield buffer
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    """The JSON lines written since the last call."""
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return [json.loads(line) for line in text.splitlines() if line]


def test_every_validator_line_about_an_upload_names_it(stage: Stage,
                                                        json_logs: io.StringIO
                                                        ) -> None:
    record = stage.upload(png_bytes())
    lines(json_logs)  # drop what creating it logged
    stage.process(record)
    logged = [line for line in lines(json_logs) if line["logger"].startswith("broker.validator")]
    assert any("accepted" in str(line["message"]) for line in logged)
    assert all(line["upload_id"] == record.id for line in logged)
    assert all({"time", "level", "message"} <= line.keys() for line in logged)


def test_a_broker_failure_line_names_the_upload_of_the_request(
        stage: Stage, client: FlaskClient, app: Flask,
        json_logs: io.StringIO) -> None:
    record = stage.upload(png_bytes())

    class Unreachable:
        def __getattr__(self, name: str) -> object:
            def fail(**kwargs: object) -> None:
                raise EndpointConnectionError(endpoint_url="http://records.invalid")
            return fail

    app.extensions["broker"].uploads.records.client = Unreachable()
    lines(json_logs)
    assert client.get(f"/v1/uploads/{record.id}", headers=auth("alice")).status_code == 503
    (failure,) = [line for line in lines(json_logs) if line["level"] == "ERROR"]
    assert failure["upload_id"] == record.id
    assert "records failure" in str(failure["message"])
