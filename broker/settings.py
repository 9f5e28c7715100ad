"""Runtime settings: parsed once from the environment, strictly.

Every variable is prefixed ``BROKER_``. An unknown ``BROKER_`` variable or a
malformed value stops start-up with a message naming the variable.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "BROKER_"
MIN_SECRET_BYTES = 32
MAX_PRESIGN_SECONDS = 15 * 60
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def parse_webhook_secret(text: str) -> bytes:
    """The key bytes of a Standard Webhooks secret (`whsec_` + base64); ValueError when
    it is not one."""
    if not text.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError("a webhook secret starts with 'whsec_'")
    try:
        key = base64.b64decode(text.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' and base64") from None
    if len(key) < 24:
        raise ValueError("a webhook secret holds at least 24 bytes")
    return key


class SettingsError(ValueError):
    """The configuration cannot run: the message says which variable and why."""


class Settings(BaseSettings):
    """Everything the broker and the validator need to know about their deployment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    env: Literal["local", "production"] = "production"
    # Lines for people ("text"), or one JSON object a line for log pipelines ("json").
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    jwt_secret: SecretStr | None = None
    # On AWS: a Secrets Manager secret holding it, read once at start.
    jwt_secret_arn: str | None = None
    # Where `broker run` keeps its generated secret so `broker token` can sign for it.
    secret_file: Path = Path(".broker/secret")
    token_ttl: int = Field(default=3600, gt=0, le=30 * 24 * 3600)
    # Tokens from the app's identity provider (RS256, ES256, EdDSA): its issuer URL
    # (keys found by discovery) or its JWKS URL, the audience they must name, the
    # claim naming the owner, and how often unknown key ids may make us refetch.
    oidc_issuer: str | None = None
    jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_owner_claim: str = "sub"
    jwks_refetch_interval: int = Field(default=3, ge=1, le=24 * 3600)

    region: str = "us-east-1"
    # One endpoint for every service (an emulator), or one per service: storage can
    # be Ceph RGW or MinIO while records and the queue live elsewhere.
    endpoint_url: str | None = None
    s3_endpoint_url: str | None = None
    dynamodb_endpoint_url: str | None = None
    sqs_endpoint_url: str | None = None
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    # boto3 adds CRC32 checksums to every upload and delete it can; Backblaze B2, older
    # MinIO and other stores refuse them. "auto": only where required off AWS.
    s3_checksums: Literal["auto", "when_supported", "when_required"] = "auto"
    incoming_bucket: str = "uploads-incoming"
    public_bucket: str = "uploads-public"
    private_bucket: str = "uploads-private"
    incoming_prefix: str = "incoming/"
    quarantine_prefix: str = "quarantine/"
    table: str = "uploads"
    # PostgreSQL for the records instead of DynamoDB (postgresql://user:pass@host/db),
    # with this many pooled connections per process; or SQLite (sqlite:///path/to/file),
    # what `broker run` keeps its records in, for one machine.
    database_url: SecretStr | None = None
    database_pool_size: int = Field(default=10, ge=1, le=200)
    queue_url: str | None = None
    # Where events that failed every retry wait; read from the queue's redrive policy
    # when not set.
    dead_letter_queue_url: str | None = None
    # The sweeper re-drives a record still processing after this long (past any judging
    # time), and runs this often in the worker.
    stuck_after: int = Field(default=900, ge=60)
    sweep_interval: int = Field(default=60, gt=0)
    # Uploads a second the worker judges again when the rules or the scanner's signatures
    # change (0: never by itself; `broker rejudge` still can).
    rejudge_rate: float = Field(default=2.0, ge=0)
    # Objects the long-running worker judges at once (threads; boto3 clients are shared).
    worker_concurrency: int = Field(default=4, ge=1, le=64)
    # How the validator hears of new objects: an SQS queue, or HTTP push (Ceph RGW,
    # MinIO) to the worker's receiver, which requires this token.
    events: Literal["sqs", "http"] = "sqs"
    event_token: SecretStr | None = None
    public_base_url: str | None = None
    # The CloudFront distribution in front of the public bucket: told to forget what is
    # removed (CreateInvalidation), so a deleted public file stops being served.
    cloudfront_distribution_id: str | None = None
    allowed_origins: tuple[str, ...] = ()
    # Who may review the quarantine and erase owners through the API and /operator: owner
    # ids, as tokens name them (a JSON list). The command line needs none.
    operators: tuple[str, ...] = ()
    # Where the Flask extension (`broker.flask.UploadBroker`) mounts API v1, Uppy's
    # routes and the uploader's files inside the app.
    url_prefix: str = "/uploads"

    presign_ttl: int = Field(default=300, gt=0, le=MAX_PRESIGN_SECONDS)
    download_ttl: int = Field(default=300, gt=0, le=7 * 24 * 3600)
    profiles_file: Path | None = None
    # Large files go in parts (S3 multipart) from this declared size, unless the client
    # chose; parts of this size (more when 10,000 would not hold the file); resumable
    # this long (at most a day: the incoming bucket's lifecycle rule aborts after one).
    multipart_threshold: int = Field(default=100 * 1024 * 1024, gt=0)
    multipart_part_size: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024,
                                     le=5 * 1024 * 1024 * 1024)
    multipart_ttl: int = Field(default=24 * 3600, ge=60, le=24 * 3600)
    # The validator copies objects larger than this in parts (UploadPartCopy, in parallel):
    # a single CopyObject stops at 5 GiB.
    multipart_copy_threshold: int = Field(default=5 * 1024 ** 3, gt=0, le=5 * 1024 ** 3)
    multipart_copy_part_size: int = Field(default=256 * 1024 * 1024, ge=5 * 1024 * 1024,
                                          le=5 * 1024 ** 3)
    # How part URLs pin each part's content when the client sends its SHA-256: S3's
    # checksum header (AWS S3, MinIO), or the payload hash (Ceph RGW before 19).
    part_checksum: Literal["checksum-sha256", "content-sha256"] = "checksum-sha256"

    # Abuse limits on creating uploads, per user: a rate (the limits library's syntax, stored
    # in memory or at a limits storage URI such as redis://host:6379) and a pending cap.
    upload_rate_limit: str = "60/minute"
    rate_limit_storage: str = "memory://"
    max_pending_uploads: int = Field(default=20, gt=0)
    # Webhooks: the receivers (comma-separated URLs) and the signing secrets
    # (space-separated `whsec_…`, two during a rotation); receivers on loopback or
    # private addresses only when allowed (`broker run` allows them).
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    # On AWS: a Secrets Manager secret holding it, read once when the deliverer starts.
    webhook_secret_arn: str | None = None
    webhook_allow_private: bool = False
    # The app hears every verdict in its own process too: the Flask extension's
    # `upload_settled` signal, written to the outbox with the state change like a webhook.
    app_signal: bool = False

    # Storage each user may fill with ready uploads (a profile may set its own).
    quota_bytes: int | None = Field(default=None, gt=0)
    quota_files: int | None = Field(default=None, gt=0)

    # Malware scanning: "none", or "clamd" at unix:///path or tcp://host:port.
    scanner: Literal["none", "clamd"] = "none"
    clamd_address: str | None = None
    clamd_timeout: float = Field(default=60.0, gt=0)
    clamd_stream_max: int = Field(default=25 * 1024 * 1024, gt=0)
    # Hours a signature database may go without an update before readiness fails.
    scanner_max_signature_age: float = Field(default=72.0, gt=0)

    # Pictures are decoded and written in a child process held to these: its address
    # space in bytes, and CPU seconds. A picture that needs more is refused.
    picture_memory: int = Field(default=2 * 1024**3, ge=256 * 1024**2)
    picture_cpu_seconds: int = Field(default=60, gt=0)

    @field_validator("database_url")
    @classmethod
    def _is_postgresql_or_sqlite(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        url = value.get_secret_value()
        if url.startswith("sqlite:") and not url.startswith("sqlite:///"):
            raise ValueError("a SQLite URL names a file: sqlite:///path/to/records.sqlite3")
        if not url.startswith(("postgresql://", "postgres://", "sqlite:///")):
            raise ValueError("must be a postgresql:// or sqlite:/// URL")
        return value

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> Settings:
        if self.webhook_url and self.webhook_secret is None and not self.webhook_secret_arn:
            raise ValueError("BROKER_WEBHOOK_URL needs BROKER_WEBHOOK_SECRET (whsec_…)")
        for url in self.webhook_urls:
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"BROKER_WEBHOOK_URL: {url!r} is not an http(s) URL")
        self.webhook_keys()  # each secret must parse
        return self

    @property
    def webhook_urls(self) -> tuple[str, ...]:
        return tuple(u.strip() for u in (self.webhook_url or "").split(",") if u.strip())

    def webhook_keys(self) -> list[bytes]:
        text = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
        return [parse_webhook_secret(part) for part in text.replace(",", " ").split()]

    @field_validator("url_prefix")
    @classmethod
    def _is_a_path(cls, value: str) -> str:
        if not value.startswith("/") or (value.endswith("/") and value != "/"):
            raise ValueError("must look like '/uploads': a leading slash, none at the end")
        return "" if value == "/" else value

    @field_validator("incoming_prefix", "quarantine_prefix")
    @classmethod
    def _prefix_ends_with_slash(cls, value: str) -> str:
        if not value.endswith("/") or value.startswith("/"):
            raise ValueError("must look like 'name/'")
        return value

    @model_validator(mode="after")
    def _prefixes_are_disjoint(self) -> Settings:
        a, b = self.incoming_prefix, self.quarantine_prefix
        if a.startswith(b) or b.startswith(a):
            raise ValueError("incoming_prefix and quarantine_prefix must not overlap")
        return self

    def signing_secret(self) -> bytes:
        """The JWT secret: configured, or in local development the generated file."""
        if self.jwt_secret is not None:
            secret = self.jwt_secret.get_secret_value().encode()
        elif self.env == "local" and self.secret_file.exists():
            secret = self.secret_file.read_bytes().strip()
        else:
            raise SettingsError(
                "BROKER_JWT_SECRET is not set"
                + (f" and no local secret is at {self.secret_file.resolve()}: start the stack "
                   "with `broker run` here, or point BROKER_SECRET_FILE at the secret its "
                   "banner names" if self.env == "local" else "")
            )
        if len(secret) < MIN_SECRET_BYTES and self.env != "local":
            raise SettingsError(
                f"BROKER_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes"
            )
        return secret

    @property
    def records_store(self) -> Literal["dynamodb", "postgresql", "sqlite"]:
        if self.database_url is None:
            return "dynamodb"
        return "sqlite" if self.database_url.get_secret_value().startswith("sqlite:") \
            else "postgresql"

    @property
    def sqlite_path(self) -> str:
        assert self.database_url is not None
        return self.database_url.get_secret_value().removeprefix("sqlite://")

    def endpoint_for(self, service: Literal["s3", "dynamodb", "sqs"]) -> str | None:
        """The service's own endpoint, else the shared one, else AWS."""
        own: str | None = getattr(self, f"{service}_endpoint_url")
        return own or self.endpoint_url

    def public_url_for(self, key: str) -> str:
        """Where a public object is served (the CDN in production)."""
        s3 = self.endpoint_for("s3")
        default = f"{s3.rstrip('/')}/{self.public_bucket}" if s3 \
            else f"https://{self.public_bucket}.s3.amazonaws.com"
        return f"{(self.public_base_url or default).rstrip('/')}/{key}"


def load_settings(**overrides: object) -> Settings:
    """Parse the environment, turning validation errors into one readable message."""
    from pydantic import ValidationError

    # A misspelt variable would otherwise be ignored silently.
    known = Settings.model_fields
    unknown = sorted(
        {name for name in os.environ
         if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX):].lower() not in known}
        | {f"{ENV_PREFIX}{name.upper()}" for name in overrides if name not in known})
    if unknown:
        hints = "".join(f" ({name}: did you mean {ENV_PREFIX}{near[0].upper()}?)"
                        for name in unknown if (near := difflib.get_close_matches(
                            name[len(ENV_PREFIX):].lower(), known, n=1)))
        raise SettingsError(f"unknown setting {', '.join(unknown)}{hints}: the settings "
                            "are listed in docs/reference/configuration.md")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            (f"BROKER_{'_'.join(str(p) for p in err['loc']).upper()}: " if err["loc"] else "")
            + err["msg"].removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from exc
