"""Upload records in one DynamoDB table: the AWS default and the emulator's.

Every state change is a conditional write. Listings use a sparse index on
`listed_owner`, removed from deleted records. The sweeper finds unsettled records
through a sparse index on `open_status` (pending or processing), sorted by
`open_since` (expiry for pending, last change for processing), so it reads only what
it may have to move on.

The owner's usage (bytes and files of ready uploads) lives in the same item per owner,
moved in the transaction that makes an upload ready (on condition it stays within the
quota) or deletes a ready one.

The pending cap lives in one item per owner (`owner#<id>`): a string set of
`<expiry>#<upload id>` entries, one per pending upload. A create writes the record
and adds its entry in one transaction, on condition that the set is below the cap,
so concurrent creates cannot overshoot it; leaving pending removes the entry in the
same transaction. Entries whose permission lapsed unswept are pruned when the cap
is reached, so only uploads still open count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from broker.aws.lean_json import LeanDynamoDB
from broker.common.errors import InvalidRequest, RecordsUnavailable, probing
from broker.domain.quotas import QuotaExceeded, Usage
from broker.domain.records.model import (
    MAX_PAGE,
    NUMBER_FIELDS,
    PendingCapReached,
    Status,
    UploadRecord,
    as_dict,
    decode_cursor,
    encode_cursor,
)
from broker.domain.records.outbox import WebhookDelivery
from broker.domain.records.store import RecordStore, UsageChange

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OWNER_INDEX = "by_owner"
OPEN_INDEX = "open_by_status"
OUTBOX_INDEX = "outbox_by_state"  # webhook deliveries still pending, or dead
PROBE_KEY = "readiness-probe"
_TRANSACTION_ATTEMPTS = 8  # conflicting transactions on one owner item are retried

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


def to_item(record: UploadRecord) -> dict[str, Any]:
    item = {k: _serialize(v) for k, v in as_dict(record).items()}  # None is stored as NULL
    if record.status != "deleted":
        item["listed_owner"] = _serialize(record.owner)
        item["created_key"] = _serialize(record.listing_key)
    if record.status in ("pending", "processing"):
        item["open_status"] = _serialize(record.status)
        since = record.expires_at if record.status == "pending" else record.updated_at
        item["open_since"] = _serialize(since)
    return item


def from_item(item: dict[str, Any]) -> UploadRecord:
    names = {f.name for f in fields(UploadRecord)}
    values = {k: _deserialize(v) for k, v in item.items() if k in names}
    for number in NUMBER_FIELDS:
        if values.get(number) is not None:
            values[number] = int(values[number])
    return UploadRecord(**values)


def _webhook_item(delivery: WebhookDelivery) -> dict[str, Any]:
    item = {k: _serialize(v) for k, v in asdict(delivery).items()}
    item["id"] = _serialize(f"webhook#{delivery.id}")
    if delivery.state != "delivered":  # sparse: delivered ones leave the index
        item["outbox_state"] = _serialize(delivery.state)
        item["outbox_due"] = _serialize(delivery.due_at)
    return item


def _webhook_from_item(item: dict[str, Any]) -> WebhookDelivery:
    names = {f.name for f in fields(WebhookDelivery)}
    values = {k: _deserialize(v) for k, v in item.items() if k in names}
    values["id"] = str(values["id"]).removeprefix("webhook#")
    values["attempts"] = int(values["attempts"])
    return WebhookDelivery(**values)


def _owner_key(owner: str) -> dict[str, Any]:
    return {"id": _serialize(f"owner#{owner}")}


def _pending_entry(record: UploadRecord) -> str:
    return f"{record.expires_at}#{record.id}"


class _ConditionFailed(Exception):
    """A conditional write found the record in another state (callers decide why)."""


class _Cancelled(Exception):
    """A transaction was refused; `reasons` has one code per item ("None": not at fault)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons


class DynamoRecords(RecordStore):
    """The records contract on a DynamoDB table and its three sparse indexes."""

    def __init__(self, client: DynamoDBClient | LeanDynamoDB, table: str) -> None:
        self.client = client
        self.table = table

    def get(self, upload_id: str) -> UploadRecord | None:
        reply = self._call("get_item", TableName=self.table, Key={"id": _serialize(upload_id)},
                           ConsistentRead=True)
        item = reply.get("Item")
        return from_item(item) if item else None

    def list_by_owner(
        self, owner: str, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[UploadRecord], str | None]:
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": "listed_owner = :owner",
            "ExpressionAttributeValues": {":owner": _serialize(owner)},
            "ScanIndexForward": False,
            "Limit": max(1, min(limit, MAX_PAGE)),
        }
        if cursor:
            position = decode_cursor(cursor, owner)
            query["ExclusiveStartKey"] = {k: _serialize(v) for k, v in position.items()}
        reply = self._call("query", **query)
        records = [from_item(item) for item in reply.get("Items", [])]
        last = reply.get("LastEvaluatedKey")
        if not last:
            return records, None
        plain = {k: str(_deserialize(v)) for k, v in last.items()}
        return records, encode_cursor(plain["id"], plain["listed_owner"], plain["created_key"])

    def each_in_status(self, status: Status) -> Iterator[UploadRecord]:
        # A scan, paged by the table's own order (DynamoDB has no order by id to page by).
        params: dict[str, Any] = {
            "TableName": self.table, "FilterExpression": "#status = :status",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":status": _serialize(status)}}
        while True:
            reply = self._call("scan", **params)
            yield from map(from_item, reply.get("Items", []))
            if not reply.get("LastEvaluatedKey"):
                return
            params["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    def open_before(self, status: Status, cutoff: str, limit: int = 100
                    ) -> list[UploadRecord]:
        reply = self._call(
            "query", TableName=self.table, IndexName=OPEN_INDEX,
            KeyConditionExpression="open_status = :status AND open_since < :cutoff",
            ExpressionAttributeValues={":status": _serialize(status),
                                       ":cutoff": _serialize(cutoff)},
            Limit=limit)
        return [from_item(item) for item in reply.get("Items", [])]

    def ping(self) -> None:
        with probing(RecordsUnavailable):
            self.client.get_item(TableName=self.table, Key={"id": _serialize(PROBE_KEY)})

    def _insert(self, record: UploadRecord, pending_cap: int) -> bool:
        entry = _pending_entry(record)
        put = {"Put": {"TableName": self.table, "Item": to_item(record),
                       "ConditionExpression": "attribute_not_exists(id)"}}
        count = {"Update": {
            "TableName": self.table, "Key": _owner_key(record.owner),
            "UpdateExpression": "ADD pending :entry",
            "ConditionExpression": "attribute_not_exists(pending) OR size(pending) < :cap",
            "ExpressionAttributeValues": {":entry": {"SS": [entry]},
                                          ":cap": _serialize(pending_cap)}}}

        def settle(reasons: list[str]) -> bool | None:
            record_refused, cap_refused = reasons[:2]
            if record_refused == "ConditionalCheckFailed":
                return False
            if cap_refused == "ConditionalCheckFailed" and \
                    not self._prune_lapsed(record.owner, record.created_at, pending_cap):
                raise PendingCapReached(pending_cap, self._soonest(record.owner))
            return None  # lapsed entries pruned, or a concurrent create: try again
        return self._transact_settled([put, count], settle)

    def _pending_entries(self, owner: str) -> list[str]:
        reply = self._call("get_item", TableName=self.table, Key=_owner_key(owner),
                           ConsistentRead=True, ProjectionExpression="pending")
        return sorted(_deserialize(reply.get("Item", {}).get("pending", {"SS": ["-"]})) - {"-"})

    def _prune_lapsed(self, owner: str, now: str, pending_cap: int) -> bool:
        """Drop entries of uploads whose permission lapsed by `now`; True if any were."""
        lapsed = [e for e in self._pending_entries(owner) if e.split("#")[0] <= now]
        if lapsed:
            self._call("update_item", TableName=self.table, Key=_owner_key(owner),
                       UpdateExpression="DELETE pending :lapsed",
                       ExpressionAttributeValues={":lapsed": {"SS": lapsed}})
        return bool(lapsed)

    def _soonest(self, owner: str) -> str:
        entries = self._pending_entries(owner)
        return entries[0].split("#")[0] if entries else ""

    def usage(self, owner: str) -> Usage:
        reply = self._call("get_item", TableName=self.table, Key=_owner_key(owner),
                           ConsistentRead=True,
                           ProjectionExpression="stored_bytes, stored_files")
        item = reply.get("Item", {})
        return Usage(int(_deserialize(item.get("stored_bytes", {"N": "0"}))),
                     int(_deserialize(item.get("stored_files", {"N": "0"}))))

    def _replace(self, updated: UploadRecord, allowed_from: tuple[Status, ...],
                 claimed_etag: str | None, change: UsageChange | None,
                 deliveries: list[WebhookDelivery]) -> bool:
        names = {"#status": "status"}
        values = {f":from{i}": _serialize(s) for i, s in enumerate(allowed_from)}
        condition = f"#status IN ({', '.join(values)})"
        if claimed_etag is not None:
            condition += " AND etag = :etag"
            values[":etag"] = _serialize(claimed_etag)
        put = {"TableName": self.table, "Item": to_item(updated),
               "ConditionExpression": f"attribute_exists(id) AND {condition}",
               "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
        owner_update = self._owner_update(updated, allowed_from, change)
        if owner_update is None and not deliveries:
            try:
                self._call("put_item", **put)
            except _ConditionFailed:
                return False
            return True
        # The record, its owner's item (pending entry, usage) and the webhook outbox
        # change together.
        items: list[dict[str, Any]] = [{"Put": put}]
        if owner_update is not None:
            items.append({"Update": owner_update})
        items += [{"Put": {"TableName": self.table, "Item": _webhook_item(d),
                           "ConditionExpression": "attribute_not_exists(id)"}}
                  for d in deliveries]

        def settle(reasons: list[str]) -> bool | None:
            if reasons[0] == "ConditionalCheckFailed":
                return False
            if owner_update is not None and reasons[1] == "ConditionalCheckFailed":
                raise QuotaExceeded
            return None  # a concurrent write to the owner's item: try again
        return self._transact_settled(items, settle)

    def due_webhooks(self, now: str, limit: int = 50, state: str = "pending"
                     ) -> list[WebhookDelivery]:
        return self._outbox(state, now, limit)

    def webhooks(self, state: str, limit: int = 100) -> list[WebhookDelivery]:
        return self._outbox(state, "9999", limit)

    def _outbox(self, state: str, due_by: str, limit: int) -> list[WebhookDelivery]:
        reply = self._call(
            "query", TableName=self.table, IndexName=OUTBOX_INDEX, Limit=limit,
            KeyConditionExpression="outbox_state = :state AND outbox_due <= :due",
            ExpressionAttributeValues={":state": _serialize(state), ":due": _serialize(due_by)})
        return [_webhook_from_item(item) for item in reply.get("Items", [])]

    def get_webhook(self, delivery_id: str) -> WebhookDelivery | None:
        reply = self._call("get_item", TableName=self.table, ConsistentRead=True,
                           Key={"id": _serialize(f"webhook#{delivery_id}")})
        item = reply.get("Item")
        return _webhook_from_item(item) if item else None

    def replace_webhook(self, new: WebhookDelivery, expected: WebhookDelivery) -> bool:
        try:
            self._call("put_item", TableName=self.table, Item=_webhook_item(new),
                       ConditionExpression="attempts = :attempts AND due_at = :due "
                                           "AND #state = :state",
                       ExpressionAttributeNames={"#state": "state"},
                       ExpressionAttributeValues={":attempts": _serialize(expected.attempts),
                                                  ":due": _serialize(expected.due_at),
                                                  ":state": _serialize(expected.state)})
        except _ConditionFailed:
            return False
        return True

    def _owner_update(self, updated: UploadRecord, allowed_from: tuple[Status, ...],
                      change: UsageChange | None) -> dict[str, Any] | None:
        """The owner item's part of a transition: its pending entry leaves when the
        record leaves pending; its usage moves by `change`, within the quota."""
        clauses: list[str] = []
        conditions: list[str] = []
        values: dict[str, Any] = {}
        if "pending" in allowed_from and updated.status != "pending":
            clauses.append("DELETE pending :entry")
            values[":entry"] = {"SS": [_pending_entry(updated)]}
        if change is not None:
            if not change.fits_at_all():
                raise QuotaExceeded
            clauses.append("ADD stored_bytes :bytes, stored_files :files")
            values[":bytes"] = _serialize(change.bytes)
            values[":files"] = _serialize(change.files)
            for attribute, limit, more in (("stored_bytes", change.quota.bytes, change.bytes),
                                           ("stored_files", change.quota.files, change.files)):
                if limit is not None and more > 0:
                    values[f":room_{attribute}"] = _serialize(limit - more)
                    conditions.append(f"(attribute_not_exists({attribute}) OR "
                                      f"{attribute} <= :room_{attribute})")
        if not clauses:
            return None
        update: dict[str, Any] = {"TableName": self.table, "Key": _owner_key(updated.owner),
                                  "UpdateExpression": " ".join(clauses),
                                  "ExpressionAttributeValues": values}
        if conditions:
            update["ConditionExpression"] = " AND ".join(conditions)
        return update

    def _transact_settled(self, items: list[dict[str, Any]],
                          settle: Callable[[list[str]], bool | None]) -> bool:
        """Write `items` in one transaction: True when it was written. A refusal goes to
        `settle` with one reason per item: it returns the outcome (or raises) when a
        condition decided it, None when another write got in the way (try again)."""
        for attempt in range(_TRANSACTION_ATTEMPTS):
            try:
                self._transact(items)
                return True
            except _Cancelled as refused:
                reasons = refused.reasons
            outcome = settle(reasons)  # outside the except: what it raises stands alone
            if outcome is not None:
                return outcome
            time.sleep(0.01 * attempt)
        raise RecordsUnavailable("the upload records are too busy for this owner; try again")

    def _transact(self, items: list[dict[str, Any]]) -> None:
        try:
            self._call("transact_write_items", TransactItems=items)
        except _Cancelled:
            raise
        except _ConditionFailed as exc:  # pragma: no cover - transactions cancel instead
            raise _Cancelled(["ConditionalCheckFailed"] * len(items)) from exc

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed from exc
            if code == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons", [])
                raise _Cancelled([str(r.get("Code", "None")) for r in reasons]) from exc
            if code == "ValidationException":
                # A value the store cannot hold (a key too long, a malformed cursor):
                # the request's fault, and no retry will change it.
                raise InvalidRequest("invalid_request", "The request holds a value the "
                                     "upload records cannot store.") from exc
            raise self._unavailable(operation) from exc
        except BotoCoreError as exc:
            raise self._unavailable(operation) from exc
        return result

    def _unavailable(self, operation: str) -> RecordsUnavailable:
        return RecordsUnavailable(f"the upload records (DynamoDB table {self.table!r}) are "
                                  f"unavailable ({operation})")
