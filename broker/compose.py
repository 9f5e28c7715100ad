"""The composition root: the one place the product's parts are built from settings.

Every entry point (both Lambda handlers, `broker serve`, `broker worker` polling or
receiving pushes, `broker run`, the test fixtures) calls `compose` and takes the parts
it needs; nothing else builds a store, a validator or a deliverer.
"""

from __future__ import annotations

import logging
import threading
from functools import cached_property
from typing import TYPE_CHECKING, cast

from pydantic import SecretStr

from broker.aws.clients import AwsClients, fetch_secret, make_clients
from broker.aws.cloudfront import invalidator
from broker.aws.lean_json import LeanDynamoDB
from broker.aws.lean_s3 import lean_s3
from broker.domain.auth import TokenVerifier
from broker.domain.cdn import CdnPurger, run_purger
from broker.domain.inspection.scanner import Scanner, make_scanner
from broker.domain.multipart_uploads import MultipartUploads
from broker.domain.oidc import OidcVerifier
from broker.domain.profiles import Profiles, load_profiles
from broker.domain.records import DynamoRecords, RecordStore, UploadRecord
from broker.domain.records.outbox import APP_PENDING, APP_TARGET, AUDIT_TARGET, CDN_TARGET
from broker.domain.schemas import render_upload
from broker.domain.uploads import Uploads
from broker.domain.webhooks.deliverer import Deliverer, Send, run_deliverer
from broker.settings import Settings, SettingsError
from broker.storage import Storage
from broker.validator.judge import Validator
from broker.validator.rejudge import run_rejudger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)


class Parts:
    """The product's parts for one process, each built once, on first use."""

    def __init__(self, settings: Settings, clients: AwsClients, *,
                 records: RecordStore | None = None, scanner: Scanner | None = None) -> None:
        self.settings = settings
        self.clients = clients
        self._records = records
        self._scanner = scanner

    @cached_property
    def profiles(self) -> Profiles:
        return load_profiles(self.settings.profiles_file)

    @cached_property
    def records(self) -> RecordStore:
        return self._records or open_records(self.settings, self.clients)

    @cached_property
    def storage(self) -> Storage:
        lean = lean_s3(self.clients.s3)  # answers as the client does, for what Storage asks
        return Storage(self.clients.s3, cast("S3Client", lean) if lean else None)

    @cached_property
    def uploads(self) -> Uploads:
        return Uploads(self.settings, self.profiles, self.records, self.storage,
                       self.clients.s3)

    @cached_property
    def multipart(self) -> MultipartUploads:
        return MultipartUploads(self.uploads)

    @cached_property
    def tokens(self) -> TokenVerifier:
        """How bearer tokens are checked; refuses to start without a way to check them."""
        s = self.settings
        if s.jwt_secret_arn and s.jwt_secret is None:  # on AWS, read once at start
            s = s.model_copy(update={"jwt_secret": fetch_secret(s, s.jwt_secret_arn)})
        return token_verifier(s)

    @cached_property
    def scanner(self) -> Scanner:
        s = self.settings
        return self._scanner or make_scanner(s.scanner, s.clamd_address, s.clamd_timeout,
                                             s.clamd_stream_max)

    @cached_property
    def validator(self) -> Validator:
        return Validator(self.settings, self.profiles, self.records, self.storage,
                         self.scanner)

    def render(self, record: UploadRecord) -> dict[str, object]:
        """The upload as its owner sees it through the API: what events carry."""
        return render_upload(self.uploads, record)

    @cached_property
    def deliverer(self) -> Deliverer | None:
        """The webhook deliverer, or None when no receiver is configured."""
        if not self.settings.webhook_urls:
            return None
        return Deliverer(self.records, self.render, webhook_keys(self.settings),
                         self.settings.webhook_allow_private)

    def app_deliverer(self, send: Send) -> Deliverer:
        """Sends the outbox's deliveries to the app's own process (BROKER_APP_SIGNAL)."""
        return Deliverer(self.records, self.render, [], sender=send, state=APP_PENDING)

    @cached_property
    def cdn_purger(self) -> CdnPurger | None:
        """Tells CloudFront what stops being served, or None without a distribution."""
        distribution = self.settings.cloudfront_distribution_id
        if distribution is None:
            return None
        return CdnPurger(self.records, invalidator(self.clients.cloudfront, distribution),
                         self.settings.public_url_for)

    def send_outbox(self) -> None:
        """Send now what the outbox holds due: webhooks, and removals the CDN is to hear
        of (a short-lived process, as a Lambda or a command, before it ends). A failure
        is logged: the outbox keeps them for the next attempt."""
        senders = (("webhooks", self.deliverer and self.deliverer.deliver_due),
                   ("CDN invalidations", self.cdn_purger and self.cdn_purger.purge_due))
        for name, send in senders:
            if not send:
                continue
            try:
                send()
            except Exception:
                log.exception("sending %s failed; the outbox keeps them", name)

    def start_rejudger(self, stop: threading.Event) -> None:
        """Judge published uploads again, from a thread of this validator process, when
        the rules or signatures change (BROKER_REJUDGE_RATE, uploads a second)."""
        if self.settings.rejudge_rate > 0:
            threading.Thread(target=run_rejudger, name="rejudger", daemon=True,
                             args=(self.validator, stop, self.settings.rejudge_rate)).start()

    def start_deliverer(self, stop: threading.Event, deliverer: Deliverer | None = None
                        ) -> None:
        """Send an outbox (the webhooks' and the CDN's, by default) from threads of this
        process."""
        if deliverer is None and self.cdn_purger is not None:
            threading.Thread(target=run_purger, name="cdn-purger", daemon=True,
                             args=(self.cdn_purger, stop)).start()
        deliverer = deliverer or self.deliverer
        if deliverer is not None:
            threading.Thread(target=run_deliverer, name="deliverer", daemon=True,
                             args=(deliverer, stop)).start()


def compose(settings: Settings, clients: AwsClients | None = None, *,
            records: RecordStore | None = None, scanner: Scanner | None = None) -> Parts:
    """The parts of a deployment. `clients` replaces the AWS clients (tests, other S3
    implementations); `records` and `scanner` replace those parts (fault tests)."""
    return Parts(settings, clients or make_clients(settings), records=records,
                 scanner=scanner)


def webhook_keys(settings: Settings) -> list[bytes]:
    """The webhook signing keys: configured, or on AWS read once from Secrets Manager."""
    if settings.webhook_secret is None and settings.webhook_secret_arn:
        # The stack generates it as base64 letters and digits; receivers get whsec_….
        value = fetch_secret(settings, settings.webhook_secret_arn).get_secret_value()
        settings = settings.model_copy(update={"webhook_secret": SecretStr(
            value if value.startswith("whsec_") else "whsec_" + value)})
    return settings.webhook_keys()


def open_records(settings: Settings, clients: AwsClients) -> RecordStore:
    """The store the settings name: DynamoDB, or what BROKER_DATABASE_URL names
    (PostgreSQL, SQLite). With webhook receivers (or the app's signal) configured, it
    writes their outbox with each state change."""
    store: RecordStore
    if settings.records_store == "sqlite":
        from broker.domain.records.sqlite import SqliteRecords

        store = SqliteRecords(settings.sqlite_path)
    elif settings.database_url is not None:
        from broker.domain.records.postgres import PostgresRecords  # psycopg only when used

        store = PostgresRecords.connect(settings.database_url.get_secret_value(),
                                        pool_size=settings.database_pool_size)
    else:
        store = DynamoRecords(LeanDynamoDB(clients.dynamodb), settings.table)
    store.webhook_urls = settings.webhook_urls + ((APP_TARGET,) if settings.app_signal else ()) \
        + ((CDN_TARGET,) if settings.cloudfront_distribution_id else ()) + (AUDIT_TARGET,)
    return store


def token_verifier(settings: Settings) -> TokenVerifier:
    """HS256 with the shared secret, the identity provider's keys, or both."""
    oidc = None
    if settings.oidc_issuer or settings.jwks_url:
        try:
            oidc = OidcVerifier.discover(
                settings.oidc_issuer, settings.jwks_url, settings.jwt_audience,
                settings.jwt_owner_claim, settings.jwks_refetch_interval)
        except (OSError, ValueError) as exc:
            raise SettingsError(f"BROKER_OIDC_ISSUER: the identity provider cannot be "
                                f"discovered: {exc}") from exc
    try:
        secret: bytes | None = settings.signing_secret()
    except SettingsError:
        if oidc is None:
            raise
        secret = None  # the identity provider's tokens only
    return TokenVerifier(secret, oidc)
