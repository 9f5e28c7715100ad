"""The broker's operations on uploads, free of any web framework.

The web layer authenticates, parses and renders; this module decides.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from broker.common import clock, metrics
from broker.common.errors import Conflict, InvalidRequest, NotFound, TooManyRequests
from broker.common.logs import set_upload
from broker.domain.filenames import clean_filename, content_disposition
from broker.domain.keys import incoming_key, is_upload_id
from broker.domain.presign import UPLOAD_ID_METADATA, PostSigner, PresignedUpload, presign_put
from broker.domain.profiles import Profile, Profiles, human_size
from broker.domain.quotas import Quota, Usage, deployment_quota
from broker.domain.records import (
    PendingCapReached,
    RecordStore,
    Status,
    UploadRecord,
    served_keys,
)
from broker.domain.records import changes as record_changes
from broker.settings import Settings
from broker.storage import Storage
from broker.storage.part_plans import plan_parts

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# A pending upload counts as expired this long after its permission lapsed (and only when
# nothing is stored), so an object stored just in time and announced late is still judged.
EXPIRY_GRACE = timedelta(minutes=2)
LIVE: tuple[Status, ...] = ("pending", "processing", "ready", "rejected", "expired",
                            "withdrawn")
WAITING: tuple[Status, ...] = ("pending", "processing")  # not settled yet
MAX_WAIT = 25  # seconds: under the 30 s an HTTP API on Lambda gives a request
MAX_SINGLE_REQUEST = 5 * 1024 ** 3  # what one POST or PUT may carry to S3


@dataclass(frozen=True)
class PlannedParts:
    """A multipart upload: ask for part URLs, send the parts, then complete."""

    part_size: int | None  # None: the client sizes its parts (Uppy)
    part_count: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"method": "multipart", "part_size": self.part_size,
                "part_count": self.part_count}


@dataclass(frozen=True)
class NewUpload:
    record: UploadRecord
    post: PresignedUpload | PlannedParts


class Uploads:
    """Create, read, list, download and delete one owner's uploads."""

    def __init__(self, settings: Settings, profiles: Profiles, records: RecordStore,
                 storage: Storage, s3: S3Client) -> None:
        self.settings = settings
        self.profiles = profiles
        self.records = records
        self.storage = storage
        self.s3 = s3
        self.post_signer = PostSigner(s3)

    def create(self, owner: str, profile_name: str, filename: str, content_type: str,
               size: int | None, method: str | None = None, planned: bool = True
               ) -> NewUpload:
        """Check a declared upload against its profile, record it, and presign its POST
        (or PUT), or start it in parts (`multipart`, the default from the threshold's
        size). Without a declared size the POST (or the parts) admit the profile's range."""
        new = self.prepare(owner, profile_name, filename, content_type, size, method, planned)
        self.record(new)
        return new

    def prepare(self, owner: str, profile_name: str, filename: str, content_type: str,
                size: int | None, method: str | None = None, planned: bool = True
                ) -> NewUpload:
        """`create` up to the record's write: nothing of it may be handed out before
        `record(new)` returns. Signing and rendering the answer before the write, not
        after it, costs less CPU: work after a wait for the database costs more."""
        if method is None:
            large = size is not None and size >= self.settings.multipart_threshold
            method = "multipart" if large else "POST"
        if method != "multipart" and size is not None and size > MAX_SINGLE_REQUEST:
            raise InvalidRequest("use_multipart", f"One request carries at most "
                                 f"{human_size(MAX_SINGLE_REQUEST)}: send this file in "
                                 "parts (method multipart).")
        profile = self.profiles.get(profile_name)
        if not filename.strip():
            raise InvalidRequest("invalid_filename", "The file name is blank.")
        content_type = profile.declared_type(filename, content_type)
        # A name with nothing usable left ("../", bidi marks) gets one of the right kind.
        extensions = profile.types.get(content_type, ("bin",))
        clean = clean_filename(filename) or f"upload.{extensions[0]}"
        profile.check_declared(clean, content_type, profile.max_size if size is None else size)
        self._check_quota(owner, profile, profile.min_size if size is None else size)
        created = clock.now()

        upload_id = clock.new_upload_id()
        in_parts = method == "multipart"
        lasts = self.settings.multipart_ttl if in_parts else self.settings.presign_ttl
        expires = created + timedelta(seconds=lasts)
        key = incoming_key(self.settings.incoming_prefix, upload_id)
        bucket, ttl = self.settings.incoming_bucket, self.settings.presign_ttl
        plan = plan_parts(size, self.settings.multipart_part_size) \
            if in_parts and planned and size is not None else None
        record = UploadRecord(
            id=upload_id, owner=owner, profile=profile.name, visibility=profile.visibility,
            status="pending", filename=clean, declared_type=content_type, declared_size=size,
            incoming_key=key, transport={"PUT": "put", "multipart": "multipart"}.get(
                method, "post"),
            created_at=(stamp := clock.isoformat(created)), updated_at=stamp,
            expires_at=clock.isoformat(expires),
            part_size=plan.part_size if plan else None,
        )
        upload: PlannedParts | PresignedUpload
        if in_parts:  # the store's upload id is part of the record
            record = replace(record, multipart_id=self.storage.multipart.start(
                bucket, key, content_type, {UPLOAD_ID_METADATA: upload_id}))
            upload = PlannedParts(plan.part_size if plan else None,
                                  plan.part_count if plan else None)
        elif method == "PUT" and size is not None:
            upload = presign_put(self.s3, bucket=bucket, key=key, content_type=content_type,
                                 size=size, ttl=ttl)
        else:
            upload = self.post_signer.presign_post(
                bucket=bucket, key=key, upload_id=upload_id,
                content_type=content_type,
                min_size=profile.min_size if size is None else size,
                max_size=profile.max_size if size is None else size, ttl=ttl,
            )
        return NewUpload(record, upload)

    def record(self, new: NewUpload) -> None:
        """Write a prepared upload's record, refused beyond the owner's pending cap (a
        multipart upload started for it is then aborted)."""
        record = new.record
        try:
            self._record_within_cap(record)
        except BaseException:
            self.storage.multipart.abort(self.settings.incoming_bucket, record.incoming_key,
                                         record.multipart_id)
            raise
        set_upload(record.id)
        metrics.UPLOADS_CREATED.labels(profile=record.profile).inc()

    def usage(self, owner: str) -> tuple[Usage, Quota]:
        """What the owner stores, and the deployment's quota."""
        return self.records.usage(owner), deployment_quota(self.settings)

    def _check_quota(self, owner: str, profile: Profile, size: int) -> None:
        quota = profile.quota(deployment_quota(self.settings))
        if quota.bytes is None and quota.files is None:
            return
        used = self.records.usage(owner)
        if not quota.allows(used, size):
            limits = []
            if quota.bytes is not None:
                limits.append(f"{human_size(used.bytes)} of {human_size(quota.bytes)}")
            if quota.files is not None:
                limits.append(f"{used.files} of {quota.files} files")
            raise InvalidRequest("quota_exceeded", f"You store {' and '.join(limits)}; this "
                                 f"{human_size(size)} file does not fit. Delete some files "
                                 "to upload more.")

    def _record_within_cap(self, record: UploadRecord) -> None:
        """Record the upload, refused while the owner has too many still waiting for
        their file (the store checks the cap as it writes)."""
        try:
            self.records.create(record, pending_cap=self.settings.max_pending_uploads)
        except PendingCapReached as full:
            wait = clock.parse_iso(full.soonest_expiry) - clock.parse_iso(record.created_at)
            raise TooManyRequests(
                f"You have {full.cap} uploads waiting for their file; finish or let them "
                "expire.", code="too_many_pending",
                retry_after=int(wait.total_seconds()) + 1) from None

    def get(self, owner: str, upload_id: str) -> UploadRecord:
        """The owner's upload; anyone else's, or none, is NotFound alike."""
        record = self.records.get(upload_id) if is_upload_id(upload_id) else None
        if record is None or record.owner != owner or record.status == "deleted":
            raise NotFound(f"There is no upload {upload_id!r}.")
        return self._expire_if_lapsed(record)

    def wait_for_change(self, owner: str, upload_id: str, seconds: float) -> UploadRecord:
        """The owner's upload once its status differs from now, or settled, or after
        `seconds` as it then is (a long poll: the browser learns at once, unpolled)."""
        # Changes other processes make wake this one too, where the store can tell.
        pauses = record_changes.rechecks(self.records.follow_changes(record_changes.changed))
        deadline = clock.monotonic() + seconds
        first: str | None = None
        while True:
            with record_changes.Watch(upload_id) as watch:
                record = self.get(owner, upload_id)
                first = first or record.status
                left = deadline - clock.monotonic()
                if record.status != first or record.status not in WAITING or left <= 0:
                    return record
                watch.wait(min(left, next(pauses)))

    def list_page(self, owner: str, limit: int, cursor: str | None
             ) -> tuple[list[UploadRecord], str | None]:
        if not 1 <= limit <= 100:
            raise InvalidRequest("invalid_limit", "limit must be between 1 and 100.")
        records, next_cursor = self.records.list_by_owner(owner, limit, cursor)
        return [self._expire_if_lapsed(r) for r in records], next_cursor

    def download_url(self, owner: str, upload_id: str) -> str:
        """Where the owner fetches the file: the CDN, or a short presigned GET."""
        record = self.get(owner, upload_id)
        if record.status != "ready":
            raise Conflict(f"The upload is {record.status}, not ready.", code="not_ready",
                           upload_status=record.status)
        return self.delivery_url(record)

    def delivery_url(self, record: UploadRecord, key: str | None = None) -> str:
        """A link to the served file, or to another key served for it (a rendition)."""
        key = key or record.stored_key
        assert key is not None
        if record.visibility == "public":
            return self.settings.public_url_for(key)
        name = record.filename if key == record.stored_key else key.rsplit("/", 1)[-1]
        return self.storage.presign_get(
            self.settings.private_bucket, key, self.settings.download_ttl,
            content_disposition(name, "attachment"),
        )

    def delete(self, owner: str, upload_id: str) -> None:
        """Tombstone the record, then remove every stored copy of the file."""
        for _ in range(5):
            record = self.get(owner, upload_id)
            # Conditional on the state just read, so a verdict landing now is not missed.
            if self.records.transition(record, "deleted", allowed_from=(record.status,)):
                break
        else:
            raise Conflict("The upload changed while it was being deleted; try again.")
        self.storage.delete(self.settings.incoming_bucket, record.incoming_key)
        self.storage.multipart.abort(self.settings.incoming_bucket, record.incoming_key,
                                     record.multipart_id)
        bucket = (self.settings.public_bucket if record.visibility == "public"
                  else self.settings.private_bucket)
        for key in served_keys(record):
            self.storage.delete(bucket, key)

    def _expire_if_lapsed(self, record: UploadRecord) -> UploadRecord:
        if record.status != "pending":
            return record
        if clock.now() <= clock.parse_iso(record.expires_at) + EXPIRY_GRACE:
            return record
        if self.storage.exists(self.settings.incoming_bucket, record.incoming_key):
            return record  # it arrived and its event is late: it will be judged, not expired
        expired = self.records.transition(record, "expired", allowed_from=("pending",))
        if expired:
            self.storage.multipart.abort(self.settings.incoming_bucket, record.incoming_key,
                                         record.multipart_id)
        return expired or self.records.get(record.id) or record
