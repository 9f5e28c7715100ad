"""Tokens from the app's own identity provider, against a real OpenID Connect provider
(npm's certified `oidc-provider`, installed at test time) that the tests start, sign
with, and rotate the keys of while the broker runs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from flask.testing import FlaskClient
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from broker.aws.clients import AwsClients
from broker.settings import Settings
from broker.web import create_app
from tests.conftest import require_system
from tests.integration.conftest import free_port
from tests.npm import npm_available, npm_install
from tests.samples import SECRET, auth

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "oidc"
PROVIDER_VERSION = "9.13.3"
AUDIENCE = "https://uploads.example.test"
CLIENTS = [("app-user-1", "secret-one-0123456789"), ("app-user-2", "secret-two-0123456789")]


def new_key(alg: str, kid: str) -> tuple[Any, dict[str, Any]]:
    """A private key and its private JWK (what the provider is configured with)."""
    if alg == "RS256":
        key: Any = rsa.generate_private_key(65537, 2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(key))
    elif alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(ECAlgorithm.to_jwk(key))
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        jwk = json.loads(OKPAlgorithm.to_jwk(key))
    return key, jwk | {"kid": kid, "alg": alg, "use": "sig"}


class Provider:
    """The provider process; it can be restarted with other keys on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.requests: list[str] = []
        self._process: subprocess.Popen[str] | None = None

    def start(self, alg: str, jwks: list[dict[str, Any]]) -> None:
        env = os.environ | {"OIDC_PORT": str(self.port), "OIDC_AUDIENCE": AUDIENCE,
                            "OIDC_JWKS": json.dumps({"keys": jwks}), "OIDC_ALG": alg,
                            "OIDC_CLIENTS": json.dumps(CLIENTS)}
        node = shutil.which("node") or "/usr/bin/node"
        self._process = subprocess.Popen([node, str(CACHE / "provider.mjs")], env=env,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True)
        listening = threading.Event()
        printed: list[str] = []

        def read(stream: Any) -> None:
            for line in stream:
                printed.append(line)
                if line.startswith("listening"):
                    listening.set()
                elif line.startswith(("GET ", "POST ")):
                    self.requests.append(line.split()[1])
        self._reader = threading.Thread(target=read, args=(self._process.stdout,), daemon=True)
        self._reader.start()
        from tests.waiting import wait_until_ready

        try:
            wait_until_ready(f"the OpenID Connect provider (node) on {self.issuer}",
                             listening.is_set, process=self._process,
                             log=lambda: "".join(printed[-100:]), interval=0.05)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        from tests.waiting import stop_process

        if self._process is not None:
            # SIGTERM, SIGKILL if it hangs; reaped. The reader thread has its output.
            stop_process(self._process, read_output=False)
            self._reader.join(timeout=30)  # it reads to the end of the output
            assert self._process.stdout is not None
            self._process.stdout.close()
            self._process = None

    def token(self, client: tuple[str, str]) -> str:
        """An access token for `client` (a user of the broker), by the provider."""
        basic = base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()
        reply = requests.post(f"{self.issuer}/token", timeout=30,
                              data={"grant_type": "client_credentials", "scope": "uploads"},
                              headers={"Authorization": f"Basic {basic}"})
        assert reply.status_code == 200, reply.text
        return str(reply.json()["access_token"])

    def key_fetches(self) -> int:
        return sum(1 for path in self.requests if path == "/jwks")


@pytest.fixture(scope="module")
def installed() -> None:
    require_system("npm", npm_available(), "apt-get install nodejs npm")
    npm_install("oidc", "oidc-provider", PROVIDER_VERSION)
    # ES modules resolve packages from the script's own folder.
    shutil.copy(Path(__file__).resolve().parents[1] / "oidc" / "provider.mjs", CACHE)


@pytest.fixture
def provider(installed: None) -> Iterator[Provider]:
    started = Provider()
    yield started
    started.stop()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hmac_signed(claims: dict[str, Any], secret: bytes) -> str:
    """HS256 by hand with any bytes as the secret (PyJWT refuses keys that look public)."""
    plain = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in claims.items()}
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "es-1"}).encode())
    body = _b64(json.dumps(plain).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def broker(settings: Settings, aws: AwsClients, provider: Provider, **extra: Any
           ) -> FlaskClient:
    config = settings.model_dump() | {"oidc_issuer": provider.issuer,
                                      "jwt_audience": AUDIENCE} | extra
    return create_app(config, clients=aws).test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create(client: FlaskClient, token: str) -> Any:
    return client.post("/v1/uploads", headers=bearer(token), json={
        "profile": "avatar", "filename": "a.png", "content_type": "image/png", "size": 10})


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_the_providers_tokens_are_accepted_and_name_their_owner(
        settings: Settings, aws: AwsClients, provider: Provider, alg: str) -> None:
    _, jwk = new_key(alg, f"{alg}-1")
    provider.start(alg, [jwk])
    client = broker(settings, aws, provider)
    first, second = (provider.token(c) for c in CLIENTS)
    created = create(client, first)
    assert created.status_code == 201, created.json
    assert client.get(f"/v1/uploads/{created.json['id']}", headers=bearer(first)
                      ).status_code == 200
    # Another user of the same provider sees none of it.
    assert client.get(f"/v1/uploads/{created.json['id']}", headers=bearer(second)
                      ).status_code == 404
    # The local HS256 tokens still work alongside.
    assert create(client, auth("alice")["Authorization"].split()[1]).status_code == 201


def test_claims_are_checked_and_forgeries_refused(settings: Settings, aws: AwsClients,
                                                  provider: Provider) -> None:
    key, jwk = new_key("ES256", "es-1")
    provider.start("ES256", [jwk])
    client = broker(settings, aws, provider)
    now = datetime.now(UTC)
    good = {"iss": provider.issuer, "aud": AUDIENCE, "sub": "app-user-1",
            "iat": now, "exp": now + timedelta(minutes=5)}

    def signed(claims: dict[str, Any], kid: str = "es-1") -> str:
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})

    assert create(client, signed(good)).status_code == 201  # signed with the provider's key
    refusals = {
        "another audience": signed(good | {"aud": "https://other.example"}),
        "another issuer": signed(good | {"iss": "https://impostor.example"}),
        "not yet valid": signed(good | {"nbf": now + timedelta(minutes=10)}),
        "no subject": signed({k: v for k, v in good.items() if k != "sub"}),
        "too long-lived": signed(good | {"exp": now + timedelta(days=90)}),
        # The provider's public key used as an HMAC secret (algorithm confusion).
        "public key as secret": hmac_signed(good, key.public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)),
        "unsigned": jwt.encode(good, None, algorithm="none"),
        "a stranger's key": jwt.encode(good, new_key("ES256", "es-1")[0], algorithm="ES256",
                                       headers={"kid": "es-1"}),
    }
    for why, token in refusals.items():
        answer = create(client, token)
        assert answer.status_code == 401, why
        assert answer.json["code"] == "invalid_token", why
    expired = create(client, signed(good | {"exp": now - timedelta(minutes=5)}))
    assert (expired.status_code, expired.json["code"]) == (401, "token_expired")


def test_a_key_rotation_needs_no_restart_and_bogus_key_ids_cannot_hammer_the_provider(
        settings: Settings, aws: AwsClients, provider: Provider) -> None:
    _, old = new_key("RS256", "rsa-old")
    provider.start("RS256", [old])
    client = broker(settings, aws, provider, jwks_refetch_interval=1)
    assert create(client, provider.token(CLIENTS[0])).status_code == 201
    fetches = provider.key_fetches()

    # The provider rotates: a new signing key first, the old one still published.
    provider.stop()
    _, new = new_key("RS256", "rsa-new")
    provider.start("RS256", [new, old])
    time.sleep(1.1)  # past the refetch interval
    rotated = provider.token(CLIENTS[0])
    assert jwt.get_unverified_header(rotated)["kid"] == "rsa-new"
    assert create(client, rotated).status_code == 201  # the same broker, no restart
    assert provider.key_fetches() == fetches + 1

    # A flood of made-up key ids costs the provider at most one fetch an interval.
    stranger = rsa.generate_private_key(65537, 2048)
    before, started = provider.key_fetches(), time.monotonic()
    for n in range(40):
        token = jwt.encode({"sub": "x", "exp": datetime.now(UTC) + timedelta(minutes=1)},
                           stranger, algorithm="RS256", headers={"kid": f"bogus-{n}"})
        assert create(client, token).status_code == 401
    intervals = int(time.monotonic() - started) + 1  # the refetch interval is 1 s here
    assert provider.key_fetches() - before <= intervals < 40


def test_foreign_tokens_fetch_nothing_and_a_rotation_is_seen_within_seconds(
        settings: Settings, aws: AwsClients, provider: Provider) -> None:
    _, old = new_key("RS256", "rsa-old")
    provider.start("RS256", [old])
    client = broker(settings, aws, provider)  # the default refetch interval
    assert create(client, provider.token(CLIENTS[0])).status_code == 201
    fetches = provider.key_fetches()
    stranger = rsa.generate_private_key(65537, 2048)
    later = datetime.now(UTC) + timedelta(minutes=5)

    def forged(n: int, issuer: str) -> str:
        return jwt.encode({"sub": "x", "iss": issuer, "aud": AUDIENCE, "exp": later},
                          stranger, algorithm="RS256", headers={"kid": f"made-up-{n}"})

    for n in range(100):  # another provider's tokens: refused before any key lookup
        assert create(client, forged(n, "https://login.other.example")).status_code == 401
    assert provider.key_fetches() == fetches
    for n in range(100):  # made-up key ids under this provider's name: one fetch at most
        assert create(client, forged(n, provider.issuer)).status_code == 401
    assert provider.key_fetches() <= fetches + 1

    # The provider rotates right after the flood; the new key's token gets in within 5 s.
    provider.stop()
    _, new = new_key("RS256", "rsa-new")
    provider.start("RS256", [new, old])
    rotated = provider.token(CLIENTS[0])
    started = time.monotonic()
    while (answer := create(client, rotated)).status_code != 201:
        assert answer.status_code == 401
        assert time.monotonic() - started < 5, "the rotation was not seen within 5 s"
        time.sleep(0.25)


def test_a_provider_that_cannot_be_discovered_stops_start_up_by_name(
        settings: Settings, aws: AwsClients) -> None:
    from broker.settings import SettingsError

    with pytest.raises(SettingsError, match="BROKER_OIDC_ISSUER"):
        create_app(settings.model_dump() | {"oidc_issuer": f"http://127.0.0.1:{free_port()}"},
                   clients=aws)


def test_with_only_a_provider_the_shared_secret_tokens_are_refused(
        aws: AwsClients, provider: Provider) -> None:
    from broker.settings import load_settings

    _, jwk = new_key("EdDSA", "ed-1")
    provider.start("EdDSA", [jwk])
    settings = load_settings(oidc_issuer=provider.issuer, jwt_audience=AUDIENCE,
                             public_base_url="https://cdn.example.test")
    client = create_app(settings.model_dump(), clients=aws).test_client()
    assert create(client, provider.token(CLIENTS[1])).status_code == 201
    forged = jwt.encode({"sub": "alice", "exp": datetime.now(UTC) + timedelta(minutes=5)},
                        SECRET, algorithm="HS256")
    assert create(client, forged).status_code == 401
