"""Create what the product needs in a store that does not have it yet. Idempotent.

Used by `broker run` against the embedded emulator or a store you bring (Ceph
RGW, MinIO), and by the tests; AWS deployments get the same resources from `infra/`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from broker.aws.clients import AwsClients
from broker.domain.records.dynamodb import OPEN_INDEX, OUTBOX_INDEX, OWNER_INDEX
from broker.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import (
        AttributeDefinitionTypeDef,
        GlobalSecondaryIndexTypeDef,
    )
    from mypy_boto3_s3.type_defs import NotificationConfigurationFilterTypeDef
    from mypy_boto3_sqs.literals import QueueAttributeNameType

log = logging.getLogger(__name__)

QUARANTINE_DAYS = 30
UNPROCESSED_DAYS = 2
MAX_RECEIVES = 5  # deliveries of one message before it moves to the dead-letter queue


def provision(clients: AwsClients, settings: Settings, queue_name: str,
              origins: Sequence[str], *, serve_public_bucket: bool = False) -> str:
    """Everything for SQS events: storage, queue with DLQ, notifications, table.
    Returns the queue URL."""
    provision_storage(clients, settings, origins, serve_public_bucket=serve_public_bucket)
    queue_url = provision_queue(clients, settings, queue_name)
    ensure_table(clients, settings.table)
    return queue_url


def provision_storage(clients: AwsClients, settings: Settings, origins: Sequence[str], *,
                      serve_public_bucket: bool = False) -> None:
    """The three buckets, CORS and lifecycle on the incoming one.

    `serve_public_bucket` lets anyone read the public bucket directly, for a local
    stack with no CDN in front; on AWS only CloudFront may read it.
    """
    for bucket in (settings.incoming_bucket, settings.public_bucket, settings.private_bucket):
        _ensure_bucket(clients, bucket, settings.region)
    if serve_public_bucket:
        clients.s3.put_bucket_policy(Bucket=settings.public_bucket, Policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Sid": "ServeAsCdn", "Effect": "Allow", "Principal": "*",
                           "Action": "s3:GetObject",
                           "Resource": f"arn:aws:s3:::{settings.public_bucket}/*"}],
        }))
    _configure_incoming(clients, settings, origins)


def _created_filter(settings: Settings) -> NotificationConfigurationFilterTypeDef:
    return {"Key": {"FilterRules": [{"Name": "prefix", "Value": settings.incoming_prefix}]}}


def provision_queue(clients: AwsClients, settings: Settings, queue_name: str) -> str:
    """The event queue with its dead-letter queue, and the bucket's notification to it."""
    queue_url, queue_arn = _ensure_queue(clients, queue_name)
    clients.s3.put_bucket_notification_configuration(
        Bucket=settings.incoming_bucket,
        NotificationConfiguration={"QueueConfigurations": [{
            "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": _created_filter(settings),
        }]},
    )
    return queue_url


def provision_push(clients: AwsClients, settings: Settings, topic_name: str,
                   push_endpoint: str) -> str:
    """A Ceph RGW topic that POSTs to `push_endpoint`, and the bucket's notification
    to it. Returns the topic ARN. (MinIO configures webhooks on the server instead.)

    The topic is persistent: RGW queues each notification and retries it until the
    receiver answers 2xx, so a validator that is restarting or answers 503 loses none
    (a plain topic tries once, during the upload, and drops what fails)."""
    topic_arn = clients.sns.create_topic(
        Name=topic_name, Attributes={"push-endpoint": push_endpoint,
                                     "persistent": "true"})["TopicArn"]
    clients.s3.put_bucket_notification_configuration(
        Bucket=settings.incoming_bucket,
        NotificationConfiguration={"TopicConfigurations": [{
            "Id": "uploads-created", "TopicArn": topic_arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": _created_filter(settings),
        }]},
    )
    return topic_arn


def _ensure_bucket(clients: AwsClients, bucket: str, region: str) -> None:
    try:
        clients.s3.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise
    extra: dict[str, Any] = {}
    if region != "us-east-1":
        extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
    clients.s3.create_bucket(Bucket=bucket, **extra)
    log.info("created bucket %s", bucket)


def _configure_incoming(clients: AwsClients, settings: Settings, origins: Sequence[str]) -> None:
    if origins:
        clients.s3.put_bucket_cors(Bucket=settings.incoming_bucket, CORSConfiguration={
            "CORSRules": [{
                "AllowedOrigins": list(origins),
                "AllowedMethods": ["POST", "PUT"],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag", "Location"],
                "MaxAgeSeconds": 3600,
            }]})
    # Versions make every judged object immutable: a newer upload at the same key can be
    # neither served in its place nor deleted with it.
    clients.s3.put_bucket_versioning(Bucket=settings.incoming_bucket,
                                     VersioningConfiguration={"Status": "Enabled"})
    clients.s3.put_bucket_lifecycle_configuration(
        Bucket=settings.incoming_bucket,
        LifecycleConfiguration={"Rules": [
            {"ID": "expire-quarantine", "Status": "Enabled",
             "Filter": {"Prefix": settings.quarantine_prefix},
             "Expiration": {"Days": QUARANTINE_DAYS}},
            {"ID": "expire-unprocessed", "Status": "Enabled",
             "Filter": {"Prefix": settings.incoming_prefix},
             "Expiration": {"Days": UNPROCESSED_DAYS},
             "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
            {"ID": "expire-old-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
             "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
             "Expiration": {"ExpiredObjectDeleteMarker": True}},
        ]},
    )


def _ensure_queue(clients: AwsClients, name: str) -> tuple[str, str]:
    sqs = clients.sqs
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = _queue_arn(clients, dlq_url)
    attributes: dict[QueueAttributeNameType, str] = {
        "VisibilityTimeout": "60",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                     "maxReceiveCount": str(MAX_RECEIVES)}),
    }
    try:
        queue_url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except sqs.exceptions.QueueNameExists:
        # There already, with other attributes (changed by hand): provisioning sets ours.
        queue_url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=attributes)
    return queue_url, _queue_arn(clients, queue_url)


def _queue_arn(clients: AwsClients, url: str) -> str:
    attrs = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attrs["Attributes"]["QueueArn"]


def _index(name: str, hash_key: str, range_key: str
           ) -> tuple[list[AttributeDefinitionTypeDef], GlobalSecondaryIndexTypeDef]:
    """A string-keyed index projecting every attribute, and the attributes it keys on."""
    attributes: list[AttributeDefinitionTypeDef] = [
        {"AttributeName": hash_key, "AttributeType": "S"},
        {"AttributeName": range_key, "AttributeType": "S"},
    ]
    return attributes, {
        "IndexName": name,
        "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"},
                      {"AttributeName": range_key, "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"},
    }


# The owner's listing, the sweeper's open records, the webhook outbox: all sparse.
_INDEXES = {OWNER_INDEX: _index(OWNER_INDEX, "listed_owner", "created_key"),
            OPEN_INDEX: _index(OPEN_INDEX, "open_status", "open_since"),
            OUTBOX_INDEX: _index(OUTBOX_INDEX, "outbox_state", "outbox_due")}


def ensure_table(clients: AwsClients, table: str) -> None:
    """The records table with its indexes, created on demand; an older table gains the
    indexes it lacks (the sweeper's, the webhook outbox's)."""
    db = clients.dynamodb
    try:
        described = db.describe_table(TableName=table)["Table"]
    except db.exceptions.ResourceNotFoundException:
        _create_table(clients, table)
        return
    indexes = {i["IndexName"] for i in described.get("GlobalSecondaryIndexes", [])}
    for name, (attributes, index) in _INDEXES.items():
        if name not in indexes:
            db.update_table(TableName=table, AttributeDefinitions=attributes,
                            GlobalSecondaryIndexUpdates=[{"Create": index}])
            log.info("added index %s to table %s", name, table)


def _create_table(clients: AwsClients, table: str) -> None:
    db = clients.dynamodb
    db.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            *(a for attributes, _ in _INDEXES.values() for a in attributes),
        ],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[index for _, index in _INDEXES.values()],
    )
    db.get_waiter("table_exists").wait(TableName=table)
    log.info("created table %s", table)
