"""The one place boto3 clients are made. Everything else receives them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from pydantic import SecretStr

from broker.settings import Settings
from broker.storage import COPY_CONCURRENCY

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class AwsClients:
    """The clients one process shares across requests and threads."""

    s3: S3Client
    dynamodb: DynamoDBClient
    sqs: SQSClient
    # Ceph RGW manages its push topics through an SNS-compatible API on the S3 endpoint.
    sns: SNSClient
    cloudfront: Any  # invalidations of the CDN in front of the public bucket


def make_clients(settings: Settings, session: boto3.Session | None = None) -> AwsClients:
    """Build every client once; a client costs milliseconds, so never per request."""
    session = session or boto3.Session(region_name=settings.region)
    s3_endpoint = settings.endpoint_for("s3")
    addressing = settings.s3_addressing_style
    if addressing == "auto" and s3_endpoint:
        addressing = "path"  # S3-compatible stores rarely have wildcard DNS for buckets
    checksums = settings.s3_checksums
    if checksums == "auto":
        checksums = "when_required" if s3_endpoint else "when_supported"
    # SigV4 always: some regions would otherwise presign POSTs with SigV2.
    config = Config(
        request_checksum_calculation=checksums,
        response_checksum_validation=checksums,
        signature_version="s3v4",
        # A connection per thread that may call at once (worker threads, each copying
        # in parts; server threads): a full pool discards and reconnects on every call.
        max_pool_connections=max(32, settings.worker_concurrency * (COPY_CONCURRENCY + 1)),
        retries={"mode": "standard", "max_attempts": 4},
        s3={"addressing_style": addressing},
    )

    def client(service: str, endpoint: str | None) -> Any:
        return session.client(service, endpoint_url=endpoint,  # type: ignore[call-overload]
                              config=config, region_name=settings.region)

    return AwsClients(
        s3=client("s3", s3_endpoint),
        dynamodb=client("dynamodb", settings.endpoint_for("dynamodb")),
        sqs=client("sqs", settings.endpoint_for("sqs")),
        sns=client("sns", s3_endpoint),
        cloudfront=client("cloudfront", settings.endpoint_url),
    )


def fetch_secret(settings: Settings, arn: str) -> SecretStr:
    """A secret from Secrets Manager (BROKER_JWT_SECRET_ARN, BROKER_WEBHOOK_SECRET_ARN),
    read once at start."""
    client = boto3.client("secretsmanager", region_name=settings.region)
    return SecretStr(client.get_secret_value(SecretId=arn)["SecretString"])


def credentials_of(client: Any) -> Any:
    """The credentials a botocore client signs with (refreshing ones included), for the
    hot-path signers that sign as the client would; None when there are none."""
    return client._request_signer._credentials
