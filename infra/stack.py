"""The AWS deployment: buckets, CDN, queue, table, secret and the two functions.

Each resource carries the security property that matters for it, and each role
is granted only the actions on the resources its code uses (no `grant_*`
helpers, whose wildcards would exceed that).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from broker.domain.records.dynamodb import OPEN_INDEX, OUTBOX_INDEX, OWNER_INDEX
from infra.stages import Stage

INCOMING_PREFIX = "incoming/"
QUARANTINE_PREFIX = "quarantine/"
RUNTIME = lambda_.Runtime.PYTHON_3_12
CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"


def _string_index(name: str, partition: str, sort: str, keys_only: bool = False
                  ) -> dynamodb.GlobalSecondaryIndexPropsV2:
    """A sparse index on two string attributes (records without them are not in it)."""
    return dynamodb.GlobalSecondaryIndexPropsV2(
        index_name=name,
        partition_key=dynamodb.Attribute(name=partition, type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name=sort, type=dynamodb.AttributeType.STRING),
        projection_type=dynamodb.ProjectionType.KEYS_ONLY if keys_only
        else dynamodb.ProjectionType.ALL)


def private_bucket(scope: Construct, name: str, **extra: object) -> s3.Bucket:
    """Never public, encrypted, reachable over TLS only."""
    return s3.Bucket(scope, name, block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                     encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
                     removal_policy=RemovalPolicy.RETAIN, **extra)  # type: ignore[arg-type]


class UploadBrokerStack(Stack):
    def __init__(self, scope: Construct, stage: Stage, package_dir: Path) -> None:
        super().__init__(scope, f"UploadBroker-{stage.name}")
        names = stage.names(Aws.ACCOUNT_ID)
        methods = [s3.HttpMethods.POST]
        if stage.allow_put_uploads:
            methods.append(s3.HttpMethods.PUT)
        self.incoming = private_bucket(
            self, "Incoming", bucket_name=names.incoming_bucket,
            cors=[s3.CorsRule(allowed_methods=methods, allowed_origins=list(stage.origins),
                              allowed_headers=["*"], exposed_headers=["ETag", "Location"],
                              max_age=3600)],
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-unprocessed", prefix=INCOMING_PREFIX,
                                 expiration=Duration.days(stage.unprocessed_days),
                                 abort_incomplete_multipart_upload_after=Duration.days(1)),
                s3.LifecycleRule(id="expire-quarantine", prefix=QUARANTINE_PREFIX,
                                 expiration=Duration.days(stage.quarantine_days)),
                s3.LifecycleRule(id="expire-old-versions",
                                 noncurrent_version_expiration=Duration.days(1)),
                s3.LifecycleRule(id="remove-delete-markers", expired_object_delete_marker=True),
            ],
            # Judged versions are immutable: a newer upload at the key is neither served
            # in their place nor deleted with them.
            versioned=True,
        )
        self.public = private_bucket(self, "Public", bucket_name=names.public_bucket)
        self.private = private_bucket(self, "Private", bucket_name=names.private_bucket)
        self.distribution = self._cdn(stage)

        self.dead_letters = sqs.Queue(self, "EventsDLQ", queue_name=f"{names.queue}-dlq",
                                      retention_period=Duration.days(14), enforce_ssl=True)
        self.events = sqs.Queue(
            self, "Events", queue_name=names.queue, enforce_ssl=True,
            # Six times the function's timeout, as Lambda recommends for SQS sources.
            visibility_timeout=Duration.seconds(6 * stage.validator_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=5,
                                                  queue=self.dead_letters))
        self.incoming.add_event_notification(
            s3.EventType.OBJECT_CREATED, s3n.SqsDestination(self.events),
            s3.NotificationKeyFilter(prefix=INCOMING_PREFIX))
        cloudwatch.Alarm(
            self, "DeadLettersWaiting",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5)),
            threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            alarm_description="Upload events failed 5 times and wait in the dead-letter queue.")

        self.table = dynamodb.TableV2(
            self, "Uploads", table_name=names.table, partition_key=dynamodb.Attribute(
                name="id", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            removal_policy=RemovalPolicy.RETAIN,
            global_secondary_indexes=[
                _string_index(OWNER_INDEX, "listed_owner", "created_key"),
                # No longer written (the pending cap lives in owner items) and so empty;
                # kept for one release, as CloudFormation changes one index per update.
                _string_index("pending_by_owner", "pending_owner", "expires_at", keys_only=True),
                # The sweeper's view: only records still pending or processing.
                _string_index(OPEN_INDEX, "open_status", "open_since"),
                # Webhook deliveries still pending (by when due) or given up.
                _string_index(OUTBOX_INDEX, "outbox_state", "outbox_due"),
            ])
        # Webhooks' signing secret: letters and digits, which are base64 already.
        self.webhook_secret = secretsmanager.Secret(
            self, "WebhookSecret", description="Signs webhooks (whsec_ + this value).",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=44, exclude_punctuation=True)) if stage.webhook_url else None
        self.jwt_secret = secretsmanager.Secret(
            self, "JwtSecret", description="Signs the broker's bearer tokens (HS256).",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True))

        environment = stage.runtime_settings() | {
            "BROKER_INCOMING_BUCKET": self.incoming.bucket_name,
            "BROKER_PUBLIC_BUCKET": self.public.bucket_name,
            "BROKER_PRIVATE_BUCKET": self.private.bucket_name,
            "BROKER_TABLE": self.table.table_name,
            "BROKER_PUBLIC_BASE_URL": f"https://{stage.cdn_domain}" if stage.cdn_domain
            else f"https://{self.distribution.distribution_domain_name}",
            # What is removed stops being served: the CDN is told (invalidations).
            "BROKER_CLOUDFRONT_DISTRIBUTION_ID": self.distribution.distribution_id,
        }
        self.validator = self._validator(
            stage, package_dir,
            environment | {"BROKER_DEAD_LETTER_QUEUE_URL": self.dead_letters.queue_url,
                           "BROKER_QUEUE_URL": self.events.queue_url})
        self.broker, self.api = self._broker(stage, package_dir, environment)
        CfnOutput(self, "ApiUrl", value=self.api.api_endpoint)
        if self.webhook_secret is not None:
            CfnOutput(self, "WebhookSecretArn", value=self.webhook_secret.secret_arn,
                      description="Give receivers whsec_ followed by this secret's value.")
        CfnOutput(self, "CdnDomain", value=self.distribution.distribution_domain_name)

    def _cdn(self, stage: Stage) -> cloudfront.Distribution:
        headers = cloudfront.ResponseHeadersPolicy(
            self, "SafeHeaders",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(
                    override=True),
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=CSP, override=True),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365), include_subdomains=True,
                    override=True),
            ))
        return cloudfront.Distribution(
            self, "Cdn",
            default_behavior=cloudfront.BehaviorOptions(
                # Origin Access Control: only this distribution may read the bucket.
                origin=origins.S3BucketOrigin.with_origin_access_control(self.public),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                response_headers_policy=headers))

    def _validator(self, stage: Stage, package_dir: Path,
                   environment: dict[str, str]) -> lambda_.Function:
        function = lambda_.Function(
            self, "Validator", runtime=RUNTIME,
            code=lambda_.Code.from_asset(str(package_dir / "validator.zip")),
            handler="lambdas.validator.handler.handler",
            timeout=Duration.seconds(stage.validator_timeout_seconds),
            memory_size=stage.validator_memory_mb,
            reserved_concurrent_executions=stage.validator_concurrency,
            environment=environment)
        function.add_event_source(sources.SqsEventSource(
            self.events, batch_size=10, report_batch_item_failures=True))
        incoming_objects = self.incoming.arn_for_objects(f"{INCOMING_PREFIX}*")
        for statement in (
            # Read, judge and remove what arrives under incoming/.
            iam.PolicyStatement(actions=["s3:GetObject", "s3:GetObjectVersion",
                                         "s3:DeleteObject", "s3:DeleteObjectVersion"],
                                resources=[incoming_objects]),
            # Check what was delivered against the judged hash; withdraw it on a mismatch.
            iam.PolicyStatement(actions=["s3:GetObject", "s3:DeleteObject"], resources=[
                self.public.arn_for_objects("*"), self.private.arn_for_objects("*")]),
            # Without ListBucket, S3 answers 403 instead of 404 for an object already gone;
            # with ListBucketVersions, a verdict finds any version overwritten at its key.
            iam.PolicyStatement(actions=["s3:ListBucket", "s3:ListBucketVersions"],
                                resources=[self.incoming.bucket_arn],
                                conditions={"StringLike": {"s3:prefix": [f"{INCOMING_PREFIX}*"]}}),
            # Promote and quarantine (by a copy in parts above 5 GiB: aborted if it fails).
            iam.PolicyStatement(actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=[
                self.incoming.arn_for_objects(f"{QUARANTINE_PREFIX}*"),
                self.public.arn_for_objects("*"), self.private.arn_for_objects("*")]),
            # The sweeper aborts the parts of uploads that expired unfinished.
            iam.PolicyStatement(actions=["s3:AbortMultipartUpload"],
                                resources=[incoming_objects]),
            # A batch short on time hands its unstarted messages back at once.
            iam.PolicyStatement(actions=["sqs:ChangeMessageVisibility"],
                                resources=[self.events.queue_arn]),
            # A claim leaves pending: the record and its owner's pending entry, together.
            iam.PolicyStatement(actions=["dynamodb:GetItem", "dynamodb:PutItem",
                                         "dynamodb:UpdateItem"],
                                resources=[self.table.table_arn]),
            # The sweeper: unsettled records, and how many events wait in the DLQ.
            iam.PolicyStatement(actions=["dynamodb:Query"],
                                resources=[f"{self.table.table_arn}/index/{OPEN_INDEX}",
                                           f"{self.table.table_arn}/index/{OUTBOX_INDEX}"]),
            iam.PolicyStatement(actions=["sqs:GetQueueAttributes"],
                                resources=[self.dead_letters.queue_arn]),
            # Tell the CDN what stops being served (the outbox's removals), on its own
            # distribution only.
            iam.PolicyStatement(actions=["cloudfront:CreateInvalidation"],
                                resources=[self.distribution.distribution_arn]),
        ):
            function.add_to_role_policy(statement)
        if self.webhook_secret is not None:
            function.add_environment("BROKER_WEBHOOK_SECRET_ARN", self.webhook_secret.secret_arn)
            function.add_to_role_policy(iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                resources=[self.webhook_secret.secret_arn]))
        # Expires lapsed uploads, re-drives stuck ones, reports the DLQ's depth, and sends
        # the outbox: each minute, so the CDN hears of a removal (and a failed webhook is
        # retried) within one.
        events.Rule(self, "Sweep", schedule=events.Schedule.rate(Duration.minutes(1)),
                    targets=[targets.LambdaFunction(function)])
        return function

    def _broker(self, stage: Stage, package_dir: Path, environment: dict[str, str]
                ) -> tuple[lambda_.Function, apigw.HttpApi]:
        function = lambda_.Function(
            self, "Broker", runtime=RUNTIME,
            code=lambda_.Code.from_asset(str(package_dir / "broker.zip")),
            # A long poll (?wait=25 at most) must end inside the HTTP API's 30 s.
            handler="lambdas.broker.handler.handler", timeout=Duration.seconds(29),
            memory_size=stage.broker_memory_mb,
            environment=environment | {"BROKER_JWT_SECRET_ARN": self.jwt_secret.secret_arn})
        if self.webhook_secret is not None:
            # Named, not read: the broker writes the outbox, the validator sends it.
            function.add_environment("BROKER_WEBHOOK_SECRET_ARN", self.webhook_secret.secret_arn)
        for statement in (
            # Presigned uploads (forms, PUTs, parts) are signed with this role, and uploads
            # in parts started, listed, completed and aborted: only under incoming/.
            iam.PolicyStatement(actions=["s3:PutObject", "s3:ListMultipartUploadParts",
                                         "s3:AbortMultipartUpload"], resources=[
                self.incoming.arn_for_objects(f"{INCOMING_PREFIX}*")]),
            # Whether a completed upload's object is there (a listing, not a read).
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.incoming.bucket_arn],
                                conditions={"StringLike": {"s3:prefix": [f"{INCOMING_PREFIX}*"]}}),
            # Presigned downloads of private files.
            iam.PolicyStatement(actions=["s3:GetObject"],
                                resources=[self.private.arn_for_objects("*")]),
            # DELETE /v1/uploads/{id} removes every stored copy.
            iam.PolicyStatement(actions=["s3:DeleteObject"], resources=[
                self.incoming.arn_for_objects(f"{INCOMING_PREFIX}*"),
                self.public.arn_for_objects("*"), self.private.arn_for_objects("*")]),
            # A create writes the record and its owner's pending count in one transaction.
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                         "dynamodb:Query"],
                resources=[self.table.table_arn, f"{self.table.table_arn}/index/{OWNER_INDEX}"]),
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"],
                                resources=[self.jwt_secret.secret_arn]),
        ):
            function.add_to_role_policy(statement)
        api = apigw.HttpApi(
            self, "Api", default_integration=integrations.HttpLambdaIntegration(
                "BrokerIntegration", function))
        return function, api
