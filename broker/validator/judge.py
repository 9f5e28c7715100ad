"""Judge one stored object and move it where its verdict sends it: promoted
(`promotion`), quarantined, or discarded, with the verdict recorded.

Safe under at-least-once delivery: each step is idempotent, the record is
claimed and settled with conditional writes, and every read, copy and delete
is pinned to the version (and ETag) that was judged. What lands in a serving
bucket is checked against the judged SHA-256 and withdrawn on a mismatch, so the
guarantee holds on stores that ignore preconditions too. A crash at any step is
repaired by the retry; nothing is published that was not accepted.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from broker.common import clock, metrics
from broker.common.logs import about_upload
from broker.domain.inspection import (
    OUTAGES,
    Declared,
    Inspection,
    PictureLimits,
    Verdict,
    inspect,
)
from broker.domain.inspection.scanner import Scanner
from broker.domain.keys import quarantine_key, upload_id_from_key
from broker.domain.presign import UPLOAD_ID_METADATA
from broker.domain.profiles import Profiles
from broker.domain.quotas import Quota, QuotaExceeded, deployment_quota
from broker.domain.records import RecordStore, UploadRecord
from broker.settings import Settings
from broker.storage import ObjectChanged, ObjectInfo, Storage, StoredObject
from broker.storage.part_plans import PartPlan, plan_parts
from broker.validator.events import ObjectRef
from broker.validator.promotion import Served, deliver

log = logging.getLogger(__name__)

# Tolerated difference between the store's clock and ours.
CLOCK_SKEW = timedelta(seconds=60)

# Pauses (seconds) before looking again for an object's metadata, and the age below which
# an object still without it is judged later rather than refused.
METADATA_LOOKS = (0.02, 0.05, 0.1, 0.25)
METADATA_GRACE = 60.0
Outcome = Literal["accepted", "rejected", "duplicate", "gone", "quarantined", "discarded",
                  "ignored", "superseded"]

@dataclass(frozen=True)
class Validator:
    """The per-object processing shared by the Lambda handler and the worker."""

    settings: Settings
    profiles: Profiles
    records: RecordStore
    storage: Storage
    scanner: Scanner

    def process(self, ref: ObjectRef) -> Outcome:
        """Judge the object `ref` names, promote or quarantine it, record the verdict."""
        s = self.settings
        if ref.bucket != s.incoming_bucket or not ref.key.startswith(s.incoming_prefix):
            return "ignored"
        with about_upload(upload_id_from_key(s.incoming_prefix, ref.key)):
            return self._process(ref)

    def _process(self, ref: ObjectRef) -> Outcome:
        s = self.settings
        stored = self.storage.fetch(ref.bucket, ref.key, ref.version_id)
        if stored is None:
            return "gone"  # already processed and removed, or deleted by its owner
        obj = stored.info
        upload_id = upload_id_from_key(s.incoming_prefix, obj.key)
        record = self.records.get(upload_id) if upload_id else None
        if record is None:
            return self._quarantine_stray(obj, upload_id or "unknown")
        if record.status in ("deleted", "expired"):
            # Deleted by its owner, or arrived after its permission lapsed and the upload
            # was settled as expired: removed quietly, for one final event per upload.
            self.storage.delete_judged(obj)
            return "discarded"
        if record.status in ("ready", "rejected"):
            if record.etag == obj.etag:
                self.storage.delete_judged(obj)  # finish a step a crash interrupted
                return "duplicate"
            return self._quarantine_stray(obj, record.id)
        if record.transport != "put" and UPLOAD_ID_METADATA not in obj.metadata:
            stored = self._with_metadata(ref, stored)
        return self._judge_and_settle(record, stored)

    def _with_metadata(self, ref: ObjectRef, stored: StoredObject) -> StoredObject:
        """The object once its metadata can be read. A store may announce an object
        before its metadata is visible (the emulator's form POST sets it in a second
        step): look again, briefly; a young object still without it is judged later
        (the event is retried), so a file posted with a valid policy is never refused
        for a race. An object old enough to have settled is judged as it is."""
        for pause in METADATA_LOOKS:
            time.sleep(pause)
            again = self.storage.fetch(ref.bucket, ref.key, ref.version_id)
            if again is None or UPLOAD_ID_METADATA in again.info.metadata:
                return again or stored
        age = (clock.now() - stored.info.last_modified).total_seconds()
        if age < METADATA_GRACE:
            raise ObjectChanged(f"{ref.key}: its metadata is not readable yet; judged later")
        return stored

    def _judge_and_settle(self, record: UploadRecord, stored: StoredObject) -> Outcome:
        obj = stored.info
        claimed = self.records.transition(
            record, "processing", allowed_from=("pending", "processing"),
            etag=obj.etag,
        )
        if claimed is None:
            self._leave_nothing_behind(record.id, obj)
            return "superseded"  # another delivery settled it first
        started = clock.monotonic()
        metrics.QUEUE_LAG_SECONDS.observe(max(0.0, (clock.now() - obj.last_modified
                                                    ).total_seconds()))
        inspection = self._inspect(claimed, stored)
        metrics.INSPECTION_SECONDS.labels(
            content_type=inspection.verdict.content_type or "unknown",
        ).observe(clock.monotonic() - started)
        if inspection.verdict.accepted:
            return self._promote(claimed, stored, inspection)
        return self._reject(claimed, obj, inspection.verdict)

    def _inspect(self, record: UploadRecord, stored: StoredObject) -> Inspection:
        obj = stored.info
        # A POST form and a multipart start pin the upload id in metadata; a PUT's
        # signature pins the key.
        if record.transport != "put" and obj.metadata.get(UPLOAD_ID_METADATA) != record.id:
            return Inspection(Verdict.reject("unexpected_object", obj.size))
        if obj.last_modified > clock.parse_iso(record.expires_at) + CLOCK_SKEW:
            # A store that ignores policy expiry took it late.
            return Inspection(Verdict.reject("expired", obj.size))
        profile = self.profiles.find(record.profile)
        if profile is None:
            return Inspection(Verdict.reject("unknown_profile", obj.size))
        declared = Declared(record.filename, record.declared_type, record.declared_size)
        plan = self._copy_plan(obj)
        return inspect(stored, profile, declared, self.scanner,
                       plan.part_size if plan else None, self.picture_limits)

    def _copy_plan(self, obj: ObjectInfo) -> PartPlan | None:
        """How an object too large for one CopyObject is copied: in these parts."""
        if obj.size <= self.settings.multipart_copy_threshold:
            return None
        return plan_parts(obj.size, self.settings.multipart_copy_part_size)

    def _promote(self, record: UploadRecord, stored: StoredObject, inspection: Inspection
                 ) -> Outcome:
        obj = stored.info
        verdict = inspection.verdict
        assert verdict.content_type is not None
        public = record.visibility == "public"
        bucket = self.settings.public_bucket if public else self.settings.private_bucket
        if verdict.sha256 is None:
            raise ObjectChanged(f"{obj.key} was not read whole; judge it again")
        try:
            served = deliver(self.storage, stored, inspection, bucket, record,
                             self._copy_plan(obj))
        except OUTAGES:
            raise
        except Exception as exc:  # a rewrite that fails on bytes its checks passed
            log.exception("rewriting %s for delivery failed; judged malformed", record.id)
            return self._reject(record, obj, Verdict.reject(
                "malformed", verdict.size, verdict.content_type,
                f"could not be rewritten for delivery: {type(exc).__name__}: {exc}"[:500]))
        try:
            settled = self.records.transition(
                record, "ready", allowed_from=("processing",), claimed_etag=obj.etag,
                quota=self.quota_of(record), content_type=verdict.content_type,
                size=verdict.size, stored_key=served.key, sha256=verdict.sha256,
                served_size=served.size, served_sha256=served.sha256,
                served_type=served.content_type, renditions=served.renditions,
                judged_by=verdict.judged_by or None,
            )
        except QuotaExceeded:  # several uploads in flight: this one does not fit
            self.remove_served(bucket, served)
            return self._reject(record, obj, Verdict.reject(
                "quota_exceeded", verdict.size, verdict.content_type,
                f"{served.size} bytes over the owner's quota at judgement"))
        if settled is None:
            self._abandon_copy(record, bucket, served)
            self._leave_nothing_behind(record.id, obj)
            return "superseded"
        metrics.VERDICTS.labels(status="ready", code="accepted").inc()  # as it is recorded
        self.storage.delete_judged(obj)
        self._leave_nothing_behind(record.id, obj, settled)
        log.info("accepted %s as %s into s3://%s/%s", record.id, verdict.content_type,
                 bucket, served.key)
        return "accepted"

    @property
    def picture_limits(self) -> PictureLimits:
        return PictureLimits(self.settings.picture_memory, self.settings.picture_cpu_seconds)

    def quota_of(self, record: UploadRecord) -> Quota:
        deployment = deployment_quota(self.settings)
        profile = self.profiles.find(record.profile)
        # A profile removed since the upload began: the deployment's quota.
        return profile.quota(deployment) if profile else deployment

    def _reject(self, record: UploadRecord, obj: ObjectInfo, verdict: Verdict) -> Outcome:
        assert verdict.reason is not None
        key = quarantine_key(self.settings.quarantine_prefix, record.id, obj.etag)
        self.storage.copy(obj, obj.bucket, key, None,
                          {UPLOAD_ID_METADATA: record.id, "reason": verdict.reason.code},
                          self._copy_plan(obj))
        settled = self.records.transition(
            record, "rejected", allowed_from=("processing",), claimed_etag=obj.etag,
            content_type=verdict.content_type, size=verdict.size,
            reason_code=verdict.reason.code, reason_message=verdict.reason.message,
            reason_detail=verdict.detail or None, judged_by=verdict.judged_by or None,
        )
        if settled is not None:
            metrics.VERDICTS.labels(status="rejected", code=verdict.reason.code).inc()
            self.storage.delete_judged(obj)
        self._leave_nothing_behind(record.id, obj, settled)
        log.info("rejected %s: %s %s", record.id, verdict.reason.code, verdict.detail)
        return "rejected" if settled else "superseded"

    def _leave_nothing_behind(self, upload_id: str, judged: ObjectInfo,
                              settled: UploadRecord | None = None) -> None:
        """Once an upload is settled, no version at its key stays unjudged: an object
        overwritten there at any moment (while another delivery judged it, its event
        coalesced or lost) is removed, kept in quarantine unless it is the very one
        judged. One listing a verdict; while another delivery still judges the upload,
        that delivery's verdict does it."""
        if judged.version_id is None:
            return  # an unversioned store keeps one object a key: its own event judges it
        record = settled or self.records.get(upload_id)
        if record is None or record.status in ("pending", "processing"):
            return
        for version in self.storage.versions(judged.bucket, judged.key):
            if record.status in ("ready", "rejected") and version.etag == record.etag:
                self.storage.delete_judged(version)  # judged; finish its removal
            elif record.status in ("deleted", "expired"):
                self.storage.delete_judged(version)
            else:
                self._quarantine_stray(version, record.id)

    def _abandon_copy(self, record: UploadRecord, bucket: str, served: Served) -> None:
        """Undo a promotion whose record moved on (deleted, or re-claimed for a newer
        version) unless that record now points at this very copy."""
        current = self.records.get(record.id)
        if current is None or current.stored_key != served.key or current.status != "ready":
            self.remove_served(bucket, served)

    def remove_served(self, bucket: str, served: Served) -> None:
        self.storage.delete(bucket, served.key)
        for rendition in json.loads(served.renditions or "[]"):
            self.storage.delete(bucket, rendition["key"])

    def _quarantine_stray(self, obj: ObjectInfo, label: str) -> Outcome:
        """An object no pending upload expects: keep it out of reach, then expire."""
        key = quarantine_key(self.settings.quarantine_prefix, label, obj.etag)
        self.storage.copy(obj, obj.bucket, key, None, {"reason": "unexpected_object"},
                          self._copy_plan(obj))
        self.storage.delete_judged(obj)
        log.warning("quarantined unexpected object s3://%s/%s", obj.bucket, obj.key)
        return "quarantined"
