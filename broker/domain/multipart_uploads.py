"""Large files in parts, on the upload's own id: part URLs in batches, what storage
already holds (to resume), completion checked against the plan.

The upload was started by `Uploads.create` (method `multipart`): the store's
multipart upload exists and the record holds its id and, for a declared size, the
part size every URL is signed for. Completion lists what storage holds, refuses
anything short of the plan (the upload stays open, so the client can resend and
complete again), and only then assembles the object, whose ObjectCreated event the
validator judges like any other upload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from broker.common import clock
from broker.common.errors import Conflict, InvalidRequest
from broker.domain.presign import PresignedPart
from broker.domain.records import UploadRecord
from broker.domain.uploads import Uploads
from broker.storage.part_plans import (
    BATCH_MAX,
    PartPlan,
    PartProblem,
    StoredPart,
    check_against_plan,
    check_unplanned,
    highest_part_number,
)


@dataclass(frozen=True)
class SignedParts:
    parts: list[PresignedPart]
    expires_at: str


class MultipartUploads:
    def __init__(self, uploads: Uploads) -> None:
        self.uploads = uploads
        self.store = uploads.storage.multipart
        self.bucket = uploads.settings.incoming_bucket

    def sign(self, owner: str, upload_id: str, part_numbers: list[int],
             sha256: dict[int, bytes]) -> SignedParts:
        """URLs for these parts, each for its planned length and, given, its SHA-256."""
        record = self._open(owner, upload_id)
        if not part_numbers or len(part_numbers) > BATCH_MAX:
            raise InvalidRequest("invalid_part_numbers", f"Ask for 1 to {BATCH_MAX} parts "
                                 "at a time.")
        if len(set(part_numbers)) != len(part_numbers):
            raise InvalidRequest("invalid_part_numbers", "A part number is listed twice.")
        highest = self._highest_part(record)
        beyond = [n for n in part_numbers if not 1 <= n <= highest]
        if beyond:
            raise InvalidRequest("invalid_part_numbers", f"This upload has parts 1 to "
                                 f"{highest}; {beyond[0]} is not one of them.")
        stray = sorted(set(sha256) - set(part_numbers))
        if stray:
            raise InvalidRequest("invalid_part_numbers", f"A SHA-256 is given for part "
                                 f"{stray[0]}, which is not asked for.")
        plan = _plan_of(record)
        settings = self.uploads.settings
        signer = self.uploads.post_signer
        assert record.multipart_id is not None
        parts = [signer.presign_part(
            bucket=self.bucket, key=record.incoming_key, multipart_id=record.multipart_id,
            part_number=n, length=plan.length_of(n) if plan else None, sha256=sha256.get(n),
            ttl=settings.presign_ttl, checksum=settings.part_checksum) for n in part_numbers]
        expires = clock.now() + timedelta(seconds=settings.presign_ttl)
        return SignedParts(parts, clock.isoformat(expires))

    def stored(self, owner: str, upload_id: str) -> tuple[PartPlan | None, list[StoredPart]]:
        """The plan, and the parts storage holds already, for a client resuming."""
        record = self._open(owner, upload_id)
        assert record.multipart_id is not None
        parts = self.store.parts(self.bucket, record.incoming_key, record.multipart_id)
        if parts is None:
            raise Conflict("The upload's parts are gone (it was completed or aborted).",
                           code="upload_gone")
        return _plan_of(record), parts

    def complete(self, owner: str, upload_id: str,
                 claimed: dict[int, str] | None = None) -> UploadRecord:
        """Assemble the parts once storage holds exactly the plan (and, given `claimed`
        part ETags, the parts the client sent). Completing again is harmless."""
        record = self.uploads.get(owner, upload_id)
        if record.transport != "multipart":
            raise Conflict("This upload is not sent in parts.", code="not_multipart")
        if record.status != "pending":
            if record.status == "expired":
                raise Conflict("The upload expired before it was completed; start again.",
                               code="expired", upload_status=record.status)
            return record  # completed before: the validator has it
        _refuse_lapsed(record)
        assert record.multipart_id is not None
        parts = self.store.parts(self.bucket, record.incoming_key, record.multipart_id)
        if parts is None:
            return self._completed_elsewhere(record)
        problem = self._problem(record, parts, claimed)
        if problem is not None:
            raise InvalidRequest(problem.code, problem.message)
        if not self.store.complete(self.bucket, record.incoming_key, record.multipart_id,
                                   parts):
            return self._completed_elsewhere(record)
        return self.uploads.records.get(record.id) or record

    def _problem(self, record: UploadRecord, parts: list[StoredPart],
                 claimed: dict[int, str] | None) -> PartProblem | None:
        plan = _plan_of(record)
        problem = check_against_plan(plan, parts) if plan else check_unplanned(parts)
        total = sum(p.size for p in parts)
        if problem is None and plan is None and record.declared_size is not None \
                and total != record.declared_size:
            problem = PartProblem("size_mismatch", f"The parts hold {total} bytes; "
                                  f"{record.declared_size} were declared.")
        if problem is None and plan is None:
            size_problem = self.uploads.profiles.get(record.profile).size_problem(total)
            if size_problem:
                problem = PartProblem(size_problem, f"The parts hold {total} bytes, which "
                                      "this profile does not take.")
        if problem is None and claimed is not None:
            held = {p.part_number: p.etag.strip('"') for p in parts}
            differ = [n for n, etag in claimed.items() if held.get(n) != etag.strip('"')]
            if differ or set(claimed) != set(held):
                problem = PartProblem("part_etag_mismatch", "The parts listed are not the "
                                      "parts storage holds; list them again "
                                      "(GET .../parts) and complete with those.")
        return problem

    def _completed_elsewhere(self, record: UploadRecord) -> UploadRecord:
        """The store has no open upload: completed by a concurrent call, or aborted."""
        if not self.uploads.storage.exists(self.bucket, record.incoming_key):
            raise Conflict("The upload's parts are gone (it was aborted); start again.",
                           code="upload_gone")
        return self.uploads.records.get(record.id) or record

    def _open(self, owner: str, upload_id: str) -> UploadRecord:
        record = self.uploads.get(owner, upload_id)
        if record.transport != "multipart":
            raise Conflict("This upload is not sent in parts.", code="not_multipart")
        if record.status != "pending":
            raise Conflict(f"The upload is {record.status}: its parts can no longer change.",
                           code="not_pending", upload_status=record.status)
        _refuse_lapsed(record)
        return record

    def _highest_part(self, record: UploadRecord) -> int:
        plan = _plan_of(record)
        if plan is not None:
            return plan.part_count
        return highest_part_number(self.uploads.profiles.get(record.profile).max_size)


def _refuse_lapsed(record: UploadRecord) -> None:
    """Past its lifetime an upload takes no more parts and is not completed (it expires,
    and its parts are aborted, once the grace for late events has passed too)."""
    if clock.now() > clock.parse_iso(record.expires_at):
        raise Conflict("The upload expired before it was completed; start again.",
                       code="expired", upload_status="expired")


def _plan_of(record: UploadRecord) -> PartPlan | None:
    if record.part_size is None or record.declared_size is None:
        return None
    return PartPlan(record.declared_size, record.part_size)
