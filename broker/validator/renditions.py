"""Backfilling renditions: when a profile's renditions change, each published picture
gets the ones it lacks, made from the file it is served as (pixels already judged), and
loses the ones no longer declared. At a bounded rate, safe to run again."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Literal

from broker.domain.pictures import DECODERS, PictureJob, RenditionSpec, rendered
from broker.domain.pictures.model import renditions_served
from broker.domain.records import UploadRecord, renditions_of
from broker.validator.judge import Validator
from broker.validator.promotion import write_renditions

log = logging.getLogger(__name__)

Backfilled = Literal["made", "current", "not a picture", "not ready", "failed"]


def wanted(record: UploadRecord, specs: tuple[RenditionSpec, ...], reencodes: bool
           ) -> tuple[RenditionSpec, ...]:
    """The renditions the profile declares for this upload now (an AVIF served as AVIF
    keeps its JPEG copy beside it)."""
    return renditions_served(specs, record.served_type or record.content_type, reencodes)


def backfill(validator: Validator, record: UploadRecord) -> Backfilled:
    """Make the upload's renditions what its profile declares now."""
    profile = validator.profiles.find(record.profile)
    served_type = record.served_type or record.content_type
    if record.status != "ready" or not record.stored_key or profile is None:
        return "not ready"
    if served_type not in DECODERS:
        return "not a picture"
    specs = wanted(record, profile.rendition_specs, profile.reencodes_images)
    have = {(r["name"], r["content_type"]) for r in renditions_of(record)}
    if have == {(spec.name, kind) for spec in specs for kind in spec.formats}:
        return "current"
    s = validator.settings
    bucket = s.public_bucket if record.visibility == "public" else s.private_bucket
    stored = validator.storage.fetch(bucket, record.stored_key)
    if stored is None:
        return "not ready"
    data = b"".join(stored.chunks())
    outcome = rendered(PictureJob(data, served_type, profile.max_pixels, profile.max_frames,
                                  renditions=specs), validator.picture_limits)
    if outcome.refusal is not None:
        log.warning("no renditions for %s: %s", record.id, outcome.refusal.detail)
        return "failed"
    made = write_renditions(validator.storage, outcome.renditions, bucket,
                            record.stored_key, record, [])
    updated = validator.records.transition(record, "ready", allowed_from=("ready",),
                                           renditions=json.dumps(made) if made else None)
    kept = {str(r["key"]) for r in made} if updated is not None else set()
    gone = {r["key"] for r in renditions_of(record)} if updated is not None else set()
    for key in (gone | {str(r["key"]) for r in made}) - kept:
        validator.storage.delete(bucket, key)  # no longer declared, or no longer wanted
    return "made" if updated is not None else "not ready"


def backfill_all(validator: Validator, records: Iterable[UploadRecord], rate: float,
                 progress: Callable[[int, dict[str, int]], None] | None = None
                 ) -> dict[str, int]:
    """Backfill each, at most `rate` uploads a second; counts of each outcome."""
    counts: dict[str, int] = {}
    pause = 1.0 / rate if rate > 0 else 0.0
    for done, record in enumerate(records, 1):
        outcome = backfill(validator, record)
        counts[outcome] = counts.get(outcome, 0) + 1
        if progress is not None:
            progress(done, counts)
        if pause and outcome == "made":
            time.sleep(pause)
    return counts
