"""Tokens from the app's own identity provider: RS256, ES256 and EdDSA JWTs verified
against the provider's published keys (JWKS), found by OpenID Connect discovery from
BROKER_OIDC_ISSUER or given as BROKER_JWKS_URL.

Identity first, keys second: a token's issuer, audience and lifetime are checked
before any key is looked up, so a token from another provider (or a stale one) never
causes a fetch. Keys are cached; a token of this provider naming a key id not in
the cache makes the keys be fetched again, at most once per `refetch_interval`
(a few seconds): a provider's key rotation is seen within that time with no
restart, and a flood of made-up key ids cannot hammer the provider.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import jwt

from broker.common.errors import NotAuthenticated

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "ES256", "EdDSA"]
FETCH_TIMEOUT = 5.0
MAX_DOCUMENT_BYTES = 1024 * 1024


def fetch_json(url: str) -> Any:
    """One small JSON document over HTTP(S), with a tight timeout and size limit."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not an HTTP(S) URL: {url!r}")
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as reply:  # noqa: S310 - checked
        return json.loads(reply.read(MAX_DOCUMENT_BYTES))


class ProviderKeys:
    """The provider's signing keys by key id, refreshed on an unknown id (rate-limited)."""

    def __init__(self, jwks_url: str, refetch_interval: float,
                 fetch: Callable[[str], Any] = fetch_json) -> None:
        self.jwks_url = jwks_url
        self.refetch_interval = refetch_interval
        self._fetch = fetch
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def key_for(self, kid: str) -> jwt.PyJWK:
        """The key `kid` names; NotAuthenticated when the provider has none such."""
        key = self._keys.get(kid)
        if key is None:
            with self._lock:
                key = self._keys.get(kid)
                if key is None and time.monotonic() - self._fetched_at >= self.refetch_interval:
                    self._refresh()
                    key = self._keys.get(kid)
        if key is None:
            raise NotAuthenticated("The token is signed with a key the identity provider "
                                   "does not publish.", code="invalid_token")
        return key

    def _refresh(self) -> None:
        self._fetched_at = time.monotonic()  # a failed fetch counts: no hammering either
        try:
            document = self._fetch(self.jwks_url)
            keys = jwt.PyJWKSet.from_dict(document).keys
        except (OSError, ValueError, jwt.PyJWKSetError) as exc:
            log.warning("fetching the identity provider's keys from %s failed: %s",
                        self.jwks_url, exc)
            return
        self._keys = {k.key_id: k for k in keys if k.key_id}
        log.info("fetched %d signing keys from %s", len(self._keys), self.jwks_url)


class OidcVerifier:
    """Checks a provider's token: signature, `iss`, `aud`, `exp`, `nbf`; the owner is
    the `owner_claim` (normally `sub`)."""

    def __init__(self, issuer: str | None, audience: str | None, keys: ProviderKeys,
                 owner_claim: str = "sub", leeway: int = 30) -> None:
        self.issuer = issuer
        self.audience = audience
        self.keys = keys
        self.owner_claim = owner_claim
        self.leeway = leeway

    @classmethod
    def discover(cls, issuer: str | None, jwks_url: str | None, audience: str | None,
                 owner_claim: str, refetch_interval: float,
                 fetch: Callable[[str], Any] = fetch_json) -> OidcVerifier:
        """From the issuer's discovery document (unless the JWKS URL is given)."""
        if jwks_url is None:
            assert issuer is not None
            config = fetch(issuer.rstrip("/") + "/.well-known/openid-configuration")
            if not isinstance(config, dict) or not isinstance(config.get("jwks_uri"), str):
                raise ValueError(f"{issuer} publishes no jwks_uri in its discovery document")
            if config.get("issuer") != issuer:
                raise ValueError(f"{issuer}'s discovery document names another issuer: "
                                 f"{config.get('issuer')!r}")
            jwks_url = config["jwks_uri"]
        return cls(issuer, audience, ProviderKeys(jwks_url, refetch_interval, fetch),
                   owner_claim)

    def claims(self, token: str, header: dict[str, Any]) -> dict[str, Any]:
        """The verified claims; NotAuthenticated says why a token is refused."""
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise NotAuthenticated("The token names no signing key (kid).", code="invalid_token")
        self._decode(token, None)  # who issued it, for whom, until when: before any key
        return self._decode(token, self.keys.key_for(kid))

    def _decode(self, token: str, key: jwt.PyJWK | None) -> dict[str, Any]:
        """The claims, checked; with no key, everything but the signature."""
        try:
            if key is None:
                claims: dict[str, Any] = jwt.decode(
                    token, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer,
                    leeway=self.leeway, options={
                        "verify_signature": False, "verify_exp": True, "verify_nbf": True,
                        "verify_iss": self.issuer is not None,
                        "verify_aud": self.audience is not None,
                        "require": ["exp", self.owner_claim]})
            else:
                claims = jwt.decode(
                    token, key, algorithms=ALGORITHMS, audience=self.audience,
                    issuer=self.issuer, leeway=self.leeway, options={
                        "require": ["exp", self.owner_claim],
                        "verify_aud": self.audience is not None})
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("The token has expired.", code="token_expired") from None
        except jwt.InvalidIssuerError:
            raise NotAuthenticated("The token comes from another identity provider.",
                                   code="invalid_token") from None
        except jwt.InvalidTokenError as exc:
            raise NotAuthenticated(f"The token is not valid: {exc}.",
                                   code="invalid_token") from None
        return claims
