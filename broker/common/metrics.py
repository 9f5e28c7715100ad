"""Prometheus metrics (prometheus-client), served at /metrics by the broker and by
`broker worker --metrics-port`. Under `broker serve` with several worker processes the
processes share a folder (PROMETHEUS_MULTIPROC_DIR) and a scrape sums them all."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

UPLOADS_CREATED = Counter("broker_uploads_created_total",
                          "Uploads recorded and presigned, by profile.", ["profile"])
VERDICTS = Counter("broker_verdicts_total",
                   "Verdicts recorded: ready, or rejected with its reason code.",
                   ["status", "code"])
INSPECTION_SECONDS = Histogram(
    "broker_inspection_seconds", "Time to judge one object, by detected type.",
    ["content_type"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
QUEUE_LAG_SECONDS = Histogram(
    "broker_queue_lag_seconds", "From an object being stored to its judging starting.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900))
SIGNATURE_AGE_SECONDS = Gauge(
    "broker_scanner_signature_age_seconds",
    "Age of the malware scanner's signature database, when the scanner says its date.",
    multiprocess_mode="max")
OUTAGES = Counter("broker_outages_total",
                  "Failures of an outside service (storage, records, scanner), by service.",
                  ["service"])


def count_outage(exc: BaseException) -> None:
    OUTAGES.labels(service=getattr(exc, "service", type(exc).__name__)).inc()


def exposition() -> tuple[bytes, str]:
    """The current metrics as Prometheus text, summed over processes when shared."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
