"""What an upload record is, whichever store keeps it.

    pending ──▶ processing ──▶ ready | rejected
       │                         │
       └──▶ expired              └──▶ withdrawn  (judged again, found bad: no longer served)
            (the upload permission lapsed with nothing stored)

    any ──▶ deleted   (a tombstone: gone from reads and listings)
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args, get_type_hints

from broker.common.errors import InvalidRequest
from broker.common.reasons import Reason

Status = Literal["pending", "processing", "ready", "rejected", "expired", "withdrawn",
                 "deleted"]
MAX_PAGE = 100


@dataclass(frozen=True)
class UploadRecord:
    """One upload, from the presign to its verdict."""

    id: str
    owner: str
    profile: str
    visibility: str
    status: Status
    filename: str
    declared_type: str
    declared_size: int | None  # None: the client did not say (Uppy); the profile bounds it
    incoming_key: str
    created_at: str
    updated_at: str
    expires_at: str
    content_type: str | None = None
    size: int | None = None
    etag: str | None = None
    stored_key: str | None = None
    reason_code: str | None = None
    reason_message: str | None = None
    reason_detail: str | None = None  # for operators: the signature name, the part at fault
    sha256: str | None = None  # of the upload as stored and judged
    served_size: int | None = None  # of the file served: differs when re-encoded or rewritten
    served_sha256: str | None = None
    # The served file's type when it differs from the upload's (a HEIC photo as JPEG).
    served_type: str | None = None
    # Pictures: copies in other sizes served beside the file, as JSON: a list of
    # {"name", "key", "width", "height", "content_type", "size"}.
    renditions: str | None = None
    # "put": a presigned PUT, which carries no upload-id metadata; "multipart": in parts
    transport: str = "post"
    multipart_id: str | None = None  # the store's id of the multipart upload
    part_size: int | None = None  # planned; None when the client plans its own parts
    # What judged it: the inspection rules' version and the malware scan (by what, or why
    # not), e.g. "rules 2026.12.04; scanned by ClamAV 1.4.3, signatures 27450 of 2026-12-03"
    judged_by: str | None = None
    # An operator's last action on it (a release or a purge from the quarantine): who, why.
    reviewed_by: str | None = None
    review_note: str | None = None

    @property
    def reason(self) -> Reason | None:
        if self.reason_code is None:
            return None
        return Reason(self.reason_code, self.reason_message or "")

    @property
    def listing_key(self) -> str:
        """Orders an owner's listing, newest first; unique, as it ends with the id."""
        return f"{self.created_at}#{self.id}"


FIELDS = tuple(f.name for f in fields(UploadRecord))
# The fields that hold whole numbers: a store that hands numbers back as another type
# (DynamoDB's decimals) turns these back into ints.
NUMBER_FIELDS = tuple(name for name, kind in get_type_hints(UploadRecord).items()
                      if kind is int or int in get_args(kind))


def as_dict(record: UploadRecord) -> dict[str, Any]:
    """The record's fields, shallow: every value is a string, a number or None (what
    dataclasses.asdict copies deeply, at ten times the cost)."""
    return {name: getattr(record, name) for name in FIELDS}


def renditions_of(record: UploadRecord) -> list[dict[str, Any]]:
    """The renditions served beside the file, smallest first."""
    listed = json.loads(record.renditions) if record.renditions else []
    return sorted(listed, key=lambda r: (r["width"], r["content_type"]))


def served_keys(record: UploadRecord) -> list[str]:
    """Every key a serving bucket holds for the upload: its file and its renditions."""
    if not record.stored_key:
        return []
    keys = [record.stored_key, *(r["key"] for r in renditions_of(record))]
    return list(dict.fromkeys(keys))  # renditions that are the same file share a key


def stored_size(record: UploadRecord) -> int:
    """The bytes an upload counts against its owner's quota: the file served."""
    return record.served_size if record.served_size is not None else (record.size or 0)


class PendingCapReached(Exception):
    """The owner already has as many uploads waiting for their file as allowed."""

    def __init__(self, cap: int, soonest_expiry: str) -> None:
        super().__init__(f"{cap} uploads pending")
        self.cap = cap
        self.soonest_expiry = soonest_expiry


# A listing position: the last record of a page, as both stores resume from it.
_CURSOR_KEYS = frozenset({"id", "listed_owner", "created_key"})


def encode_cursor(record_id: str, owner: str, listing_key: str) -> str:
    position = {"id": record_id, "listed_owner": owner, "created_key": listing_key}
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def decode_cursor(cursor: str, owner: str) -> dict[str, str]:
    """The listing position a cursor holds; it must be one of this owner's listings."""
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(plain, dict) or plain.keys() != _CURSOR_KEYS \
                or not all(isinstance(v, str) for v in plain.values()) \
                or plain["listed_owner"] != owner \
                or not plain["created_key"].endswith(f"#{plain['id']}"):
            raise ValueError("not a cursor")
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("invalid_cursor", "The cursor is not one this API returned.") \
            from None
    return plain
