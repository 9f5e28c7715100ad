"""The API's request and response bodies. The OpenAPI document is generated from these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from broker.domain.cdn import removed_urls
from broker.domain.records import UploadRecord, renditions_of
from broker.domain.records.outbox import REMOVALS
from broker.domain.uploads import Uploads


class CreateUpload(BaseModel):
    """Ask to upload one file."""

    model_config = ConfigDict(extra="forbid")

    profile: str = Field(min_length=1, max_length=64, examples=["avatar"])
    filename: str = Field(min_length=1, max_length=1024, examples=["me.png"])
    content_type: str = Field(min_length=3, max_length=255, examples=["image/png"])
    size: StrictInt = Field(ge=0, description="Exact size of the file in bytes.",
                            examples=[48213])
    method: Literal["POST", "PUT", "multipart"] | None = Field(
        default=None, description="POST: a form upload (the default below the multipart "
        "threshold, 100 MiB unless configured). PUT: a presigned PUT URL, for clients such "
        "as Uppy's signRequest. multipart: the file in parts, resumable (the default from "
        "the threshold; the only way above 5 GiB).")


class PresignedUpload(BaseModel):
    """POST: send `fields` first, then the file last, as multipart/form-data to `url`.
    PUT: send the file as the body to `url` with `headers`."""

    method: Literal["POST", "PUT"] = "POST"
    url: str
    fields: dict[str, str]
    headers: dict[str, str] = {}


class PlannedParts(BaseModel):
    """multipart: ask for part URLs (POST /v1/uploads/{id}/parts), PUT each part, then
    complete (POST /v1/uploads/{id}/complete). Every part is `part_size` bytes but the
    last, which holds the rest."""

    method: Literal["multipart"]
    part_size: int | None
    part_count: int | None


class UploadCreated(BaseModel):
    id: str
    status: Literal["pending"]
    profile: str
    expires_at: str = Field(description="Until when the file may be sent: the presign's "
                            "lifetime, or for parts the whole upload's (a day by default).")
    upload: PresignedUpload | PlannedParts


class SignParts(BaseModel):
    """Ask for the URLs of some parts (at most 100 at a time)."""

    model_config = ConfigDict(extra="forbid")

    part_numbers: list[StrictInt] = Field(min_length=1, max_length=100, examples=[[1, 2, 3]])
    sha256: dict[str, str] = Field(
        default_factory=dict, description="Part number -> the part's SHA-256, base64: "
        "storage then refuses any other content for it.",
        examples=[{"1": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="}])


class PartUrl(BaseModel):
    """PUT the part's bytes to `url` with `headers` (Content-Length is the part's size)."""

    part_number: int
    url: str
    headers: dict[str, str]


class PartUrls(BaseModel):
    parts: list[PartUrl]
    expires_at: str


class StoredPartView(BaseModel):
    part_number: int
    size: int
    etag: str


class StoredParts(BaseModel):
    """What storage holds of a multipart upload: send the rest, then complete."""

    parts: list[StoredPartView]
    part_size: int | None
    part_count: int | None


class CompletedPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    part_number: StrictInt = Field(ge=1, le=10_000)
    etag: str = Field(min_length=1, max_length=64)  # S3 answers 34 characters, quotes included


class CompleteUpload(BaseModel):
    """The parts the client sent, with the ETag storage answered for each; when given,
    they must be exactly the parts storage holds."""

    model_config = ConfigDict(extra="forbid")

    parts: list[CompletedPart] | None = Field(default=None, max_length=10_000)


class Reason(BaseModel):
    code: str
    message: str


class Rendition(BaseModel):
    """A picture of the upload in another size or format, made from its judged pixels."""

    width: int
    height: int
    format: str = Field(description="Its type, e.g. image/webp.")
    size: int
    url: str = Field(description="Public and immutable for public uploads; a short-lived "
                                 "link for private ones.")


class ServedFile(BaseModel):
    """The file `url` and `download_url` deliver."""

    size: int
    sha256: str
    rewritten: bool = Field(description="True when it is a copy made from the upload "
                            "(a re-encoded image, a neutralised CSV, a sanitized SVG) rather "
                            "than the uploaded bytes themselves.")
    content_type: str | None = Field(
        default=None, description="The served file's type: the upload's own, or what it "
                                  "was converted to (a HEIC photo is served as JPEG).")
    renditions: list[Rendition] = Field(
        default_factory=list, description="The picture in the sizes its profile declares, "
                                          "smallest first (for `srcset` and thumbnails).")


class UploadView(BaseModel):
    """One upload as its owner sees it."""

    id: str
    profile: str
    visibility: Literal["public", "private"]
    status: Literal["pending", "processing", "ready", "rejected", "expired", "withdrawn",
                    "deleted"] = Field(
        description="`withdrawn`: accepted, then found bad when judged again, and no longer "
                    "served (see `reason`); `deleted` only in the upload.deleted webhook")
    filename: str
    content_type: str | None = Field(description="The type detected from the file's bytes.")
    declared_content_type: str
    size: int | None = Field(description="The uploaded file's size once checked, else the "
                             "declared one.")
    sha256: str | None = Field(default=None, description="SHA-256 (hex) of the file as "
                               "uploaded, once checked and accepted.")
    served: ServedFile | None = Field(default=None, description="What is delivered, when "
                                      "ready: the upload itself or a copy made from it.")
    reason: Reason | None
    url: str | None = Field(description="Public URL, for public uploads that are ready.")
    download_url: str | None = Field(description="A link that downloads the file, when ready.")
    created_at: str
    updated_at: str
    expires_at: str
    removed_urls: list[str] | None = Field(
        default=None, description="For deleted and withdrawn public uploads (their "
                                  "`upload.deleted` and `upload.withdrawn` events): every "
                                  "public URL that served the file, for a CDN to purge.")


class UploadPage(BaseModel):
    items: list[UploadView]
    next_cursor: str | None


class ProfileView(BaseModel):
    name: str
    description: str
    visibility: Literal["public", "private"]
    max_size: int
    min_size: int
    types: dict[str, list[str]] = Field(description="MIME type -> allowed extensions.")


class ProfileList(BaseModel):
    profiles: list[ProfileView]


class QuotaView(BaseModel):
    bytes: int | None = Field(description="at most this many bytes stored (null: no limit)")
    files: int | None = Field(description="at most this many files stored (null: no limit)")


class UsageView(BaseModel):
    """What the caller stores (ready uploads, as served) against their quota."""

    bytes: int
    files: int
    quota: QuotaView


class SessionCreated(BaseModel):
    owner: str
    expires_at: str


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, str]] | None = Field(
        default=None, description="422 validation_error: each field and what is wrong.")
    retry_after: int | None = Field(
        default=None, description="429 and 503: seconds to wait; the Retry-After header "
                                  "says the same.")


class CompanionParams(BaseModel):
    """Uppy Companion's answer to `GET /s3/params`: POST `fields`, then the file, to `url`."""

    method: Literal["POST"]
    url: str = Field(description="Ends with '/': Uppy reports `url + fields.key`.")
    fields: dict[str, str]
    expires: int = Field(description="Seconds the upload permission is valid.")


def render_upload(uploads: Uploads, record: UploadRecord) -> dict[str, object]:
    """The record as the API shows it, links included when it is ready."""
    ready = record.status == "ready"
    link = uploads.delivery_url(record) if ready else None
    view = UploadView(
        id=record.id,
        profile=record.profile,
        visibility=record.visibility,  # type: ignore[arg-type]
        status=record.status,
        filename=record.filename,
        content_type=record.content_type,
        declared_content_type=record.declared_type,
        size=record.size if record.size is not None else record.declared_size,
        sha256=record.sha256 if record.status == "ready" else None,
        served=_served(uploads, record),
        reason=Reason(**record.reason.as_dict()) if record.reason else None,
        url=link if record.visibility == "public" else None,
        download_url=link,
        created_at=record.created_at,
        updated_at=record.updated_at,
        expires_at=record.expires_at,
        removed_urls=removed_urls(record, uploads.settings.public_url_for)
        if record.status in REMOVALS else None,
    )
    data = view.model_dump(mode="json")
    if record.status not in REMOVALS:
        del data["removed_urls"]  # only removals name them
    return data


def _served(uploads: Uploads, record: UploadRecord) -> ServedFile | None:
    if record.status != "ready" or record.sha256 is None:
        return None
    content_type = record.served_type or record.content_type
    if record.served_sha256 is None or record.served_size is None:  # settled before this
        return ServedFile(size=record.size or 0, sha256=record.sha256, rewritten=False,
                          content_type=content_type)
    renditions = [Rendition(width=r["width"], height=r["height"], format=r["content_type"],
                            size=r["size"], url=uploads.delivery_url(record, r["key"]))
                  for r in renditions_of(record)]
    return ServedFile(size=record.served_size, sha256=record.served_sha256,
                      rewritten=record.served_sha256 != record.sha256,
                      content_type=content_type, renditions=renditions)
