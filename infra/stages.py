"""Stage settings: names, origins, limits, domain. The one place they are chosen.

The CDK stack builds from these, passes the runtime settings to the functions
as BROKER_* variables, and `localstack/` provisions the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LOCALSTACK_ACCOUNT = "000000000000"


@dataclass(frozen=True)
class ResourceNames:
    incoming_bucket: str
    public_bucket: str
    private_bucket: str
    table: str
    queue: str


@dataclass(frozen=True)
class Stage:
    name: str
    # Pages allowed to upload to the incoming bucket and call the API.
    origins: tuple[str, ...]
    # The CDN's domain for public files; None: the distribution's own domain.
    cdn_domain: str | None = None
    presign_ttl: int = 300
    download_ttl: int = 300
    upload_rate_limit: str = "60/minute"
    max_pending_uploads: int = 20
    # Days before unprocessed uploads and quarantined objects expire.
    unprocessed_days: int = 2
    quarantine_days: int = 30
    # Large objects (the video profile takes 10 GiB) are streamed once through SHA-256 and
    # copied in parts: minutes, not seconds. Lambda's ceiling is 15 minutes; 1769 MB is
    # one full vCPU (hashing is CPU-bound). A batch stops starting messages at half time.
    validator_timeout_seconds: int = 900
    validator_memory_mb: int = 1769
    validator_concurrency: int = 20
    broker_memory_mb: int = 512
    # Allow presigned PUT uploads (Uppy's signRequest) as well as POST forms.
    allow_put_uploads: bool = False
    # Users' tokens from the app's identity provider (else HS256 with the stack's secret).
    oidc_issuer: str | None = None
    jwt_audience: str | None = None
    # Where webhooks go (comma-separated); the stack generates their signing secret.
    webhook_url: str | None = None
    # Storage each user may fill (None: no limit).
    quota_bytes: int | None = None
    quota_files: int | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def names(self, account: str) -> ResourceNames:
        """What every resource is called in `account`: bucket names are global, so
        they carry the account id; CDK passes its account token, LocalStack its own."""
        prefix = f"upload-broker-{self.name}"
        return ResourceNames(
            incoming_bucket=f"{prefix}-incoming-{account}",
            public_bucket=f"{prefix}-public-{account}",
            private_bucket=f"{prefix}-private-{account}",
            table=f"{prefix}-uploads",
            queue=f"{prefix}-events",
        )

    def local_settings(self, account: str = LOCALSTACK_ACCOUNT) -> dict[str, str]:
        """The BROKER_* settings that point the product at this stage's names."""
        names = self.names(account)
        return self.runtime_settings() | {
            "BROKER_INCOMING_BUCKET": names.incoming_bucket,
            "BROKER_PUBLIC_BUCKET": names.public_bucket,
            "BROKER_PRIVATE_BUCKET": names.private_bucket,
            "BROKER_TABLE": names.table,
        }

    def runtime_settings(self) -> dict[str, str]:
        """Settings the functions read at run time, as BROKER_* variables."""
        return {
            "BROKER_ENV": "production",
            "BROKER_PRESIGN_TTL": str(self.presign_ttl),
            "BROKER_DOWNLOAD_TTL": str(self.download_ttl),
            "BROKER_UPLOAD_RATE_LIMIT": self.upload_rate_limit,
            "BROKER_MAX_PENDING_UPLOADS": str(self.max_pending_uploads),
            "BROKER_ALLOWED_ORIGINS": "[" + ",".join(f'"{o}"' for o in self.origins) + "]",
        } | {f"BROKER_{name.upper()}": str(value) for name, value in (
            ("oidc_issuer", self.oidc_issuer), ("jwt_audience", self.jwt_audience),
            ("webhook_url", self.webhook_url),
            ("quota_bytes", self.quota_bytes), ("quota_files", self.quota_files))
            if value is not None}


STAGES = {
    "dev": Stage(name="dev", origins=("http://localhost:3000",)),
    "prod": Stage(name="prod", origins=("https://app.example.com",),
                  cdn_domain=None, validator_concurrency=50),
}
