"""Nothing stays unsettled: the sweeper moves on what no event will.

- a `pending` upload whose permission lapsed (and grace passed) becomes `expired`
  (a multipart upload left unfinished is aborted, its parts with it),
  without waiting for someone to read it; if its object did arrive (the event was
  lost), the object is judged instead;
- a record still `processing` long after it was claimed (a crash, a lost event, an
  event that went to the dead-letter queue) is judged again, or, when its object is
  gone, expired;
- the dead-letter queue's depth is reported (`broker redrive` sends its events back).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from broker.aws.queue import dead_letter_depth
from broker.common import clock
from broker.domain.records import UploadRecord
from broker.domain.uploads import EXPIRY_GRACE
from broker.validator.events import ObjectRef
from broker.validator.judge import Validator

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

BATCH = 100  # records looked at per state in one sweep; the next sweep takes the rest


@dataclass
class SweepReport:
    """What one sweep did, for logs and the `broker sweep` command."""

    expired: list[str] = field(default_factory=list)
    redriven: dict[str, str] = field(default_factory=dict)  # upload id -> outcome
    dead_letters: int | None = None  # None: no dead-letter queue to look at

    def as_dict(self) -> dict[str, object]:
        return {"expired": self.expired, "redriven": self.redriven,
                "dead_letters": self.dead_letters}


def sweep(validator: Validator, sqs: SQSClient | None = None,
          dead_letter_url: str | None = None) -> SweepReport:
    """One pass over the records no event will move on. Outages raise: try again later."""
    report = SweepReport()
    now = clock.now()
    records = validator.records
    lapsed = clock.isoformat(now - EXPIRY_GRACE)
    for record in records.open_before("pending", lapsed, BATCH):
        _settle(validator, record, report)
    stuck = clock.isoformat(now - timedelta(seconds=validator.settings.stuck_after))
    for record in records.open_before("processing", stuck, BATCH):
        _settle(validator, record, report)
    if sqs is not None and dead_letter_url:
        report.dead_letters = dead_letter_depth(sqs, dead_letter_url)
        if report.dead_letters:
            log.warning("%d events wait in the dead-letter queue: `broker redrive` "
                        "sends them back", report.dead_letters)
    return report


def run_sweeper(validator: Validator, stop: threading.Event) -> None:
    """Sweep every `sweep_interval` seconds until stopped (deployments without a queue
    worker, such as HTTP push); a failing sweep is logged and tried again."""
    while not stop.wait(validator.settings.sweep_interval):
        try:
            report = sweep(validator)
            if report.expired or report.redriven:
                log.info("sweep: %s", report.as_dict())
        except Exception:
            log.exception("the sweep failed; trying again next interval")


def _settle(validator: Validator, record: UploadRecord, report: SweepReport) -> None:
    bucket = validator.settings.incoming_bucket
    if validator.storage.head(bucket, record.incoming_key) is not None:
        report.redriven[record.id] = validator.process(ObjectRef(bucket, record.incoming_key))
        log.info("re-drove %s (%s): %s", record.id, record.status,
                 report.redriven[record.id])
        return
    # Nothing stored, and nothing will be: the upload lapsed (and its parts with it).
    if validator.records.transition(record, "expired", allowed_from=(record.status,)):
        validator.storage.multipart.abort(bucket, record.incoming_key, record.multipart_id)
        report.expired.append(record.id)
        log.info("expired %s (was %s)", record.id, record.status)
