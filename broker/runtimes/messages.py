"""Queue messages in, the ones to retry out: the per-message handler that the SQS worker
and the Lambda batch share.

One bad message never fails its neighbours: a failed message goes back to the queue,
is retried, and after the queue's redrive limit lands in the dead-letter queue. A
batch whose time runs short (large objects take long) stops starting messages and
hands the rest back: they are not failures, and another invocation takes them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from broker.aws.queue import QueueMessage
from broker.common import metrics
from broker.domain.inspection import OUTAGES
from broker.validator.events import MalformedEvent, refs_from_sqs_body
from broker.validator.judge import Validator

log = logging.getLogger(__name__)


def settle(validator: Validator, message: QueueMessage) -> bool:
    """Judge every object one message announces. False: the message must be retried
    (an outage), or left for the dead-letter queue (unreadable, or a bug, logged in full)."""
    try:
        for ref in refs_from_sqs_body(message.body):
            outcome = validator.process(ref)
            log.info("s3://%s/%s: %s", ref.bucket, ref.key, outcome)
    except MalformedEvent as exc:
        log.error("message %s cannot be read, leaving it for the DLQ: %s", message.id, exc)
        return False
    except OUTAGES as exc:
        metrics.count_outage(exc)
        log.warning("message %s will be retried: %s", message.id, exc)
        return False
    except Exception:
        # A bug must not take the rest of the batch with it.
        log.exception("message %s failed unexpectedly", message.id)
        return False
    return True


@dataclass
class BatchResult:
    """Which messages of a batch failed, and which were not started (time ran short)."""

    failed: list[QueueMessage] = field(default_factory=list)
    not_started: list[QueueMessage] = field(default_factory=list)

    @property
    def retry_ids(self) -> list[str]:
        """Every message the queue must deliver again: failed or not started."""
        return [m.id for m in self.failed + self.not_started]


def settle_batch(validator: Validator, messages: Sequence[QueueMessage],
                 out_of_time: Callable[[], bool] | None = None) -> BatchResult:
    """Settle each message on its own. Once `out_of_time()` says so, the rest are not
    started, for the caller to hand back to the queue at once."""
    result = BatchResult()
    for index, message in enumerate(messages):
        if index and out_of_time is not None and out_of_time():
            result.not_started = list(messages[index:])
            log.info("%d messages handed back unstarted: the invocation's time runs short",
                     len(result.not_started))
            break
        if not settle(validator, message):
            result.failed.append(message)
    return result
