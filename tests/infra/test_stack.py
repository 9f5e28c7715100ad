"""The AWS deployment, reviewed: each security property has a test that proves it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any], Path]:
    from aws_cdk.assertions import Template

    from infra.app import build

    outdir = tmp_path_factory.mktemp("cdk.out")
    packages = tmp_path_factory.mktemp("build")
    for name in ("validator", "broker"):
        (packages / f"{name}.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip
    import infra.app

    infra.app.PACKAGES = packages
    app = build("dev", outdir)
    stack = app.node.children[0]
    template = Template.from_stack(stack)  # type: ignore[arg-type]
    return template, template.to_json(), outdir


def resources(doc: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in doc["Resources"].items() if v["Type"] == kind}


def logical(doc: dict[str, Any], kind: str, name: str) -> tuple[str, dict[str, Any]]:
    """The resource CDK named `name` plus its 8-character hash."""
    pattern = re.compile(rf"^{name}[0-9A-F]{{8}}$")
    (found,) = [(k, v) for k, v in resources(doc, kind).items() if pattern.match(k)]
    return found


def test_no_bucket_is_public_and_all_are_encrypted(synthesized: Any) -> None:
    _, doc, _ = synthesized
    buckets = resources(doc, "AWS::S3::Bucket")
    assert len(buckets) == 3
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True}
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]


def test_every_bucket_refuses_plain_http(synthesized: Any) -> None:
    _, doc, _ = synthesized
    policies = resources(doc, "AWS::S3::BucketPolicy").values()
    denying = [p for p in policies if any(
        s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get(
            "aws:SecureTransport") == "false"
        for s in p["Properties"]["PolicyDocument"]["Statement"])]
    assert len(denying) == 3


def test_incoming_cors_allows_post_from_the_configured_origins_only(synthesized: Any) -> None:
    from infra.stages import STAGES

    _, doc, _ = synthesized
    _, incoming = logical(doc, "AWS::S3::Bucket", "Incoming")
    (rule,) = incoming["Properties"]["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedMethods"] == ["POST"]
    assert rule["AllowedOrigins"] == list(STAGES["dev"].origins)
    assert rule["ExposedHeaders"] == ["ETag", "Location"]


def test_unprocessed_uploads_and_quarantine_expire(synthesized: Any) -> None:
    _, doc, _ = synthesized
    _, incoming = logical(doc, "AWS::S3::Bucket", "Incoming")
    rules = {r.get("Prefix", ""): r
             for r in incoming["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["incoming/"]["ExpirationInDays"] == 2
    assert rules["incoming/"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rules["quarantine/"]["ExpirationInDays"] == 30
    assert incoming["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    everywhere = [r for r in incoming["Properties"]["LifecycleConfiguration"]["Rules"]
                  if "Prefix" not in r]
    assert {"NoncurrentDays": 1} in [r.get("NoncurrentVersionExpiration") for r in everywhere]
    assert True in [r.get("ExpiredObjectDeleteMarker") for r in everywhere]


def test_only_the_cdn_reads_the_public_bucket_through_oac(synthesized: Any) -> None:
    _, doc, _ = synthesized
    public_id, _ = logical(doc, "AWS::S3::Bucket", "Public")
    (policy,) = [p for p in resources(doc, "AWS::S3::BucketPolicy").values()
                 if p["Properties"]["Bucket"] == {"Ref": public_id}]
    allows = [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
              if s["Effect"] == "Allow"]
    assert len(allows) == 1
    assert allows[0]["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allows[0]["Action"] == "s3:GetObject"
    assert "AWS:SourceArn" in allows[0]["Condition"]["StringEquals"]
    (oac,) = resources(doc, "AWS::CloudFront::OriginAccessControl").values()
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"


def test_the_cdn_adds_nosniff_a_sandboxing_csp_and_hsts(synthesized: Any) -> None:
    _, doc, _ = synthesized
    (policy,) = resources(doc, "AWS::CloudFront::ResponseHeadersPolicy").values()
    security = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert security["ContentTypeOptions"]["Override"] is True
    assert "sandbox" in security["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] == 365 * 24 * 3600


def test_failed_events_reach_a_dead_letter_queue_that_raises_an_alarm(synthesized: Any) -> None:
    _, doc, _ = synthesized
    dlq_id, _ = logical(doc, "AWS::SQS::Queue", "EventsDLQ")
    _, events = logical(doc, "AWS::SQS::Queue", "Events")
    redrive = events["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == 5
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    _, validator = logical(doc, "AWS::Lambda::Function", "Validator")
    assert events["Properties"]["VisibilityTimeout"] == 6 * validator["Properties"]["Timeout"]
    (alarm,) = resources(doc, "AWS::CloudWatch::Alarm").values()
    assert alarm["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [dlq_id, "QueueName"]}
    assert alarm["Properties"]["Threshold"] == 1


def test_the_validator_reports_batch_item_failures_with_reserved_concurrency(
        synthesized: Any) -> None:
    _, doc, _ = synthesized
    (mapping,) = resources(doc, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    _, validator = logical(doc, "AWS::Lambda::Function", "Validator")
    assert validator["Properties"]["ReservedConcurrentExecutions"] == 20
    assert validator["Properties"]["Handler"] == "lambdas.validator.handler.handler"
    # Sized for large objects: Lambda's 15 minutes, one full vCPU for the hashing.
    assert validator["Properties"]["Timeout"] == 900
    assert validator["Properties"]["MemorySize"] == 1769
    assert "BROKER_QUEUE_URL" in validator["Properties"]["Environment"]["Variables"]


def role_actions(doc: dict[str, Any], role_prefix: str) -> set[str]:
    role_id, _ = logical(doc, "AWS::IAM::Role", role_prefix)
    actions: set[str] = set()
    for policy in resources(doc, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                found = statement["Action"]
                actions |= set(found if isinstance(found, list) else [found])
    return actions


def test_each_role_may_do_only_what_its_code_does(synthesized: Any) -> None:
    _, doc, _ = synthesized
    assert role_actions(doc, "ValidatorServiceRole") == {
        "s3:GetObject", "s3:DeleteObject", "s3:ListBucket", "s3:PutObject",
        # Copies in parts aborted on failure; expired uploads' parts aborted by the sweeper.
        "s3:AbortMultipartUpload",
        # Versioned incoming bucket: the judged version is read and removed by its id,
        # and any other version at its key found once the upload is settled.
        "s3:GetObjectVersion", "s3:DeleteObjectVersion", "s3:ListBucketVersions",
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
        # The sweeper: the index of unsettled records (Query), the DLQ's depth.
        "dynamodb:Query",
        # From the SQS event source: receive and settle its messages.
        "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl",
        "sqs:DeleteMessage", "sqs:GetQueueAttributes",
        # What is removed stops being served: invalidations of its own distribution.
        "cloudfront:CreateInvalidation"}
    assert role_actions(doc, "BrokerServiceRole") == {
        "s3:PutObject", "s3:GetObject", "s3:DeleteObject",
        # Uploads in parts: listed, aborted, and their assembled object looked for.
        "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload", "s3:ListBucket",
        "dynamodb:GetItem",
        "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
        "secretsmanager:GetSecretValue"}


def test_the_sweeper_runs_on_a_schedule_against_the_validator(synthesized: Any) -> None:
    _, doc, _ = synthesized
    (rule,) = resources(doc, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    validator_id, _ = logical(doc, "AWS::Lambda::Function", "Validator")
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [validator_id, "Arn"]}


def test_the_validator_may_invalidate_its_own_distribution_only(synthesized: Any) -> None:
    _, doc, _ = synthesized
    distribution_id, _ = logical(doc, "AWS::CloudFront::Distribution", "Cdn")
    for name in ("Validator", "Broker"):
        _, function = logical(doc, "AWS::Lambda::Function", name)
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["BROKER_CLOUDFRONT_DISTRIBUTION_ID"] == {"Ref": distribution_id}
    granted = [statement["Resource"]
               for policy in resources(doc, "AWS::IAM::Policy").values()
               for statement in policy["Properties"]["PolicyDocument"]["Statement"]
               if statement["Action"] == "cloudfront:CreateInvalidation"]
    assert len(granted) == 1
    assert "distribution/" in str(granted[0])
    assert distribution_id in str(granted[0])


def test_no_wildcard_action_or_resource_in_our_roles(synthesized: Any) -> None:
    _, doc, _ = synthesized
    for policy_id, policy in resources(doc, "AWS::IAM::Policy").items():
        if policy_id.startswith("BucketNotificationsHandler"):
            continue  # CDK's own custom resource that writes the bucket notification
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) \
                else [statement["Action"]]
            assert not any("*" in a for a in actions), (policy_id, actions)
            targets = statement["Resource"] if isinstance(statement["Resource"], list) \
                else [statement["Resource"]]
            assert "*" not in targets, (policy_id, statement)


def test_uploads_are_signed_only_under_incoming(synthesized: Any) -> None:
    _, doc, _ = synthesized
    incoming_id, _ = logical(doc, "AWS::S3::Bucket", "Incoming")
    role_id, _ = logical(doc, "AWS::IAM::Role", "BrokerServiceRole")
    (policy,) = [p for p in resources(doc, "AWS::IAM::Policy").values()
                 if {"Ref": role_id} in p["Properties"]["Roles"]]
    (put,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
              if "s3:PutObject" in s["Action"]]
    assert put["Resource"] == {"Fn::Join": ["", [
        {"Fn::GetAtt": [incoming_id, "Arn"]}, "/incoming/*"]]}


def test_the_records_table_is_on_demand_with_point_in_time_recovery(synthesized: Any) -> None:
    _, doc, _ = synthesized
    (table,) = resources(doc, "AWS::DynamoDB::GlobalTable").values()
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    (replica,) = props["Replicas"]
    assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert {i["IndexName"] for i in props["GlobalSecondaryIndexes"]} == {
        "by_owner", "pending_by_owner", "open_by_status", "outbox_by_state"}


def test_the_jwt_secret_never_appears_in_the_template(synthesized: Any) -> None:
    _, doc, _ = synthesized
    _, broker = logical(doc, "AWS::Lambda::Function", "Broker")
    env = broker["Properties"]["Environment"]["Variables"]
    assert "BROKER_JWT_SECRET" not in env
    secret_id, secret = logical(doc, "AWS::SecretsManager::Secret", "JwtSecret")
    assert env["BROKER_JWT_SECRET_ARN"] == {"Ref": secret_id}
    # Generated by Secrets Manager at deploy time; no value is written in the template.
    assert "SecretString" not in secret["Properties"]
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] == 64


def test_stage_settings_reach_the_functions(synthesized: Any) -> None:
    _, doc, _ = synthesized
    for name in ("Broker", "Validator"):
        _, function = logical(doc, "AWS::Lambda::Function", name)
        env = function["Properties"]["Environment"]["Variables"]
        assert env["BROKER_ENV"] == "production"
        assert env["BROKER_ALLOWED_ORIGINS"] == '["http://localhost:3000"]'
        assert env["BROKER_PRESIGN_TTL"] == "300"


def test_cfn_lint_finds_no_errors(synthesized: Any) -> None:
    _, _, outdir = synthesized
    template = outdir / "UploadBroker-dev.template.json"
    lint = subprocess.run([str(Path(os.sys.executable).parent / "cfn-lint"), str(template)],
                          capture_output=True, text=True, check=False)
    assert lint.returncode & 2 == 0, lint.stdout  # bit 2: errors (4: warnings, 8: info)


def test_resources_carry_the_stage_names_localstack_uses_too(synthesized: Any) -> None:
    from infra.stages import STAGES

    _, doc, _ = synthesized
    names = STAGES["dev"].names("ACCOUNT")
    _, incoming = logical(doc, "AWS::S3::Bucket", "Incoming")
    assert incoming["Properties"]["BucketName"] == {"Fn::Join": ["", [
        names.incoming_bucket.removesuffix("ACCOUNT"), {"Ref": "AWS::AccountId"}]]}
    _, events = logical(doc, "AWS::SQS::Queue", "Events")
    assert events["Properties"]["QueueName"] == names.queue
    (table,) = resources(doc, "AWS::DynamoDB::GlobalTable").values()
    assert table["Properties"]["TableName"] == names.table


def test_an_identity_provider_and_quotas_reach_the_functions() -> None:
    from infra.stages import Stage

    stage = Stage(name="prod", origins=("https://app.example.com",),
                  oidc_issuer="https://id.example.com/", jwt_audience="https://uploads",
                  quota_files=100)
    env = stage.runtime_settings()
    assert env["BROKER_OIDC_ISSUER"] == "https://id.example.com/"
    assert env["BROKER_JWT_AUDIENCE"] == "https://uploads"
    assert env["BROKER_QUOTA_FILES"] == "100"
    assert "BROKER_QUOTA_BYTES" not in env  # unset: no limit
    assert "BROKER_OIDC_ISSUER" not in Stage(name="dev", origins=()).runtime_settings()


def test_the_broker_function_outlives_a_long_poll(synthesized: Any) -> None:
    from broker.domain.uploads import MAX_WAIT

    _, doc, _ = synthesized
    _, broker = logical(doc, "AWS::Lambda::Function", "Broker")
    assert MAX_WAIT < broker["Properties"]["Timeout"] < 30  # the HTTP API's own limit


def test_a_stage_with_webhooks_generates_their_secret_for_the_validator_alone(
        tmp_path: Path) -> None:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.stack import UploadBrokerStack
    from infra.stages import Stage

    stage = Stage(name="hooks", origins=("https://app.example.com",),
                  webhook_url="https://app.example.com/hooks")
    app = cdk.App(outdir=str(tmp_path))
    for name in ("validator", "broker"):
        (tmp_path / f"{name}.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    stack = UploadBrokerStack(app, stage, tmp_path)
    doc = Template.from_stack(stack).to_json()
    (secret_id,) = [k for k in resources(doc, "AWS::SecretsManager::Secret")
                    if k.startswith("WebhookSecret")]
    for name in ("Broker", "Validator"):
        env = logical(doc, "AWS::Lambda::Function", name)[1]["Properties"]["Environment"][
            "Variables"]
        assert env["BROKER_WEBHOOK_URL"] == "https://app.example.com/hooks"
        assert env["BROKER_WEBHOOK_SECRET_ARN"] == {"Ref": secret_id}
    reads = [s for policy in resources(doc, "AWS::IAM::Policy").values()
             for s in policy["Properties"]["PolicyDocument"]["Statement"]
             if s["Resource"] == {"Ref": secret_id}]
    assert len(reads) == 1  # only the validator, which sends, may read it
    (rule,) = resources(doc, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
