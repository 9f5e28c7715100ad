"""The one place boto3 clients are made. Everything else receives them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from broker.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class AwsClients:
    """The clients one process shares across requests and threads."""

    s3: S3Client
    dynamodb: DynamoDBClient
    sqs: SQSClient


def make_clients(settings: Settings, session: boto3.Session | None = None) -> AwsClients:
    """Build every client once; a client costs milliseconds, so never per request."""
    session = session or boto3.Session(region_name=settings.region)
    # SigV4 always: some regions would otherwise presign POSTs with SigV2.
    config = Config(
        signature_version="s3v4",
        retries={"mode": "standard", "max_attempts": 4},
        s3={"addressing_style": "path" if settings.endpoint_url else "auto"},
    )
    common = {"endpoint_url": settings.endpoint_url, "config": config,
              "region_name": settings.region}
    return AwsClients(
        s3=session.client("s3", **common),  # type: ignore[call-overload]
        dynamodb=session.client("dynamodb", **common),  # type: ignore[call-overload]
        sqs=session.client("sqs", **common),  # type: ignore[call-overload]
    )
