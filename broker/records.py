"""Upload records in one DynamoDB table. Every state change is a conditional write.

    pending ──▶ processing ──▶ ready | rejected
       │
       └──▶ expired   (the upload permission lapsed with nothing stored)

    any ──▶ deleted   (a tombstone: gone from reads and listings)

Listings use a sparse index on `listed_owner`, removed from deleted records; the
pending cap counts a sparse index on `pending_owner`, present only while pending.
The sweeper finds unsettled records through a sparse index on `open_status`
(pending or processing), sorted by `open_since` (expiry for pending, last change for
processing), so it reads only what it may have to move on.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Literal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from broker import clock
from broker.errors import InvalidRequest, StorageError
from broker.reasons import Reason

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Status = Literal["pending", "processing", "ready", "rejected", "expired", "deleted"]
OWNER_INDEX = "by_owner"
PENDING_INDEX = "pending_by_owner"
OPEN_INDEX = "open_by_status"
MAX_PAGE = 100

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


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
    transport: str = "post"  # "put": a presigned PUT, which carries no upload-id metadata

    @property
    def reason(self) -> Reason | None:
        if self.reason_code is None:
            return None
        return Reason(self.reason_code, self.reason_message or "")

    def to_item(self) -> dict[str, Any]:
        item = {k: _serialize(v) for k, v in asdict(self).items()}  # None is stored as NULL
        if self.status != "deleted":
            item["listed_owner"] = _serialize(self.owner)
            item["created_key"] = _serialize(f"{self.created_at}#{self.id}")
        if self.status == "pending":
            item["pending_owner"] = _serialize(self.owner)
        if self.status in ("pending", "processing"):
            item["open_status"] = _serialize(self.status)
            since = self.expires_at if self.status == "pending" else self.updated_at
            item["open_since"] = _serialize(since)
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> UploadRecord:
        names = {f.name for f in fields(cls)}
        values = {k: _deserialize(v) for k, v in item.items() if k in names}
        for number in ("declared_size", "size", "served_size"):
            if values.get(number) is not None:
                values[number] = int(values[number])
        return cls(**values)


def _encode_cursor(key: dict[str, Any]) -> str:
    plain = {k: _deserialize(v) for k, v in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode()


_CURSOR_KEYS = frozenset({"id", "listed_owner", "created_key"})


def _decode_cursor(cursor: str, owner: str) -> dict[str, Any]:
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
    return {k: _serialize(v) for k, v in plain.items()}


class _ConditionFailed(Exception):
    """A conditional write found the record in another state (callers decide why)."""


class Records:
    """Create, read, list and move upload records through their states."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client = client
        self.table = table

    def create(self, record: UploadRecord) -> None:
        """Write a new record; an id already taken is an error, unless it is this very
        record (an earlier attempt succeeded and its answer was lost)."""
        try:
            self._call("put_item", TableName=self.table, Item=record.to_item(),
                       ConditionExpression="attribute_not_exists(id)")
        except _ConditionFailed:
            if self.get(record.id) != record:
                raise StorageError(f"upload id {record.id} is already taken") from None

    def get(self, upload_id: str) -> UploadRecord | None:
        """The record, or None when there is none (deleted records included)."""
        reply = self._call("get_item", TableName=self.table, Key={"id": _serialize(upload_id)},
                           ConsistentRead=True)
        item = reply.get("Item")
        return UploadRecord.from_item(item) if item else None

    def list_by_owner(
        self, owner: str, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[UploadRecord], str | None]:
        """One page of the owner's uploads, newest first, and the cursor of the next."""
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": "listed_owner = :owner",
            "ExpressionAttributeValues": {":owner": _serialize(owner)},
            "ScanIndexForward": False,
            "Limit": max(1, min(limit, MAX_PAGE)),
        }
        if cursor:
            query["ExclusiveStartKey"] = _decode_cursor(cursor, owner)
        reply = self._call("query", **query)
        records = [UploadRecord.from_item(item) for item in reply.get("Items", [])]
        last = reply.get("LastEvaluatedKey")
        return records, (_encode_cursor(last) if last else None)

    def live_pending(self, owner: str, now: str, enough: int) -> list[str]:
        """Expiry times of the owner's pending uploads still open at `now`, soonest
        first; stops counting at `enough`."""
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": PENDING_INDEX,
            "KeyConditionExpression": "pending_owner = :owner AND expires_at > :now",
            "ExpressionAttributeValues": {":owner": _serialize(owner), ":now": _serialize(now)},
            "ProjectionExpression": "expires_at",
            "Limit": enough,
        }
        expiries: list[str] = []
        while len(expiries) < enough:
            reply = self._call("query", **query)
            expiries += [str(_deserialize(i["expires_at"])) for i in reply.get("Items", [])]
            if "LastEvaluatedKey" not in reply:
                break
            query["ExclusiveStartKey"] = reply["LastEvaluatedKey"]
        return expiries[:enough]

    def open_before(self, status: Status, cutoff: str, limit: int = 100
                    ) -> list[UploadRecord]:
        """Up to `limit` records still `status` (pending or processing) whose expiry
        (pending) or last change (processing) is before `cutoff`, oldest first."""
        reply = self._call(
            "query", TableName=self.table, IndexName=OPEN_INDEX,
            KeyConditionExpression="open_status = :status AND open_since < :cutoff",
            ExpressionAttributeValues={":status": _serialize(status),
                                       ":cutoff": _serialize(cutoff)},
            Limit=limit)
        return [UploadRecord.from_item(item) for item in reply.get("Items", [])]

    def transition(
        self,
        record: UploadRecord,
        to: Status,
        *,
        allowed_from: tuple[Status, ...],
        claimed_etag: str | None = None,
        **changes: Any,
    ) -> UploadRecord | None:
        """Move a record to `to` if it is still in one of `allowed_from` (and, when
        `claimed_etag` is given, still claimed for that object version).
        None when it was not: someone else moved it first."""
        updated = replace(record, status=to, updated_at=clock.isoformat(clock.now()), **changes)
        names = {"#status": "status"}
        values = {f":from{i}": _serialize(s) for i, s in enumerate(allowed_from)}
        condition = f"#status IN ({', '.join(values)})"
        if claimed_etag is not None:
            condition += " AND etag = :etag"
            values[":etag"] = _serialize(claimed_etag)
        item = updated.to_item()
        try:
            self._call("put_item", TableName=self.table, Item=item,
                       ConditionExpression=f"attribute_exists(id) AND {condition}",
                       ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        except _ConditionFailed:
            return self._already_written(updated)
        return updated

    def _already_written(self, updated: UploadRecord) -> UploadRecord | None:
        """A failed condition can mean an earlier attempt of this very write succeeded
        (its answer lost, the SDK retried): then it is done, not superseded."""
        current = self.get(updated.id)
        if current is not None and replace(current, updated_at=updated.updated_at) == updated:
            return current
        return None

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed from exc
            if code == "ValidationException":
                # A value the store cannot hold (a key too long, a malformed cursor):
                # the request's fault, and no retry will change it.
                raise InvalidRequest("invalid_request", "The request holds a value the "
                                     "upload records cannot store.") from exc
            raise StorageError(f"the upload records are unavailable ({operation})") from exc
        except BotoCoreError as exc:
            raise StorageError(f"the upload records are unavailable ({operation})") from exc
        return result
