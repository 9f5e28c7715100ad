"""Thin adapters: every way an object announcement arrives becomes an ObjectRef.

- SQS messages whose body is an S3 notification (AWS, moto, LocalStack)
- direct S3 events (a Lambda subscribed to the bucket)
- HTTP push bodies from Ceph RGW and MinIO (the same `Records` shape)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from broker.common.parsing import UnreadableJson, parse_json


@dataclass(frozen=True)
class ObjectRef:
    """One stored object an event announces."""

    bucket: str
    key: str
    etag: str | None = None
    size: int | None = None
    version_id: str | None = None  # the version the event announces, on versioned buckets


class MalformedEvent(ValueError):
    """An event that no retry can make sense of."""


def refs_from_notification(notification: dict[str, Any]) -> list[ObjectRef]:
    """The created objects an S3-style notification names; test events name none."""
    if notification.get("Event") == "s3:TestEvent":
        return []
    records = notification.get("Records")
    if not isinstance(records, list):
        raise MalformedEvent("an S3 notification has a 'Records' list")
    refs = []
    for record in records:
        if not isinstance(record, dict):
            raise MalformedEvent("an S3 record is not a JSON object")
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            continue
        try:
            s3 = record["s3"]
            # Keys arrive URL-encoded ('/' as %2F, spaces as '+').
            key = unquote_plus(s3["object"]["key"])
            bucket = s3["bucket"]["name"]
            obj = s3["object"]
            if not isinstance(bucket, str) or not isinstance(obj, dict):
                raise TypeError("'bucket.name' as a string")
        except (KeyError, TypeError, AttributeError) as exc:
            raise MalformedEvent(f"an S3 record lacks {exc}") from None
        etag = obj.get("eTag") or obj.get("etag")
        size = obj.get("size")
        version = obj.get("versionId")
        try:
            refs.append(ObjectRef(bucket, key, f'"{etag}"' if etag else None,
                                  int(size) if size is not None else None,
                                  str(version) if version and version != "null" else None))
        except (TypeError, ValueError) as exc:
            raise MalformedEvent(f"an S3 record has a bad size: {exc}") from None
    return refs


def refs_from_sqs_body(body: str) -> list[ObjectRef]:
    """The objects one SQS message announces."""
    try:
        notification = parse_json(body)
    except UnreadableJson as exc:
        raise MalformedEvent(f"the message body is not JSON: {exc}") from None
    if not isinstance(notification, dict):
        raise MalformedEvent("the message body is not a JSON object")
    # S3 → SNS → SQS wraps the notification once more.
    if notification.get("Type") == "Notification" and "Message" in notification:
        return refs_from_sqs_body(str(notification["Message"]))
    return refs_from_notification(notification)
